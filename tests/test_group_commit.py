"""Deliveries that arrive together share one Redis transaction, each keeping its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisUnreachable

from responder.alerts import Notification
from responder.groupcommit import GroupCommit
from responder.intake import Decision, Intake
from responder.playbooks.catalog import load_catalog
from responder.settings import Settings
from responder.store.history import History
from responder.store.redisconn import REDIS_DOWN, async_redis_client
from tests.conftest import load_example, make_settings


@pytest.fixture
async def loop_redis(redis_url: str) -> AsyncIterator[AsyncRedis]:
    client = AsyncRedis.from_url(redis_url)
    yield client
    await client.aclose()


def intake(settings: Settings, redis: Redis) -> Intake:
    return Intake(redis, settings, load_catalog(settings.playbooks_dir))


def drift(model_id: str) -> Notification:
    payload = load_example("drift-two-segments-firing.json")
    for n, alert in enumerate(payload["alerts"]):
        alert["labels"]["model_id"] = model_id
        alert["fingerprint"] = f"{model_id}-{n}"
    return Notification.model_validate(payload)


def decisions(answers: list[Decision]) -> list[str]:
    return [d.decision for d in answers]


def test_accept_many_answers_each_notification_for_its_own_alerts(dry_settings: Settings, redis: Redis) -> None:
    answers = intake(dry_settings, redis).accept_many([drift("churn"), drift("fraud")])
    assert [["queued", "queued"], ["queued", "queued"]] == [decisions(a) for a in answers]
    assert {"churn"} == {d.alert.model_id for d in answers[0]}


def test_accept_many_queues_an_instance_in_two_notifications_once(dry_settings: Settings, redis: Redis) -> None:
    """The later delivery of the same instances is a duplicate, as if it had come after the first."""
    [first, again] = intake(dry_settings, redis).accept_many([drift("churn"), drift("churn")])
    assert ["queued", "queued"] == decisions(first)
    assert ["duplicate", "duplicate"] == decisions(again)
    assert "this firing instance was already queued" == again[0].reason
    assert [d.job_id for d in first] == [d.job_id for d in again]


def test_accept_many_keeps_one_history_record_per_notification(dry_settings: Settings, redis: Redis) -> None:
    intake(dry_settings, redis).accept_many([drift("churn"), drift("fraud"), drift("churn")])
    history = History(redis, keep=dry_settings.history_keep, retention_seconds=dry_settings.history_retention_seconds)
    counts = [record.summary()["decisions"] for record in reversed(history.recent(limit=10))]
    assert [{"queued": 2}, {"queued": 2}, {"duplicate": 2}] == counts


class Batches(Intake):
    """The real intake, noting how many notifications each commit carried."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sizes: list[int] = []

    async def accept_many_async(
        self, redis: AsyncRedis, notifications: list[Notification], **kwargs: Any
    ) -> list[list[Decision]]:
        self.sizes.append(len(notifications))
        return await super().accept_many_async(redis, notifications, **kwargs)


def batches(settings: Settings, redis: Redis) -> Batches:
    return Batches(redis, settings, load_catalog(settings.playbooks_dir))


async def test_deliveries_waiting_together_share_one_commit(
    dry_settings: Settings, redis: Redis, loop_redis: AsyncRedis
) -> None:
    intake = batches(dry_settings, redis)
    commit = GroupCommit(intake, loop_redis)
    answers = await asyncio.gather(*(commit.accept(drift(f"model-{n}")) for n in range(10)))
    assert [10] == intake.sizes
    assert [["queued", "queued"]] * 10 == [decisions(a) for a in answers]


async def test_a_batch_stops_at_the_alert_limit(
    dry_settings: Settings, redis: Redis, loop_redis: AsyncRedis
) -> None:
    """Two alerts each, at most five per commit: ten deliveries go two by two."""
    intake = batches(dry_settings, redis)
    commit = GroupCommit(intake, loop_redis, max_alerts=5)
    await asyncio.gather(*(commit.accept(drift(f"model-{n}")) for n in range(10)))
    assert [2, 2, 2, 2, 2] == intake.sizes


class FailsOn(Intake):
    """An intake that breaks on one model's notifications (a stand-in for a bug hit by one payload)."""

    def __init__(self, *args: Any, model_id: str) -> None:
        super().__init__(*args)
        self.model_id = model_id

    async def accept_many_async(
        self, redis: AsyncRedis, notifications: list[Notification], **kwargs: Any
    ) -> list[list[Decision]]:
        if any(a.model_id == self.model_id for n in notifications for a in n.alerts):
            raise RuntimeError(f"cannot handle {self.model_id}")
        return await super().accept_many_async(redis, notifications, **kwargs)


