"""Decide what to do with each alert of a notification, and durably queue the runs.

The decision rules are ``responder.decisions`` (pure); this module reads what they depend on
from Redis and commits the writes of their plan.

The only code the webhook handler (and ``responder replay``/``run``) calls. Dedup, the storm
guard, the decision history and the enqueue happen in one atomic Redis commit per batch of
notifications (``writeset``): an instance is marked seen exactly when its run record and its
RQ job are stored, so a failure leaves nothing half-done and Alertmanager's retry is
accepted again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import cast

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from responder.alerts import Alert, Notification
from responder.decisions import (
    STORM_PLAYBOOK,
    TRIAGE_PLAYBOOK,
    Candidate,
    Decision,
    Found,
    Plan,
    StormGuard,
    decide,
    final,
    firing_groups,
)
from responder.decisions import plan as decide_plan
from responder.playbooks.catalog import Catalog
from responder.runs import QueuedRun, RunRecord, RunStore, Source
from responder.settings import Settings
from responder.store.history import History, Received, new_record_id
from responder.store.queueing import FirstAttempts, enqueue_run
from responder.store.redis_keys import digest, storm_counter_key, storm_models_key, triage_key
from responder.store.redisconn import KeptConnectionScript, ReplicatedScript
from responder.store.writeset import WriteSet, apply_script, apply_script_async


@dataclass
class _Batch:
    """The notifications of one commit, decided alert by alert up to what Redis must tell."""

    notifications: Sequence[Notification]
    ids: list[str]  # each notification's id in the decision history
    payloads: list[bytes]  # each notification's body as received
    received_at: list[float]  # each notification's arrival (Unix time)
    source: Source
    outcomes: list[list[Decision | Candidate]]
    candidates: list[Candidate]
    rejected: list[Decision]
    window: int
    counters: dict[str, str]  # storm counter key by playbook
    reads: list[str] = field(init=False)  # what the decision depends on: dedup and triage markers, storm counters

    def __post_init__(self) -> None:
        dedup = [c.dedup_key for c in self.candidates if c.dedup]
        triage = [triage_key(d.fingerprint) for d in self.rejected]
        self.reads = list(dict.fromkeys([*dedup, *triage, *self.counters.values()]))

    def decisions(self, plan: Plan) -> list[list[Decision]]:
        return [[final(o, plan) for o in each] for each in self.outcomes]


class CounterGuess:
    """What this process last saw of the storm counters, to commit a batch without reading first.

    A commit is tried first without reading: as if no alert of the batch had been seen and each
    storm counter stood where this process last saw it. The commit's conditions check exactly
    that, so a wrong guess (a duplicate, a counter moved on by others) costs one round trip: the
    intake then reads and decides again. In a storm of new alerts, the common case, a batch takes
    one round trip instead of two. A guess may only let runs through (the commit checks the room
    it takes), never hold them back: a plan from a guess that suppresses anything is decided again
    from what Redis holds (an operator may have reset a counter).
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}  # storm counter key -> value last read or written here

    @property
    def known(self) -> list[str]:
        """The counters remembered (those of the current storm window only)."""
        return list(self._seen)

    def guess(self, batch: _Batch) -> list[bytes | None]:
        seen = self._seen
        return [str(seen[key]).encode() if key in seen else None for key in batch.reads]

    def remember(self, batch: _Batch, values: list[bytes | None]) -> None:
        read = dict(zip(batch.reads, values, strict=True))
        for key in batch.counters.values():
            self._note(batch, key, int(read[key] or 0))

    def slots_taken(self, batch: _Batch, plan: Plan) -> None:
        for playbook, taken in plan.slots.items():
            key = batch.counters[playbook]
            self._note(batch, key, self._seen.get(key, 0) + taken)

    def _note(self, batch: _Batch, key: str, value: int) -> None:
        if key not in self._seen:  # perhaps a new storm window: forget the counters of older ones
            window = f":{batch.window}:started"
            self._seen = {k: v for k, v in self._seen.items() if k.endswith(window)}
        self._seen[key] = value


