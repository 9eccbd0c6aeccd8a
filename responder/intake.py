"""Decide what to do with each alert of a notification, and durably queue the runs.

The only code the webhook handler (and ``responder replay``/``run``) calls. Dedup and
enqueue happen in one Redis transaction per notification: a firing instance is marked
seen exactly when its run record and its RQ job are stored, so a failure leaves nothing
half-done and Alertmanager's retry is accepted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue, Retry

from responder.alerts import Alert, Notification
from responder.errors import AlertError
from responder.playbooks.catalog import Catalog
from responder.runs import RunRecord, RunStore, Source
from responder.settings import Settings

DecisionKind = Literal["queued", "duplicate", "ignored", "rejected"]
JOB_FUNCTION = "responder.jobs.run_playbook_job"
RESOLVED_KEY = "responder:resolved"
RESOLVED_KEEP = 1000


@dataclass(frozen=True)
class Decision:
    fingerprint: str
    alertname: str
    status: str
    decision: DecisionKind
    job_id: str | None = None
    reason: str | None = None

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


@dataclass(frozen=True)
class _Candidate:
    alert: Alert
    record: RunRecord

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

    @property
    def queue(self) -> Queue:
        return self._queue

    def accept(
        self, notification: Notification, *, source: Source = "webhook", dry_run: bool = False
    ) -> list[Decision]:
        """One decision per alert, in the order of the notification."""
        decisions: dict[int, Decision] = {}
        candidates: dict[int, _Candidate] = {}
        resolved: list[Alert] = []
        for index, alert in enumerate(notification.alerts):
            outcome = self._decide(alert, notification, source=source, dry_run=dry_run)
            if isinstance(outcome, _Candidate):
                candidates[index] = outcome
            else:
                decisions[index] = outcome
                if not alert.is_firing and outcome.decision == "ignored":
                    resolved.append(alert)
        queued = self._enqueue(list(candidates.values()), resolved)
        for index, candidate in candidates.items():
            run_id = candidate.record.id
            decisions[index] = (
                _decision(candidate.alert, "queued", job_id=run_id)
                if run_id in queued
                else _decision(
                    candidate.alert, "duplicate", job_id=run_id, reason="this firing instance was already queued"
                )
            )
        return [decisions[i] for i in range(len(notification.alerts))]

    def enqueue_manual(self, playbook: str, alert: Alert, *, dry_run: bool) -> str:
        """Queue a run asked for by a person (``responder run``); returns its job id."""
        self._catalog.get(playbook)
        alert.check_actionable(self._catalog.get(playbook).requires_labels)
        record = RunRecord(
            id=f"manual-{alert.fingerprint}", playbook=playbook, source="manual", dry_run=dry_run, alert=alert
        )
        self._enqueue([_Candidate(alert, record)], [])
        return record.id

    def _decide(
        self, alert: Alert, notification: Notification, *, source: Source, dry_run: bool
    ) -> Decision | _Candidate:
        if not alert.alertname:
            return _decision(alert, "rejected", reason="missing required label: alertname")
        playbook = self._catalog.for_alertname(alert.alertname)
        if playbook is None:
            return _decision(alert, "ignored", reason=f"no playbook handles alertname {alert.alertname!r}")
        if not alert.is_firing:
            return _decision(alert, "ignored", reason="resolved: recorded; no resolve actions run yet")
        try:
            alert.check_actionable(playbook.requires_labels)
        except AlertError as exc:
            return _decision(alert, "rejected", reason=str(exc))
        related = [
            other
            for other in notification.firing()
            if other is not alert and other.alertname == alert.alertname and other.model_id == alert.model_id
        ]
        record = RunRecord(
            id=alert.job_id(),
            playbook=playbook.name,
            source=source,
            dry_run=dry_run,
            alert=alert,
            related=related,
            external_url=notification.externalURL,
        )
        return _Candidate(alert, record)

    def _enqueue(self, candidates: list[_Candidate], resolved: list[Alert]) -> set[str]:
        """Atomically mark new firing instances seen and store their records and jobs.

        Returns the ids that were queued now; the others were seen before (duplicates). A
        concurrent delivery touching the same instances makes the transaction retry, and
        then sees them as duplicates.
        """
        if not candidates and not resolved:
            return set()
        keys = [c.dedup_key for c in candidates]
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)  # type: ignore[no-untyped-call]
                    seen = pipe.mget(keys) if keys else []
                    fresh = [c for c, value in zip(candidates, seen, strict=True) if value is None]
                    pipe.multi()
                    for candidate in fresh:
                        self._stage(pipe, candidate)
                    for alert in resolved:
                        pipe.lpush(RESOLVED_KEY, alert.model_dump_json())
                    if resolved:
                        pipe.ltrim(RESOLVED_KEY, 0, RESOLVED_KEEP - 1)
                    pipe.execute()
                    return {c.record.id for c in fresh}
                except WatchError:
                    continue

    def _stage(self, pipe: Pipeline, candidate: _Candidate) -> None:
        settings = self._settings
        pipe.set(candidate.dedup_key, "1", ex=settings.dedup_retention_seconds)
        self._runs.add(candidate.record, pipe)
        intervals = settings.job_retry_intervals
        self._queue.enqueue_call(
            JOB_FUNCTION,
            args=(candidate.record.id,),
            job_id=candidate.record.id,
            timeout=settings.job_timeout_seconds,
            result_ttl=settings.dedup_retention_seconds,
            failure_ttl=settings.dedup_retention_seconds,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            pipeline=pipe,
        )


def _decision(alert: Alert, kind: DecisionKind, *, job_id: str | None = None, reason: str | None = None) -> Decision:
    return Decision(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        status=alert.status,
        decision=kind,
        job_id=job_id,
        reason=reason,
    )
