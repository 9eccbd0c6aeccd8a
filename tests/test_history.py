"""Decision history, replays and retries, as on-call meets them from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.receiver import create_app
from responder.runs import RunStore
from tests.conftest import SAMPLES, WEBHOOK_TOKEN, Worker, load_example, run_cli
from tests.support.github import with_previous_version
from tests.support.runs import MANIFEST_DIGEST, integrity


def accept(settings: Any, redis: Any, payload: dict[str, Any]) -> None:
    Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(Notification.model_validate(payload))


def test_alerts_list_shows_each_notification_with_its_decisions(cli_env, settings, redis):
    """`alerts list --json` lists notifications newest first with counts per decision."""
    accept(settings, redis, load_example("drift-two-segments-firing.json"))
    accept(settings, redis, load_example("drift-one-resolved-one-firing.json"))
    rows = json.loads(run_cli(cli_env, "alerts", "list", "--json").stdout)
    assert [r["decisions"] for r in rows] == [{"duplicate": 1, "queued": 1}, {"queued": 2}]


def test_alerts_show_answers_why_an_alert_did_not_run(cli_env, settings, redis):
    """`alerts show ID` gives each alert's decision with its reason and the run to look at."""
    payload = load_example("drift-two-segments-firing.json")
    accept(settings, redis, payload)
    accept(settings, redis, payload)
    newest = json.loads(run_cli(cli_env, "alerts", "list", "--json").stdout)[0]["id"]
    text = run_cli(cli_env, "alerts", "show", newest).stdout
    assert "DUPLICATE" in text
    assert "why: this firing instance was already queued" in text
    assert "run: responder jobs show model_drift_detected-" in text


def test_alerts_show_json_has_reasons(cli_env, settings, redis):
    """`alerts show --json` records the reason of a rejected alert."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["model_id"] = "bad model"
    accept(settings, redis, payload)
    newest = json.loads(run_cli(cli_env, "alerts", "list", "--json").stdout)[0]["id"]
    record = json.loads(run_cli(cli_env, "alerts", "show", newest, "--json").stdout)
    [alert] = record["alerts"]
    assert (alert["decision"], alert["reason"]) == (
        "rejected", "label model_id is not a valid identifier (letters, digits, '.', '_', '-')"
    )


def test_alerts_show_unknown_id_exits_1(cli_env):
    """An unknown notification id is one line and exit 1."""
    result = run_cli(cli_env, "alerts", "show", "n-nope")
    assert result.returncode == 1
    assert result.stderr.startswith("responder: error: no notification with id 'n-nope'")


def test_history_is_bounded(settings, redis):
    """The history keeps only the configured number of notifications."""
    small = settings.model_copy(update={"history_keep": 3})
    for _ in range(5):
        accept(small, redis, load_example("bias-firing.json"))
    assert redis.zcard("responder:notifications") == 3


def stored(redis: Any, pattern: str) -> int:
    return sum(1 for _ in redis.scan_iter(match=pattern, count=1000))


def test_history_keep_bounds_what_is_stored_not_only_the_index(settings, redis):
    """Alertmanager re-sending one notification 20 times with history_keep 3: the records and
    bodies of the notifications trimmed from the history are deleted, not left for 7 days."""
    small = settings.model_copy(update={"history_keep": 3})
    for _ in range(20):
        accept(small, redis, load_example("bias-firing.json"))
    assert stored(redis, "responder:notification:*") == 3
    # the first one queued a run, which reads its alert from that body: kept for the run
    assert stored(redis, "responder:payload:*") == 3 + 1


async def test_the_webhook_trims_what_leaves_the_history(aiohttp_client, dry_settings, catalog, redis):
    """Through the receiver (its asyncio commit): ten re-sent notifications with history_keep 2
    leave two records stored."""
    settings = dry_settings.model_copy(update={"history_keep": 2})
    client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
    for _ in range(10):
        response = await client.post("/webhooks/alertmanager", json=load_example("bias-firing.json"),
                                     headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert response.status == 202
    assert stored(redis, "responder:notification:*") == 2


def big_notification(index: int, size: int) -> dict[str, Any]:
    """A notification of about ``size`` bytes (a long annotation), its alert a duplicate after the first."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["annotations"]["description"] = f"{index} " + "x" * size
    return payload


