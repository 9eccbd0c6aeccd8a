"""The other firing alerts of a run's group (for checklists), stored once per group."""

from __future__ import annotations

import copy
from typing import Any

from redis import Redis

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import load_example


def group_of(size: int) -> Notification:
    payload = load_example("drift-two-segments-firing.json")
    first = payload["alerts"][0]
    alerts: list[dict[str, Any]] = []
    for n in range(size):
        alert = copy.deepcopy(first)
        alert["labels"]["segment"] = f"segment-{n}"
        alert["fingerprint"] = f"fp-{n:04d}"
        alerts.append(alert)
    payload["alerts"] = alerts
    return Notification.model_validate(payload)


def accept(settings: Settings, redis: Redis, notification: Notification) -> list[RunRecord]:
    decisions = Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(notification)
    store = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    return [store.get(d.job_id or "") for d in decisions]


def test_each_run_gets_the_other_alerts_of_its_group(dry_settings: Settings, redis: Redis) -> None:
    runs = accept(dry_settings, redis, group_of(5))
    for run in runs:
        others = {f"fp-{n:04d}" for n in range(5)} - {run.alert.fingerprint}
        assert others == {a.fingerprint for a in run.related}


def test_the_group_is_stored_once_not_in_every_run_record(dry_settings: Settings, redis: Redis) -> None:
    runs = accept(dry_settings, redis, group_of(5))
    assert 1 == len(redis.keys("responder:related:*"))
    raw: bytes = redis.get(RunStore.key(runs[0].id))  # type: ignore[assignment]
    assert b'"related"' not in raw


def test_a_large_group_gives_each_run_fifty_others(dry_settings: Settings, redis: Redis) -> None:
    """Of 120 alerts, each run lists 50 others (never itself): the bound on a record's size."""
    runs = accept(dry_settings, redis, group_of(120))
    assert {50} == {len(run.related) for run in runs}
    assert all(run.alert.fingerprint not in {a.fingerprint for a in run.related} for run in runs)


def test_related_alerts_carry_labels_but_no_annotations(dry_settings: Settings, redis: Redis) -> None:
    [first, _] = accept(dry_settings, redis, group_of(2))
    [other] = first.related
    assert ("segment-1", {}) == (other.labels["segment"], other.annotations)


def test_a_saved_run_keeps_its_related_alerts(dry_settings: Settings, redis: Redis) -> None:
    """A worker saves the record after each step; the shared list is neither copied in nor lost."""
    store = RunStore(redis, retention_seconds=dry_settings.dedup_retention_seconds)
    run = accept(dry_settings, redis, group_of(3))[0]
    run.status = "running"
    store.save(run)
    again = store.get(run.id)
    assert ("running", ["fp-0001", "fp-0002"]) == (again.status, [a.fingerprint for a in again.related])
    assert b'"related"' not in redis.get(RunStore.key(run.id))  # type: ignore[operator]
