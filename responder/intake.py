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
from itertools import islice
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
        self._take_slots = redis.register_script(_TAKE_SLOTS)

    def accept(
        self, notification: Notification, *, source: Source = "webhook", dry_run: bool = False
    ) -> list[Decision]:
        """One decision per alert, in the order of the notification; recorded in the decision history.

        A replay (``source="replay"``) is not de-duplicated: it is how a playbook change is
        tried on a payload that was already handled.
        """
        groups = _firing_groups(notification)
        outcomes = [
            self._decide(alert, notification, groups, source=source, dry_run=dry_run) for alert in notification.alerts
        ]
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
        self,
        alert: Alert,
        notification: Notification,
        groups: dict[tuple[str, str | None], list[Alert]],
        *,
        source: Source,
        dry_run: bool,
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
        related = _related(alert, groups) if alert.is_firing else []
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
        delivery touching the same dedup keys makes it start over (and then see duplicates).

        Storm-guard slots are reserved atomically (a Lua script) rather than watched: every
        delivery for a playbook touches its counter, and watching it made concurrent
        deliveries of different alerts abort each other. Slots of an attempt that does not
        commit are given back.
        """
        window = self._window()
        dedup_keys = [c.dedup_key for c in candidates if c.dedup]
        triage_keys = [_triage_key(d.alert) for d in rejected]
        watched = [*dedup_keys, *triage_keys]
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                slots = _Slots(self, window)
                try:
                    if watched:
                        pipe.watch(*watched)  # type: ignore[no-untyped-call]
                    plan = self._plan(pipe, candidates, rejected, slots, dedup_keys, triage_keys)
                    pipe.multi()
                    self._write(pipe, plan, candidates, rejected, window)
                    if history is not None:
                        self._history.add(history(plan), pipe)
                    pipe.execute()
                    return plan
                except WatchError:
                    slots.give_back()
                    continue
                except BaseException:
                    slots.give_back()
                    raise

    def _plan(
        self,
        pipe: Pipeline,
        candidates: list[_Candidate],
        rejected: list[Decision],
        slots: _Slots,
        dedup_keys: list[str],
        triage_keys: list[str],
    ) -> _Plan:
        seen = {k for k, v in zip(dedup_keys, _mget(pipe, dedup_keys), strict=True) if v is not None}
        plan = _Plan()
        fresh: list[_Candidate] = []
        ids: set[str] = set()
        for candidate in candidates:
            run_id = candidate.record.id
            if run_id in ids:
                plan.repeated.add(id(candidate))  # listed twice in this notification
                continue
            ids.add(run_id)
            if not (candidate.dedup and candidate.dedup_key in seen):
                fresh.append(candidate)
        wanted: dict[str, int] = {}
        for candidate in fresh:
            if candidate.storm_guarded:
                wanted[candidate.record.playbook] = wanted.get(candidate.record.playbook, 0) + 1
        allowed = {playbook: slots.take(playbook, count) for playbook, count in wanted.items()}
        for candidate in fresh:
            playbook, run_id = candidate.record.playbook, candidate.record.id
            if candidate.storm_guarded:
                if allowed[playbook] == 0:
                    plan.suppressed[run_id] = self._storm_reason(playbook)
                    continue
                allowed[playbook] -= 1
            plan.queued.add(run_id)
        fresh_keys = {k for k, v in zip(triage_keys, _mget(pipe, triage_keys), strict=True) if v is None}
        fingerprints = list(dict.fromkeys(d.fingerprint for d in rejected if _triage_key(d.alert) in fresh_keys))
        room = slots.take(TRIAGE_PLAYBOOK, len(fingerprints)) if fingerprints else 0
        for fingerprint in fingerprints[:room]:
            plan.triage[fingerprint] = f"triage-{_digest(fingerprint)}-{secrets.token_hex(3)}"
        plan.triage_suppressed.update(fingerprints[room:])
        return plan

    def _storm_reason(self, playbook: str) -> str:
        return (
            f"storm: more than {self._settings.storm_max_runs} runs of {playbook} started within "
            f"{self._settings.storm_window_seconds}s; listed on the storm ticket"
        )

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

    def _window(self) -> int:
        return int(datetime.now(UTC).timestamp() // self._settings.storm_window_seconds)

    @staticmethod
    def _storm_counter(playbook: str, window: int) -> str:
        return f"responder:storm:{playbook}:{window}:started"


# Take up to ARGV[1] slots below the limit ARGV[2]; returns how many were taken.
_TAKE_SLOTS = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = math.min(tonumber(ARGV[1]), math.max(0, tonumber(ARGV[2]) - used))
if taken > 0 then
  redis.call('INCRBY', KEYS[1], taken)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return taken
"""


class _Slots:
    """Storm-guard slots one intake attempt took, per playbook, to give back if it does not commit."""

    def __init__(self, intake: Intake, window: int) -> None:
        self._intake = intake
        self._window = window
        self._taken: dict[str, int] = {}

    def take(self, playbook: str, count: int) -> int:
        intake = self._intake
        key = intake._storm_counter(playbook, self._window)
        taken = int(
            intake._take_slots(
                keys=[key], args=[count, intake._settings.storm_max_runs, 2 * intake._settings.storm_window_seconds]
            )
        )
        self._taken[playbook] = self._taken.get(playbook, 0) + taken
        return taken

    def give_back(self) -> None:
        for playbook, count in self._taken.items():
            if count:
                self._intake._redis.decrby(self._intake._storm_counter(playbook, self._window), count)
        self._taken.clear()


MAX_RELATED = 50  # sibling alerts kept in a run record (for checklists); bounds its size in big groups


def _firing_groups(notification: Notification) -> dict[tuple[str, str | None], list[Alert]]:
    """The notification's firing alerts by (alertname, model_id), built once per notification."""
    groups: dict[tuple[str, str | None], list[Alert]] = {}
    for alert in notification.firing():
        groups.setdefault((alert.alertname, alert.model_id), []).append(alert)
    return groups


def _related(alert: Alert, groups: dict[tuple[str, str | None], list[Alert]]) -> list[Alert]:
    """Other firing alerts of the same alertname and model in the notification, labels only."""
    siblings = (a for a in groups.get((alert.alertname, alert.model_id), []) if a is not alert)
    return [a.model_copy(update={"annotations": {}}) for a in islice(siblings, MAX_RELATED)]


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