class Intake:
    def __init__(self, redis: Redis, settings: Settings, catalog: Catalog) -> None:
        self._redis = redis
        self._settings = settings
        self._catalog = catalog
        self._queue = Queue(settings.queue, connection=redis)
        self._jobs = FirstAttempts(self._queue, settings)
        self._runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
        self._history = History(
            redis,
            keep=settings.history_keep,
            retention_seconds=settings.history_retention_seconds,
            max_bytes=settings.history_max_bytes,
        )
        # A payload is read by its history record and by its runs: kept as long as either.
        self._payload_ttl = max(settings.history_retention_seconds, settings.dedup_retention_seconds)
        self._apply = apply_script(redis)
        self._async_script: KeptConnectionScript | ReplicatedScript | None = None
        self._counters = CounterGuess()
        self._guard = StormGuard(settings.storm_max_runs, settings.storm_window_seconds)

    def accept(
        self,
        notification: Notification,
        *,
        source: Source = "webhook",
        dry_run: bool = False,
        payload: bytes | None = None,
    ) -> list[Decision]:
        """One decision per alert, in the order of the notification; recorded in the decision history.

        ``payload``: the body the notification was parsed from, kept as received (by default
        the notification's JSON). A replay (``source="replay"``) is not de-duplicated: it is how
        a playbook change is tried on a payload that was already handled.
        """
        return self.accept_many([notification], source=source, dry_run=dry_run, payloads=[payload])[0]

    def accept_many(
        self,
        notifications: Sequence[Notification],
        *,
        source: Source = "webhook",
        dry_run: bool = False,
        payloads: Sequence[bytes | None] | None = None,
    ) -> list[list[Decision]]:
        """``accept`` for several notifications in one commit (the receiver's group commit).

        Each gets its own decisions and history record, as if accepted one after the other in
        the order given: an instance in two of them is queued for the first and a duplicate for
        the second.
        """
        batch = self._batch(notifications, payloads, source=source, dry_run=dry_run)
        values, guessed = self._counters.guess(batch), True
        while True:
            plan, writes, decisions = self._attempt(batch, values)
            if not (guessed and plan.holds_back) and writes.apply(self._apply):
                self._counters.slots_taken(batch, plan)
                self._history.committed(batch.payloads)
                return decisions
            values, guessed = _mget(self._redis, batch.reads), False
            self._counters.remember(batch, values)

    async def accept_many_async(
        self,
        redis: AsyncRedis,
        notifications: Sequence[Notification],
        *,
        source: Source = "webhook",
        payloads: Sequence[bytes | None] | None = None,
    ) -> list[list[Decision]]:
        """``accept_many`` through an asyncio Redis client (the receiver's event loop does not wait
        on Redis: it reads the next requests meanwhile)."""
        batch = self._batch(notifications, payloads, source=source, dry_run=False)
        apply = self._apply_async(redis)
        values, guessed = self._counters.guess(batch), True
        while True:
            plan, writes, decisions = self._attempt(batch, values)
            if not (guessed and plan.holds_back) and await writes.apply_async(apply):
                self._counters.slots_taken(batch, plan)
                if self._history.trim_due(batch.payloads):
                    await self._history.trim_async(redis)
                return decisions
            values, guessed = cast(list[bytes | None], await redis.mget(batch.reads)) if batch.reads else [], False
            self._counters.remember(batch, values)

    def _apply_async(self, redis: AsyncRedis) -> KeptConnectionScript | ReplicatedScript:
        """The commit script bound to ``redis``, made once (making it hashes the script's text)."""
        if self._async_script is None or self._async_script.registered_client is not redis:
            self._async_script = apply_script_async(redis, min_replicas=self._settings.redis_min_replicas)
        return self._async_script

    def _batch(
        self,
        notifications: Sequence[Notification],
        payloads: Sequence[bytes | None] | None,
        *,
        source: Source,
        dry_run: bool,
    ) -> _Batch:
        ids = [new_record_id() for _ in notifications]
        now = time.time()
        received_at = [now + i * 1e-6 for i in range(len(ids))]  # a microsecond apart: the history keeps their order
        outcomes = [
            self._outcomes(n, Found(i, ids[i], received_at[i]), source=source, dry_run=dry_run)
            for i, n in enumerate(notifications)
        ]
        candidates = [o for each in outcomes for o in each if isinstance(o, Candidate)]
        rejected = [
            o
            for each in outcomes
            for o in each
            if isinstance(o, Decision) and o.decision == "rejected" and source == "webhook"
        ]
        guarded = {c.run.playbook for c in candidates if c.storm_guarded}
        if rejected:
            guarded.add(TRIAGE_PLAYBOOK)
        window = self._window()
        return _Batch(
            notifications=notifications,
            ids=ids,
            payloads=[_payload(n, p) for n, p in zip(notifications, payloads or [None] * len(ids), strict=True)],
            received_at=received_at,
            source=source,
            outcomes=outcomes,
            candidates=candidates,
            rejected=rejected,
            window=window,
            counters={playbook: storm_counter_key(playbook, window) for playbook in sorted(guarded)},
        )

    def _outcomes(
        self, notification: Notification, found: Found, *, source: Source, dry_run: bool
    ) -> list[Decision | Candidate]:
        groups = firing_groups(notification)
        return [
            decide(alert, index, groups, found, self._catalog, source=source, dry_run=dry_run)
            for index, alert in enumerate(notification.alerts)
        ]

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

    # --- the commit --------------------------------------------------------------------

    def _attempt(self, batch: _Batch, values: list[bytes | None]) -> tuple[Plan, WriteSet, list[list[Decision]]]:
        """Decide from what was read (``batch.reads``) and gather the writes.

        The writes apply only if every dedup or triage key this decision took as absent is still
        absent and every storm counter still has the room it was found with (a concurrent
        delivery changed neither); otherwise nothing is written and the intake reads and
        decides again, and then sees the other delivery's runs as duplicates.
        """
        read = dict(zip(batch.reads, values, strict=True))
        used = {playbook: int(read[key] or 0) for playbook, key in batch.counters.items()}
        plan = decide_plan(batch.candidates, batch.rejected, read, used, self._guard)
        writes = WriteSet()
        _write(writes, plan, batch, self._settings, self._runs, self._jobs)
        decisions = batch.decisions(plan)
        received = [
            Received(id, at, batch.source, payload, [d.to_json() for d in each])
            for id, at, payload, each in zip(batch.ids, batch.received_at, batch.payloads, decisions, strict=True)
        ]
        self._history.add_many(received, writes, payload_ttl=self._payload_ttl)
        return plan, writes, decisions

    def _window(self) -> int:
        return int(datetime.now(UTC).timestamp() // self._settings.storm_window_seconds)


def _write(pipe: WriteSet, plan: Plan, batch: _Batch, settings: Settings, runs: RunStore, jobs: FirstAttempts) -> None:
    """Gather the plan's writes on ``pipe``, with the conditions they were decided on."""
    candidates, rejected, window = batch.candidates, batch.rejected, batch.window
    for playbook, count in plan.slots.items():
        pipe.take(
            batch.counters[playbook],
            count,
            limit=settings.storm_max_runs,
            ttl=2 * settings.storm_window_seconds,
        )
    retention = settings.dedup_retention_seconds
    records: list[RunRecord | QueuedRun] = []  # run records to store
    queued: list[str] = []  # of which these are queued, in this order
    suppressed_by_playbook: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        run = candidate.run
        if id(candidate) in plan.repeated:
            continue
        if run.id in plan.queued:
            if candidate.dedup:
                pipe.set(candidate.dedup_key, "1", ex=retention)
                pipe.require_absent(candidate.dedup_key)
            records.append(run)
            queued.append(run.id)
        elif run.id in plan.suppressed:
            pipe.set(candidate.dedup_key, "1", ex=retention)
            pipe.require_absent(candidate.dedup_key)
            records.append(replace(run, status="suppressed", error=plan.suppressed[run.id]))
            suppressed_by_playbook.setdefault(run.playbook, []).append(candidate)
    for playbook, suppressed in suppressed_by_playbook.items():
        key = storm_models_key(playbook, window)
        pipe.rpush(key, *[c.alert.model_id or "?" for c in suppressed])
        pipe.expire(key, retention)
        records.append(_system_run(STORM_PLAYBOOK, _storm_alert(suppressed[0].alert, playbook, window)))
        queued.append(records[-1].id)
    for decision in rejected:
        run_id = plan.triage.get(decision.fingerprint)
        if run_id is not None:
            pipe.set(triage_key(decision.fingerprint), run_id, ex=retention)
            pipe.require_absent(triage_key(decision.fingerprint))
            records.append(RunRecord(id=run_id, playbook=TRIAGE_PLAYBOOK, alert=decision.alert, reason=decision.reason))
            queued.append(run_id)
    if plan.triage_suppressed:
        # A flood of unusable alerts: each is on the storm ticket of needs-triage instead of its own.
        key = storm_models_key(TRIAGE_PLAYBOOK, window)
        pipe.rpush(key, *[f"fp-{digest(fp)}" for fp in sorted(plan.triage_suppressed)])
        pipe.expire(key, retention)
        example = next(d.alert for d in rejected if d.fingerprint in plan.triage_suppressed)
        storm_alert = _storm_alert(example, TRIAGE_PLAYBOOK, window, alertname=TRIAGE_PLAYBOOK)
        records.append(_system_run(STORM_PLAYBOOK, storm_alert))
        queued.append(records[-1].id)
        for fingerprint in plan.triage_suppressed:
            key = triage_key(fingerprint)
            pipe.set(key, "storm", ex=retention)
            pipe.require_absent(key)
    stored = {r.id for r in records}
    shared = {id(c.group): c.group for c in candidates if c.group is not None and c.run.id in stored}
    for group in shared.values():
        runs.add_related(group.key, group.copies, pipe)
    runs.add_many(records, pipe)
    jobs.add(pipe, queued)


def _payload(notification: Notification, payload: bytes | None) -> bytes:
    """The body as received, or without one (a replay, a test) the notification's JSON."""
    return payload if payload is not None else notification.model_dump_json().encode()


def _system_run(playbook: str, alert: Alert) -> RunRecord:
    return RunRecord(id=f"{playbook}-{secrets.token_hex(6)}", playbook=playbook, alert=alert)


def _mget(redis: Redis, keys: list[str]) -> list[bytes | None]:
    return cast(list[bytes | None], redis.mget(keys)) if keys else []


def _storm_alert(example: Alert, playbook: str, window: int, *, alertname: str | None = None) -> Alert:
    """The alert a storm report run is about: the playbook's alertname and the window."""
    return Alert(
        status="firing",
        labels={"alertname": alertname or example.alertname, "storm_playbook": playbook, "storm_window": str(window)},
        annotations={},
        startsAt=datetime.now(UTC),
        fingerprint=f"storm-{playbook}-{window}",
    )
