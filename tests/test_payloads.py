"""A notification's body is stored once, as received: its decision history record and the runs
queued for its alerts read from it, and a worker's first checkpoint stores the run whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from redis import Redis

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunStore
from responder.settings import Settings
from responder.store.history import INDEX_KEY, AlertDecision, History, NotificationRecord
from responder.store.redis_keys import payload_key
from tests.conftest import SAMPLES, WEBHOOK_TOKEN, Worker, run_cli

# Key order and spacing that no JSON encoder of ours produces: stored as received or not at all.
RAW = (SAMPLES / "drift-two-segments-firing.json").read_bytes().replace(b'": "', b'":  "')


def accept_raw(settings: Settings, redis: Redis, raw: bytes = RAW) -> list[str]:
    """Accept ``raw`` as the webhook does; the ids of the runs it queued."""
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    decisions = intake.accept(Notification.model_validate_json(raw), payload=raw)
    return [d.job_id for d in decisions if d.decision == "queued" and d.job_id]


def newest_notification(redis: Redis) -> str:
    [newest] = redis.zrevrange(INDEX_KEY, 0, 0)
    return str(newest.decode())


def store(settings: Settings, redis: Redis) -> RunStore:
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds)


async def test_the_webhook_body_is_kept_byte_for_byte(client: TestClient, redis: Redis) -> None:
    response = await client.post(
        "/webhooks/alertmanager",
        data=RAW,
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status == 202
    assert History(redis, keep=10, retention_seconds=60).payload(newest_notification(redis)) == RAW


def test_alerts_show_payload_prints_the_body_ready_for_replay(
    cli_env: dict[str, str], dry_settings: Settings, redis: Redis
) -> None:
    accept_raw(dry_settings, redis)
    result = run_cli(cli_env, "alerts", "show", newest_notification(redis), "--payload")
    assert (result.returncode, result.stdout) == (0, RAW.decode() + "\n")


def test_alerts_show_of_an_expired_payload_is_one_line_and_exit_1(
    cli_env: dict[str, str], dry_settings: Settings, redis: Redis
) -> None:
    accept_raw(dry_settings, redis)
    newest = newest_notification(redis)
    redis.delete(payload_key(newest))
    result = run_cli(cli_env, "alerts", "show", newest, "--payload")
    assert (result.returncode, result.stderr.count("\n")) == (1, 1)
    assert "no payload kept for notification" in result.stderr


def test_the_history_record_reads_receiver_and_models_from_the_payload(dry_settings: Settings, redis: Redis) -> None:
    accept_raw(dry_settings, redis)
    history = History(redis, keep=10, retention_seconds=dry_settings.history_retention_seconds)
    record = history.get(newest_notification(redis))
    notification = Notification.model_validate_json(RAW)
    assert (record.receiver, record.group_key) == (notification.receiver, notification.groupKey)
    assert [(a.model_id, a.starts_at, a.decision) for a in record.alerts] == [
        (alert.model_id, alert.startsAt, "queued") for alert in notification.alerts
    ]


def test_a_history_record_kept_whole_by_an_earlier_version_is_still_listed(
    cli_env: dict[str, str], redis: Redis
) -> None:
    old = NotificationRecord(
        receiver="responder",
        alerts=[AlertDecision(alertname="model_bias_alert", fingerprint="f", status="firing", decision="queued")],
    )
    redis.set(History.key(old.id), old.model_dump_json())
    redis.zadd(INDEX_KEY, {old.id: old.received_at.timestamp()})
    rows: list[dict[str, Any]] = json.loads(run_cli(cli_env, "alerts", "list", "--json").stdout)
    assert [(r["id"], r["decisions"]) for r in rows] == [(old.id, {"queued": 1})]


def test_a_queued_run_is_stored_without_a_copy_of_its_alert(dry_settings: Settings, redis: Redis) -> None:
    first, _ = accept_raw(dry_settings, redis)
    stored = json.loads(redis.get(RunStore.key(first)) or b"{}")
    assert "alert" not in stored
    assert stored["notification"] == newest_notification(redis)


def test_a_queued_run_reads_as_the_whole_record(dry_settings: Settings, redis: Redis) -> None:
    ids = accept_raw(dry_settings, redis)
    notification = Notification.model_validate_json(RAW)
    records = [store(dry_settings, redis).get(run_id) for run_id in ids]
    assert [(r.alert, r.external_url, r.status) for r in records] == [
        (alert, notification.externalURL, "queued") for alert in notification.alerts
    ]


def test_the_runs_list_shows_queued_runs_with_their_alerts(
    cli_env: dict[str, str], dry_settings: Settings, redis: Redis
) -> None:
    accept_raw(dry_settings, redis)
    rows = json.loads(run_cli(cli_env, "jobs", "list", "--json").stdout)
    models = {alert.model_id for alert in Notification.model_validate_json(RAW).alerts}
    assert {(r["status"], r["model_id"]) for r in rows} == {("queued", m) for m in models}


def test_a_run_whose_notification_expired_is_one_line_and_exit_1(
    cli_env: dict[str, str], dry_settings: Settings, redis: Redis
) -> None:
    first, _ = accept_raw(dry_settings, redis)
    redis.delete(payload_key(newest_notification(redis)))
    result = run_cli(cli_env, "jobs", "show", first)
    assert (result.returncode, result.stderr.count("\n")) == (1, 1)
    assert "the notification it was queued for has expired" in result.stderr


def test_the_payload_is_kept_as_long_as_its_history_and_its_runs(dry_settings: Settings, redis: Redis) -> None:
    settings = dry_settings.model_copy(update={"history_retention_seconds": 100, "dedup_retention_seconds": 5000})
    first, _ = accept_raw(settings, redis)
    newest = newest_notification(redis)
    assert redis.ttl(payload_key(newest)) >= max(redis.ttl(History.key(newest)), redis.ttl(RunStore.key(first)))
    assert redis.ttl(payload_key(newest)) > 4000


def test_a_worker_stores_the_whole_run_at_its_first_checkpoint(settings: Settings, redis: Redis) -> None:
    first, _ = accept_raw(settings, redis)
    Worker(settings).drain()
    stored = json.loads(redis.get(RunStore.key(first)) or b"{}")
    assert stored["alert"]["fingerprint"] == Notification.model_validate_json(RAW).alerts[0].fingerprint
    assert stored["status"] in ("succeeded", "failed")


def test_a_replayed_file_is_kept_as_read(cli_env: dict[str, str], tmp_path: Path, redis: Redis) -> None:
    """`replay FILE` keeps the file's bytes as the notification's payload, as the webhook keeps a body."""
    path = tmp_path / "payload.json"
    path.write_bytes(RAW)
    assert run_cli(cli_env, "replay", str(path)).returncode == 0
    assert run_cli(cli_env, "alerts", "show", newest_notification(redis), "--payload").stdout == RAW.decode() + "\n"


def test_the_runs_of_one_notification_parse_its_payload_once(dry_settings: Settings, redis: Redis) -> None:
    """A worker takes a notification's runs one after another: the payload is read and parsed
    once (a 1,000-alert payload takes about 10 ms), not once per run."""
    first, second = accept_raw(dry_settings, redis)
    runs = store(dry_settings, redis)
    runs.get(first)
    redis.delete(payload_key(newest_notification(redis)))  # read again, it would be gone
    assert runs.get(second).alert == Notification.model_validate_json(RAW).alerts[1]
