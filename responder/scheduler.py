"""`responder scheduler`: fires each schedule's slots (``responder.schedules``) by queueing its
playbook runs, once per slot however many schedulers run.

A slot is claimed in Redis with SET NX on a key naming the slot: the scheduler that gets it
queues the runs, the others skip it. Each run's id is derived from (schedule, slot, item), and a
run already stored is not queued again, so a scheduler that dies half-way leaves the rest of
the slot to whoever claims it after the claim's lease ran out. After downtime, the newest slot
missed by less than ``schedule_catch_up_seconds`` fires late; older ones are recorded as missed
(``responder schedules list``) and logged, never run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline

from responder.alerts import Alert
from responder.errors import ResponderError
from responder.intake import Intake
from responder.log import get_logger
from responder.manifest import Manifest
from responder.playbooks.catalog import Catalog
from responder.runs import RunStore
from responder.schedules import MISSED_KEPT, Schedule, load_schedules, parse_slot, plan_slots, require_valid, slot_text
from responder.settings import Settings
from responder.store.redis_keys import digest, schedule_missed_key, schedule_slot_key, schedule_state_key
from responder.store.redisconn import REDIS_DOWN
from responder.text import one_line

log = get_logger(__name__)

CLAIM_LEASE_SECONDS = 300  # a claim not marked fired by then (its scheduler died) may be taken again
TICK_SECONDS = 30.0  # the longest sleep between two looks, whatever the next slot
REDIS_RETRY_SECONDS = 5.0
FIRED = "fired"
MISSED_KEPT_SECONDS = 90 * 24 * 3600  # how long a schedule's missed slots stay listed after the last one


@dataclass(frozen=True)
class ScheduleState:
    """What Redis holds about one schedule."""

    since: datetime | None = None  # when a scheduler first saw it: no slot before is its business
    last_fired: datetime | None = None
    fired_at: datetime | None = None
    last_slot: datetime | None = None  # the newest slot handled (fired or missed)
    missed: list[datetime] = field(default_factory=list)  # newest first

    @property
    def after(self) -> datetime | None:
        """Slots after this one are still to be handled."""
        known = [t for t in (self.since, self.last_slot) if t is not None]
        return max(known) if known else None


class ScheduleLedger:
    """The schedules' state and slot claims in Redis (keys: ``redis_keys.schedule_*``)."""

    def __init__(self, redis: Redis, *, fired_keep_seconds: int) -> None:
        self._redis = redis
        self._fired_keep = fired_keep_seconds

    def state(self, name: str) -> ScheduleState:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(schedule_state_key(name))
            pipe.zrevrange(schedule_missed_key(name), 0, -1)
            raw, missed = cast(tuple[dict[bytes, bytes], list[bytes]], pipe.execute())
        fields = {k.decode(): parse_slot(v.decode()) for k, v in raw.items()}
        return ScheduleState(
            since=fields.get("since"),
            last_fired=fields.get("last_fired"),
            fired_at=fields.get("fired_at"),
            last_slot=fields.get("last_slot"),
            missed=[parse_slot(m.decode()) for m in missed],
        )

    def note_seen(self, name: str, now: datetime) -> None:
        """Remember when the schedule was first seen (by any scheduler); later calls keep it."""
        self._redis.hsetnx(schedule_state_key(name), "since", slot_text(now))

    def claim(self, name: str, slot: datetime, token: str) -> bool:
        """Take the slot for firing, unless another scheduler holds or has fired it."""
        return bool(self._redis.set(schedule_slot_key(name, slot_text(slot)), token, nx=True, ex=CLAIM_LEASE_SECONDS))

    def release(self, name: str, slot: datetime, token: str) -> None:
        """Give a claim back (nothing was fired), if it is still this scheduler's."""
        key = schedule_slot_key(name, slot_text(slot))

        def give_back(pipe: Pipeline) -> None:
            held = pipe.get(key)
            pipe.multi()
            if held is not None and cast(bytes, held).decode() == token:
                pipe.delete(key)

        self._redis.transaction(give_back, key)

    def fired(self, name: str, slot: datetime, at: datetime) -> None:
        """The slot's runs are all queued: mark its claim fired, and the schedule's state."""
        self._advance(name, slot, fired=True, at=at)
        self._redis.set(schedule_slot_key(name, slot_text(slot)), FIRED, ex=self._fired_keep)

    def missed(self, name: str, slots: Sequence[datetime], newest: datetime) -> None:
        """Record slots too old to fire, and that nothing up to ``newest`` is left to handle."""
        if slots:
            key = schedule_missed_key(name)
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {slot_text(s): s.timestamp() for s in slots})
                pipe.zremrangebyrank(key, 0, -MISSED_KEPT - 1)
                pipe.expire(key, MISSED_KEPT_SECONDS)
                pipe.execute()
        self._advance(name, newest, fired=False, at=None)

    def _advance(self, name: str, slot: datetime, *, fired: bool, at: datetime | None) -> None:
        """Move last_slot (and last_fired) forward to ``slot``, never back (another scheduler may
        have handled a later slot meanwhile)."""
        key = schedule_state_key(name)

        def update(pipe: Pipeline) -> None:
            current = {k.decode(): v.decode() for k, v in cast(dict[bytes, bytes], pipe.hgetall(key)).items()}
            values: dict[str, str] = {}
            if slot_text(slot) > current.get("last_slot", ""):  # fixed-width UTC text sorts as time does
                values["last_slot"] = slot_text(slot)
            if fired and slot_text(slot) > current.get("last_fired", ""):
                values["last_fired"] = slot_text(slot)
                values["fired_at"] = slot_text(at or datetime.now(UTC))
            pipe.multi()
            if values:
                pipe.hset(key, mapping=cast(Any, values))

        self._redis.transaction(update, key)