async def test_a_notification_that_breaks_the_batch_fails_alone(
    dry_settings: Settings, redis: Redis, loop_redis: AsyncRedis
) -> None:
    intake = FailsOn(redis, dry_settings, load_catalog(dry_settings.playbooks_dir), model_id="bad")
    commit = GroupCommit(intake, loop_redis)
    results = await asyncio.gather(
        commit.accept(drift("good-1")), commit.accept(drift("bad")), commit.accept(drift("good-2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    assert [["queued", "queued"], ["queued", "queued"]] == [decisions(r) for r in (results[0], results[2])]


async def test_redis_down_fails_every_delivery_of_the_batch(dry_settings: Settings, redis: Redis) -> None:
    """Each gets the error (the receiver answers 503 and Alertmanager retries): none is dropped silently."""
    down = AsyncRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    commit = GroupCommit(intake(dry_settings, redis), down)
    results = await asyncio.gather(commit.accept(drift("a")), commit.accept(drift("b")), return_exceptions=True)
    assert [True, True] == [isinstance(r, RedisUnreachable) for r in results]


async def test_a_commit_that_redis_never_answers_fails_as_redis_unavailable(
    dry_settings: Settings, redis: Redis
) -> None:
    """A hung Redis (it takes the connection and never answers) fails the batch once the commit
    bound passes, as Redis unavailable (the receiver answers 503), instead of holding the
    deliveries past Alertmanager's timeout."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads everything, answers nothing

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = async_redis_client(make_settings(f"redis://127.0.0.1:{port}/0"))  # the receiver's own client
    commit = GroupCommit(intake(dry_settings, redis), hung, timeout=0.5)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(commit.accept(drift("a")), commit.accept(drift("b")), return_exceptions=True), 10
        )
    finally:
        await hung.aclose()
        server.close()
    assert [True, True] == [isinstance(r, REDIS_DOWN) for r in results]


def test_storm_slots_taken_by_another_receiver_are_respected(dry_settings: Settings, redis: Redis) -> None:
    """Each receiver guesses the storm counter from what it last saw; the commit checks the guess,
    so slots another receiver took since are never taken twice (limit 3, two alerts per delivery)."""
    settings = dry_settings.model_copy(update={"storm_max_runs": 3})
    first, second = intake(settings, redis), intake(settings, redis)
    assert [["queued", "queued"]] == [decisions(a) for a in first.accept_many([drift("m0")])]
    assert [["queued", "suppressed"]] == [decisions(a) for a in second.accept_many([drift("m1")])]
    assert [["suppressed", "suppressed"]] == [decisions(a) for a in first.accept_many([drift("m2")])]


class CountingReads(Redis):
    """A real client that counts the intake's reads."""

    reads = 0

    def mget(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return super().mget(*args, **kwargs)


def test_new_alerts_are_committed_without_a_read_and_duplicates_with_one(
    dry_settings: Settings, redis_url: str
) -> None:
    client = CountingReads.from_url(redis_url)
    accepting = intake(dry_settings, client)
    assert [["queued", "queued"]] == [decisions(a) for a in accepting.accept_many([drift("m0")])]
    assert 0 == client.reads
    assert [["duplicate", "duplicate"]] == [decisions(a) for a in accepting.accept_many([drift("m0")])]
    assert 1 == client.reads


def test_a_storm_counter_reset_by_an_operator_lets_runs_through_again(dry_settings: Settings, redis: Redis) -> None:
    """What this receiver last saw of a counter may only let runs through, never hold them back."""
    settings = dry_settings.model_copy(update={"storm_max_runs": 2})
    accepting = intake(settings, redis)
    accepting.accept_many([drift("m0")])  # the counter is at the limit now, and this intake knows it
    for key in redis.scan_iter("responder:storm:*:started"):
        redis.delete(key)
    assert [["queued", "queued"]] == [decisions(a) for a in accepting.accept_many([drift("m1")])]


def test_counters_of_past_storm_windows_are_forgotten(dry_settings: Settings, redis: Redis) -> None:
    """A receiver that runs for months keeps what it saw of the current window's counters only."""
    accepting = intake(dry_settings, redis)
    for window in (100, 101, 102):
        accepting._window = lambda window=window: window  # type: ignore[method-assign]
        accepting.accept_many([drift(f"m{window}")])
    assert ["responder:storm:model_drift_detected:102:started"] == accepting._counters.known