def test_history_is_bounded_by_bytes(settings, redis):
    """With history_max_bytes 300 KB, twenty 100 KB notifications leave at most 300 KB of them stored."""
    small = settings.model_copy(update={"history_keep": 1000, "history_max_bytes": 300_000})
    for index in range(20):
        accept(small, redis, big_notification(index, 100_000))
    kept = [key for key in redis.scan_iter(match="responder:payload:*")]
    sizes = sum(redis.strlen(key) for key in kept)
    runs_body = 1  # the first notification's body stays while its run may read it
    assert len(kept) - runs_body <= 3 and redis.zcard("responder:notifications") <= 3
    assert sizes <= 300_000 + 110_000 * runs_body


def test_a_run_whose_notification_left_the_history_still_shows_its_alert(settings, redis):
    """The notification of a queued run is trimmed from the history: the run still reads its alert."""
    small = settings.model_copy(update={"history_keep": 1})
    [decision] = Intake(redis, small, load_catalog(small.playbooks_dir)).accept(
        Notification.model_validate(load_example("bias-firing.json"))
    )
    for _ in range(5):
        accept(small, redis, load_example("drift-two-segments-firing.json"))
    assert decision.job_id is not None
    record = RunStore(redis, retention_seconds=small.dedup_retention_seconds).get(decision.job_id)
    assert record.alert.model_id == "credit-limit"


def test_replay_queues_even_an_already_handled_payload(cli_env, settings, redis, fake_github):
    """`replay FILE` runs the decision path on a stored payload even when the webhook already handled it."""
    accept(settings, redis, load_example("bias-firing.json"))
    result = run_cli(cli_env, "replay", str(SAMPLES / "bias-firing.json"))
    assert result.returncode == 0, result.stderr
    assert "model_bias_alert firing 04fa4bc67593cbd7: queued -> replay-" in result.stdout
    assert "(replay: not de-duplicated)" in result.stdout


def test_replay_dry_run_plans_only(cli_env, settings, redis, fake_github):
    """`replay FILE --dry-run` queues a dry run: the worker plans and writes nothing."""
    with_previous_version(fake_github)  # the sample's mismatch plans a rollback to the previous version
    run_cli(cli_env, "replay", str(SAMPLES / "integrity-firing.json"), "--dry-run")
    Worker(settings).drain()
    [record] = RunStore(redis, retention_seconds=settings.dedup_retention_seconds).recent()
    assert (record.source, record.dry_run, record.status) == ("replay", True, "succeeded")
    assert [r for r in fake_github.requests if r.method != "GET"] == []


def test_replay_of_a_file_that_is_not_a_payload_exits_1(cli_env, tmp_path: Path):
    """A file that is not an Alertmanager payload is refused with the field named."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "4"}')
    result = run_cli(cli_env, "replay", str(bad))
    assert result.returncode == 1
    assert "is not an Alertmanager webhook payload: groupKey: Field required" in result.stderr


def test_replay_of_a_missing_file_exits_1(cli_env, tmp_path: Path):
    """A missing file is one readable line."""
    result = run_cli(cli_env, "replay", str(tmp_path / "nope.json"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_jobs_retry_requeues_a_failed_run_without_repeating_done_steps(cli_env, settings, redis, fake_github):
    """`jobs retry` runs a failed run's failed steps again and not its completed ones."""
    fake_github.fail_next("POST", r"/dispatches", status=422, body={"message": "Workflow is disabled"})
    accept(settings, redis, integrity(MANIFEST_DIGEST))
    worker = Worker(settings)
    worker.drain()
    store = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    [failed] = store.recent()
    assert failed.status == "failed"

    result = run_cli(cli_env, "jobs", "retry", failed.id)
    worker.drain()

    assert result.returncode == 0, result.stderr
    retried = store.get(failed.id)
    assert (retried.status, retried.attempts) == ("succeeded", 2)
    assert len(fake_github.dispatches) == 1
    assert len(fake_github.issues) == 1
    assert len([r for r in fake_github.requests if r.method in ("POST", "PATCH") and "variables" in r.path]) == 1


def test_jobs_retry_refuses_a_run_that_did_not_fail(cli_env, settings, redis):
    """Only failed runs can be retried: exit 1 with the run's status."""
    accept(settings, redis, load_example("bias-firing.json"))
    [record] = RunStore(redis, retention_seconds=settings.dedup_retention_seconds).recent()
    result = run_cli(cli_env, "jobs", "retry", record.id)
    assert result.returncode == 1
    assert "is queued; only failed runs can be retried" in result.stderr


def test_records_received_in_one_second_get_distinct_ids():
    """A storm's thousands of notifications a second each keep their own record (one id each)."""
    from responder.store.history import NotificationRecord

    ids = {NotificationRecord().id for _ in range(50_000)}
    assert len(ids) == 50_000