class Scheduler:
    """Looks at each schedule: records missed slots, fires the due one. ``tick(now)`` is one look;
    the clock is the caller's, so that tests can name the moment."""

    def __init__(
        self,
        settings: Settings,
        schedules: Sequence[Schedule],
        *,
        redis: Redis,
        catalog: Catalog,
        manifest_models: Callable[[], list[str]],
    ) -> None:
        self._settings = settings
        self.schedules = list(schedules)
        self._redis = redis
        self._catalog = catalog
        self._intake = Intake(redis, settings, catalog)
        self._manifest_models = manifest_models
        self.ledger = ScheduleLedger(redis, fired_keep_seconds=settings.schedule_catch_up_seconds + 3600)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def start(self, now: datetime) -> None:
        for schedule in self.schedules:
            self.ledger.note_seen(schedule.name, now)

    def tick(self, now: datetime) -> None:
        for schedule in self.schedules:
            self._look(schedule, now)

    def seconds_to_next(self, now: datetime) -> float:
        """How long to sleep: until the next slot of any schedule, at most ``TICK_SECONDS``."""
        if not self.schedules:
            return TICK_SECONDS
        soonest = min(s.next_slot(now) for s in self.schedules)
        return max(0.01, min(TICK_SECONDS, (soonest - now).total_seconds()))

    def _look(self, schedule: Schedule, now: datetime) -> None:
        after = self.ledger.state(schedule.name).after or now
        plan = plan_slots(
            schedule.cron, after=after, now=now, catch_up_seconds=self._settings.schedule_catch_up_seconds
        )
        if plan.newest is None:
            return
        if plan.missed:
            log.warning(
                "schedule.missed",
                schedule=schedule.name,
                slots=[slot_text(s) for s in plan.missed],
                catch_up_seconds=self._settings.schedule_catch_up_seconds,
            )
        if plan.fire is None:
            self.ledger.missed(schedule.name, plan.missed, plan.newest)
            return
        if plan.missed:
            self.ledger.missed(schedule.name, plan.missed, plan.missed[0])
        self._fire(schedule, plan.fire, now)

    def _fire(self, schedule: Schedule, slot: datetime, now: datetime) -> None:
        bound = {"schedule": schedule.name, "slot": slot_text(slot)}
        if not self.ledger.claim(schedule.name, slot, self.token):
            log.info("schedule.slot_taken", **bound, detail="another scheduler fired or is firing it")
            return
        try:
            items: list[str | None] = list(self._manifest_models()) if schedule.for_each == "manifest_model" else [None]
        except ResponderError as exc:  # the manifest could not be read: try again at the next look
            self.ledger.release(schedule.name, slot, self.token)
            log.error("schedule.fire_failed", **bound, error=one_line(exc, 300), retry_in_seconds=TICK_SECONDS)
            return
        if not items:
            log.warning("schedule.no_models", **bound, manifest=self._settings.manifest_path)
        queued, present = [], []
        playbook = self._catalog.get(schedule.playbook)
        for item in items:
            fingerprint = digest(f"{schedule.name}\n{slot_text(slot)}\n{item or ''}")
            run_id = f"manual-{fingerprint}"  # what Intake.enqueue_manual names it
            if self._redis.exists(RunStore.key(run_id)):  # queued before a crash: never twice
                present.append(run_id)
                continue
            alert = Alert(
                status="firing",
                labels=schedule.run_labels(playbook.alertname or playbook.name, item),
                annotations={"schedule": schedule.name, "slot": slot_text(slot)},
                startsAt=slot,
                fingerprint=fingerprint,
            )
            try:
                record = self._intake.enqueue_manual(
                    playbook.name, alert, dry_run=self._settings.dry_run, requested_by=f"schedule:{schedule.name}"
                )
            except ResponderError as exc:  # a manifest model id that is not an identifier, say
                log.error("schedule.run_refused", **bound, item=item, error=one_line(exc, 300))
                continue
            queued.append(record.id)
        self.ledger.fired(schedule.name, slot, now)
        log.info(
            "schedule.fired",
            **bound,
            playbook=playbook.name,
            late_seconds=round((now - slot).total_seconds(), 1),
            runs=queued,
            already_queued=present,
        )


