"""Decide what to do with each alert of a notification, and durably queue the runs.

The only code the webhook handler (and ``responder replay``/``run``) calls. Dedup, the
decision history and the enqueue happen in one Redis transaction per notification: a
firing (or resolved) instance is marked seen exactly when its run record and its RQ job
are stored, so a failure leaves nothing half-done and Alertmanager's retry is accepted again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue

from responder.alerts import Alert, Notification
from responder.errors import AlertError
from responder.history import AlertDecision, History, NotificationRecord
from responder.playbooks.catalog import Catalog
from responder.queueing import enqueue_run
from responder.runs import RunRecord, RunStore, Source
from responder.settings import Settings

DecisionKind = Literal["queued", "duplicate", "ignored", "rejected"]


@dataclass(frozen=True)
class Decision:
    alert: Alert
    decision: DecisionKind
    job_id: str | None = None
    reason: str | None = None

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint

    @property
    def alertname(self) -> str:
        return self.alert.alertname

    @property
    def status(self) -> str:
        return self.alert.status

    def to_json(self) -> dict[str, str]:
        data = {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "status": self.status,
            "decision": self.decision,
        }
        if self.job_id:
            data["job_id"] = self.job_id
        if self.reason:
            data["reason"] = self.reason
        return data

    def to_history(self) -> AlertDecision:
        return AlertDecision(
            alertname=self.alertname,
            fingerprint=self.fingerprint,
            status=self.status,
            model_id=self.alert.model_id,
            starts_at=self.alert.startsAt,
            decision=self.decision,
            reason=self.reason,
            job_id=self.job_id,
        )


@dataclass(frozen=True)
class _Candidate:
    record: RunRecord
    dedup: bool = True

    @property
    def dedup_key(self) -> str:
        return f"responder:seen:{self.record.id}"


class Intake:
    def __init__(self, redis: Redis, settings: Settings, catalog: Catalog) -> None:
        self._redis = redis
        self._settings = settings
        self._catalog = catalog
        self._queue = Queue(settings.queue, connection=redis)
        self._runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
        self._history = History(redis, keep=settings.history_keep, retention_seconds=settings.history_retention_seconds)

    def accept(
        self, notification: Notification, *, source: Source = "webhook", dry_run: bool = False
    ) -> list[Decision]:
        """One decision per alert, in the order of the notification; recorded in the decision history.

        A replay (``source="replay"``) is not de-duplicated: it is how a playbook change is
        tried on a payload that was already handled.
        """
        outcomes = [self._decide(alert, notification, source=source, dry_run=dry_run) for alert in notification.alerts]
        candidates = [o for o in outcomes if isinstance(o, _Candidate)]
        history = NotificationRecord(
            source=source,
            receiver=notification.receiver,
            group_key=notification.groupKey,
            status=notification.status,
            external_url=notification.externalURL,
            truncated_alerts=notification.truncatedAlerts,
        )

        def decisions(queued: set[str]) -> list[Decision]:
            out = []
            for outcome in outcomes:
                if isinstance(outcome, Decision):
                    out.append(outcome)
                elif outcome.record.id in queued:
                    reason = "replay: not de-duplicated" if not outcome.dedup else None
                    out.append(Decision(outcome.record.alert, "queued", job_id=outcome.record.id, reason=reason))
                else:
                    out.append(
                        Decision(
                            outcome.record.alert,
                            "duplicate",
                            job_id=outcome.record.id,
                            reason=f"this {outcome.record.alert.status} instance was already queued",
                        )
                    )
            return out

        queued = self._enqueue(
            candidates,
            lambda queued: history.model_copy(update={"alerts": [d.to_history() for d in decisions(queued)]}),
        )
        return decisions(queued)

    def enqueue_manual(
        self, playbook: str, alert: Alert, *, dry_run: bool, requested_by: str | None = None, queue: bool = True
    ) -> RunRecord:
        """Store (and unless ``queue`` is false, queue) a run asked for by a person."""
        alert.check_actionable(self._catalog.get(playbook).requires_labels)
        record = RunRecord(
            id=f"manual-{alert.fingerprint}",
            playbook=playbook,
            source="manual",
            dry_run=dry_run,
            alert=alert,
            requested_by=requested_by,
        )
        if queue:
            self._enqueue([_Candidate(record, dedup=False)], None)
        else:
            with self._redis.pipeline(transaction=True) as pipe:
                self._runs.add(record, pipe)
                pipe.execute()
        return record

    def requeue(self, record: RunRecord) -> None:
        """Queue an existing run again (``responder jobs retry``); its done steps stay done."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.multi()  # RQ expects to be handed a pipeline already in MULTI mode
            record.status = "queued"
            self._runs.add(record, pipe)
            self._enqueue_job(pipe, record)
            pipe.execute()

    def _decide(
        self, alert: Alert, notification: Notification, *, source: Source, dry_run: bool
    ) -> Decision | _Candidate:
        if not alert.alertname:
            return Decision(alert, "rejected", reason="missing required label: alertname")
        playbook = self._catalog.for_alertname(alert.alertname)
        if playbook is None:
            return Decision(alert, "ignored", reason=f"no playbook handles alertname {alert.alertname!r}")
        if not playbook.steps_for(alert):
            return Decision(alert, "ignored", reason=f"playbook {playbook.name} has no steps for {alert.status} alerts")
        try:
            alert.check_actionable(playbook.requires_labels)
        except AlertError as exc:
            return Decision(alert, "rejected", reason=str(exc))
        related = (
            [
                other
                for other in notification.firing()
                if other is not alert and other.alertname == alert.alertname and other.model_id == alert.model_id
            ]
            if alert.is_firing
            else []
        )
        replay = source == "replay"
        run_id = f"replay-{secrets.token_hex(4)}-{alert.job_id()}" if replay else alert.job_id()
        record = RunRecord(
            id=run_id[:120],
            playbook=playbook.name,
            source=source,
            dry_run=dry_run,
            alert=alert,
            related=related,
            external_url=notification.externalURL,
        )
        return _Candidate(record, dedup=not replay)

    def _enqueue(
        self, candidates: list[_Candidate], history: Callable[[set[str]], NotificationRecord] | None
    ) -> set[str]:
        """Atomically mark new instances seen, store their records and jobs (and the history record).

        Returns the ids queued now; the others were seen before (duplicates). A concurrent
        delivery touching the same instances makes the transaction retry, and then sees them
        as duplicates.
        """
        keys = [c.dedup_key for c in candidates if c.dedup]
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)  # type: ignore[no-untyped-call]
                    seen = (
                        set(k for k, v in zip(keys, pipe.mget(keys), strict=True) if v is not None) if keys else set()
                    )
                    fresh = [c for c in candidates if c.dedup_key not in seen]
                    pipe.multi()
                    for candidate in fresh:
                        if candidate.dedup:
                            pipe.set(candidate.dedup_key, "1", ex=self._settings.dedup_retention_seconds)
                        self._runs.add(candidate.record, pipe)
                        self._enqueue_job(pipe, candidate.record)
                    queued = {c.record.id for c in fresh}
                    if history is not None:
                        self._history.add(history(queued), pipe)
                    pipe.execute()
                    return queued
                except WatchError:
                    continue

    def _enqueue_job(self, pipe: Pipeline, record: RunRecord) -> None:
        enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)
