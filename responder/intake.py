"""Decide what to do with each alert of a notification, and durably queue the runs.

The only code the webhook handler (and ``responder replay``/``run``) calls. Dedup, the storm
guard, the decision history and the enqueue happen in one Redis transaction per
notification: an instance is marked seen exactly when its run record and its RQ job are
stored, so a failure leaves nothing half-done and Alertmanager's retry is accepted again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue

from responder.alerts import Alert, Notification
from responder.errors import AlertError
from responder.history import AlertDecision, History, NotificationRecord
from responder.playbooks.catalog import Catalog
from responder.queueing import enqueue_run
from responder.redis_keys import storm_models_key
from responder.runs import RunRecord, RunStore, Source
from responder.settings import Settings

DecisionKind = Literal["queued", "duplicate", "ignored", "rejected", "suppressed"]
TRIAGE_PLAYBOOK = "needs-triage"
STORM_PLAYBOOK = "storm"


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
    """A run to queue unless its instance was seen (dedup) or a storm suppresses it."""

    record: RunRecord
    dedup: bool = True

    @property
    def dedup_key(self) -> str:
        return f"responder:seen:{self.record.id}"

    @property
    def storm_guarded(self) -> bool:
        return self.dedup and self.record.alert.is_firing and self.record.source == "webhook"


@dataclass
class _Plan:
    """What one transaction writes, decided from what it read."""

    queued: set[str] = field(default_factory=set)
    suppressed: dict[str, str] = field(default_factory=dict)  # run id -> reason
    triage: dict[str, str] = field(default_factory=dict)  # rejected fingerprint -> triage run id
    triage_suppressed: set[str] = field(default_factory=set)  # rejected fingerprints past the storm limit
    repeated: set[int] = field(default_factory=set)  # ids of candidates listed twice in one notification


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
        rejected = [o for o in outcomes if isinstance(o, Decision) and o.decision == "rejected" and source == "webhook"]
        history = NotificationRecord(
            source=source,
            receiver=notification.receiver,
            group_key=notification.groupKey,
            status=notification.status,
            external_url=notification.externalURL,
            truncated_alerts=notification.truncatedAlerts,
        )

        def decisions(plan: _Plan) -> list[Decision]:
            return [self._final(outcome, plan) for outcome in outcomes]

        plan = self._commit(
            candidates,
            rejected,
            lambda plan: history.model_copy(update={"alerts": [d.to_history() for d in decisions(plan)]}),
        )
        return decisions(plan)

    @staticmethod
    def _final(outcome: Decision | _Candidate, plan: _Plan) -> Decision:
        if isinstance(outcome, Decision):
            triage = plan.triage.get(outcome.fingerprint) if outcome.decision == "rejected" else None
            return Decision(outcome.alert, outcome.decision, job_id=triage, reason=outcome.reason)
        run_id, alert = outcome.record.id, outcome.record.alert
        if id(outcome) in plan.repeated:
            return Decision(alert, "duplicate", job_id=run_id, reason="listed twice in this notification")
        if run_id in plan.queued:
            return Decision(
                alert, "queued", job_id=run_id, reason=None if outcome.dedup else "replay: not de-duplicated"
            )
        if run_id in plan.suppressed:
            return Decision(alert, "suppressed", job_id=run_id, reason=plan.suppressed[run_id])
        return Decision(alert, "duplicate", job_id=run_id, reason=f"this {alert.status} instance was already queued")

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
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.multi()  # RQ expects to be handed a pipeline already in MULTI mode
            self._runs.add(record, pipe)
            if queue:
                enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)
            pipe.execute()
        return record

    def requeue(self, record: RunRecord) -> None:
        """Queue an existing run again (``responder jobs retry``); its done steps stay done."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.multi()
            record.status = "queued"
            self._runs.add(record, pipe)
            enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)
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

    # --- the transaction ---------------------------------------------------------------

    def _commit(
        self,
        candidates: list[_Candidate],
        rejected: list[Decision],
        history: Callable[[_Plan], NotificationRecord] | None,
    ) -> _Plan:
        """Read what was seen, decide, and write it all in one MULTI/EXEC; a concurrent
        delivery touching the same keys makes it start over (and then see duplicates)."""
        window = self._window()
        storm_keys = sorted(
            {self._storm_counter(c.record.playbook, window) for c in candidates if c.storm_guarded}
            | ({self._storm_counter(TRIAGE_PLAYBOOK, window)} if rejected else set())
        )
        dedup_keys = [c.dedup_key for c in candidates if c.dedup]
        triage_keys = [_triage_key(d.alert) for d in rejected]
        watched = [*dedup_keys, *triage_keys, *storm_keys]
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if watched:
                        pipe.watch(*watched)  # type: ignore[no-untyped-call]
                    plan = self._plan(pipe, candidates, rejected, window, dedup_keys, triage_keys)
                    pipe.multi()
                    self._write(pipe, plan, candidates, rejected, window)
                    if history is not None:
                        self._history.add(history(plan), pipe)
                    pipe.execute()
                    return plan
                except WatchError:
                    continue

    def _plan(
        self,
        pipe: Pipeline,
        candidates: list[_Candidate],
        rejected: list[Decision],
        window: int,
        dedup_keys: list[str],
        triage_keys: list[str],
    ) -> _Plan:
        seen = {k for k, v in zip(dedup_keys, _mget(pipe, dedup_keys), strict=True) if v is not None}
        plan = _Plan()
        started: dict[str, int] = {}

        def storm_allows(playbook: str) -> bool:
            if playbook not in started:
                started[playbook] = int(cast(bytes | None, pipe.get(self._storm_counter(playbook, window))) or 0)
            if started[playbook] >= self._settings.storm_max_runs:
                return False
            started[playbook] += 1
            return True

        storm_reason = (
            f"storm: more than {self._settings.storm_max_runs} runs of {{}} started within "
            f"{self._settings.storm_window_seconds}s; listed on the storm ticket"
        )
        for candidate in candidates:
            run_id = candidate.record.id
            if run_id in plan.queued or run_id in plan.suppressed:
                plan.repeated.add(id(candidate))  # listed twice in this notification
                continue
            if candidate.dedup and candidate.dedup_key in seen:
                continue
            playbook = candidate.record.playbook
            if candidate.storm_guarded and not storm_allows(playbook):
                plan.suppressed[run_id] = storm_reason.format(playbook)
                continue
            plan.queued.add(run_id)
        fresh_triage = {k for k, v in zip(triage_keys, _mget(pipe, triage_keys), strict=True) if v is None}
        for decision in rejected:
            fingerprint = decision.fingerprint
            if _triage_key(decision.alert) not in fresh_triage or fingerprint in plan.triage:
                continue
            if fingerprint in plan.triage_suppressed or not storm_allows(TRIAGE_PLAYBOOK):
                plan.triage_suppressed.add(fingerprint)
                continue
            plan.triage[fingerprint] = f"triage-{_digest(fingerprint)}-{secrets.token_hex(3)}"
        return plan

    def _write(
        self, pipe: Pipeline, plan: _Plan, candidates: list[_Candidate], rejected: list[Decision], window: int
    ) -> None:
        retention = self._settings.dedup_retention_seconds
        suppressed_by_playbook: dict[str, list[RunRecord]] = {}
        for candidate in candidates:
            record = candidate.record
            if id(candidate) in plan.repeated:
                continue
            if record.id in plan.queued:
                if candidate.dedup:
                    pipe.set(candidate.dedup_key, "1", ex=retention)
                if candidate.storm_guarded:
                    self._count_storm(pipe, record.playbook, window)
                self._runs.add(record, pipe)
                enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)
            elif record.id in plan.suppressed:
                pipe.set(candidate.dedup_key, "1", ex=retention)
                suppressed = record.model_copy(update={"status": "suppressed", "error": plan.suppressed[record.id]})
                self._runs.add(suppressed, pipe)
                suppressed_by_playbook.setdefault(record.playbook, []).append(record)
        for playbook, records in suppressed_by_playbook.items():
            key = storm_models_key(playbook, window)
            pipe.rpush(key, *[r.model_id or "?" for r in records])
            pipe.expire(key, retention)
            self._queue_system_run(pipe, STORM_PLAYBOOK, _storm_alert(records[0].alert, playbook, window))
        for decision in rejected:
            run_id = plan.triage.get(decision.fingerprint)
            if run_id is not None:
                pipe.set(_triage_key(decision.alert), run_id, ex=retention)
                self._count_storm(pipe, TRIAGE_PLAYBOOK, window)
                record = RunRecord(id=run_id, playbook=TRIAGE_PLAYBOOK, alert=decision.alert, reason=decision.reason)
                self._runs.add(record, pipe)
                enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)
        if plan.triage_suppressed:
            # A flood of unusable alerts: each is on the storm ticket of needs-triage instead of its own.
            key = storm_models_key(TRIAGE_PLAYBOOK, window)
            pipe.rpush(key, *[f"fp-{_digest(fp)}" for fp in sorted(plan.triage_suppressed)])
            pipe.expire(key, retention)
            example = next(d.alert for d in rejected if d.fingerprint in plan.triage_suppressed)
            storm_alert = _storm_alert(example, TRIAGE_PLAYBOOK, window, alertname=TRIAGE_PLAYBOOK)
            self._queue_system_run(pipe, STORM_PLAYBOOK, storm_alert)
            for fingerprint in plan.triage_suppressed:
                pipe.set(f"responder:seen:triage:{_digest(fingerprint)}", "storm", ex=retention)

    def _queue_system_run(self, pipe: Pipeline, playbook: str, alert: Alert) -> None:
        record = RunRecord(id=f"{playbook}-{secrets.token_hex(6)}", playbook=playbook, alert=alert)
        self._runs.add(record, pipe)
        enqueue_run(self._queue, self._settings, record.id, pipeline=pipe)

    def _count_storm(self, pipe: Pipeline, playbook: str, window: int) -> None:
        key = self._storm_counter(playbook, window)
        pipe.incr(key)
        pipe.expire(key, 2 * self._settings.storm_window_seconds)

    def _window(self) -> int:
        return int(datetime.now(UTC).timestamp() // self._settings.storm_window_seconds)

    @staticmethod
    def _storm_counter(playbook: str, window: int) -> str:
        return f"responder:storm:{playbook}:{window}:started"


def _mget(pipe: Pipeline, keys: list[str]) -> list[bytes | None]:
    return cast(list[bytes | None], pipe.mget(keys)) if keys else []


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _triage_key(alert: Alert) -> str:
    """One needs-triage ticket per fingerprint (hashed: the fingerprint is untrusted text)."""
    return f"responder:seen:triage:{_digest(alert.fingerprint)}"


def _storm_alert(example: Alert, playbook: str, window: int, *, alertname: str | None = None) -> Alert:
    """The alert a storm report run is about: the playbook's alertname and the window."""
    return Alert(
        status="firing",
        labels={"alertname": alertname or example.alertname, "model_id": f"storm-{window}", "storm_playbook": playbook},
        annotations={},
        startsAt=datetime.now(UTC),
        fingerprint=f"storm-{playbook}-{window}",
    )