def run_scheduler(settings: Settings) -> None:
    """Fire the schedules until SIGTERM/SIGINT. Bad schedules stop it at start (ConfigError), as
    does Redis not answering then; later outages are ridden out."""
    from responder.runtime import Runtime
    from responder.worker import StopSignal

    schedules = load_schedules(settings.schedules, settings.playbooks_dir)
    runtime = Runtime.build(settings)
    require_valid(schedules, runtime.catalog)
    runtime.redis.ping()
    github = runtime.integrations(dry_run=settings.dry_run).github

    def manifest_models() -> list[str]:
        path = settings.manifest_path
        return [m.modelId for m in Manifest.parse(github.read_file(path), source=path).models]

    scheduler = Scheduler(
        settings, schedules, redis=runtime.redis, catalog=runtime.catalog, manifest_models=manifest_models
    )
    stop = StopSignal()
    stop.install()
    now = datetime.now(UTC)
    scheduler.start(now)
    if not schedules:
        log.warning("scheduler.no_schedules", detail="set schedules, or add schedules.yaml beside the playbooks")
    log.info(
        "scheduler.started",
        scheduler=scheduler.token,
        schedules={s.name: slot_text(s.next_slot(now)) for s in schedules},
        catch_up_seconds=settings.schedule_catch_up_seconds,
    )
    while not stop.requested:
        try:
            scheduler.tick(datetime.now(UTC))
            wait = scheduler.seconds_to_next(datetime.now(UTC))
        except REDIS_DOWN as exc:
            log.warning("scheduler.redis_unavailable", error=one_line(exc, 200), retry_in_seconds=REDIS_RETRY_SECONDS)
            wait = REDIS_RETRY_SECONDS
        stop.wait(wait)
    log.info("scheduler.stopped", scheduler=scheduler.token)
