"""The webhook receiver, driven over HTTP with a real Redis behind it."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.job import Job

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import Catalog, load_catalog
from responder.receiver import create_app
from responder.runs import RunStore
from responder.settings import Settings
from responder.store.history import History
from tests.conftest import ROOT, SAMPLES, WEBHOOK_TOKEN, load_example, make_settings

URL = "/webhooks/alertmanager"
AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
CLOSED_REDIS = "redis://127.0.0.1:1/0"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "model-manifest.json")

ClientFactory = Callable[..., Awaitable[TestClient]]


def queue_length(redis: Redis, settings: Settings) -> int:
    return len(Queue(settings.queue, connection=redis))


def playbook_jobs(redis: Redis, settings: Settings) -> list[str]:
    """Queued job ids other than needs-triage runs (which rejected alerts get)."""
    return [j for j in Queue(settings.queue, connection=redis).job_ids if not j.startswith("triage-")]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def with_alert(payload: dict[str, Any], index: int = 0, **changes: Any) -> dict[str, Any]:
    """A copy of payload whose alert at index has the given fields (labels are merged; None removes one)."""
    changed = copy.deepcopy(payload)
    alert = changed["alerts"][index]
    labels = changes.pop("labels", {})
    alert["labels"] = {k: v for k, v in {**alert["labels"], **labels}.items() if v is not None}
    alert.update(changes)
    return changed


async def post(client: TestClient, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = await client.post(URL, json=payload, headers=AUTH if headers is None else headers)
    return response.status, await response.json()


# --- The answer ---


@pytest.mark.parametrize("name", SAMPLE_NAMES)
async def test_answer_shape_for_each_sample(client: TestClient, name: str) -> None:
    """Each sample gets 202 and one decision per alert with exactly the documented keys."""
    payload = load_example(name)

    status, body = await post(client, payload)

    assert status == 202
    assert list(body) == ["alerts"]
    assert [a["fingerprint"] for a in payload["alerts"]] == [d["fingerprint"] for d in body["alerts"]]
    for decision, alert in zip(body["alerts"], payload["alerts"], strict=True):
        required = {"fingerprint", "alertname", "status", "decision"}
        assert required <= set(decision) <= required | {"job_id", "reason"}
        assert (alert["labels"]["alertname"], alert["status"]) == (decision["alertname"], decision["status"])
        assert decision["decision"] in {"queued", "duplicate", "ignored", "rejected"}
        assert ("job_id" in decision) == (decision["decision"] in {"queued", "duplicate"})
        assert ("reason" in decision) == (decision["decision"] != "queued")


async def test_queued_job_and_run_record_exist_when_answered(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """By the time 202 arrives the RQ job is on the queue and the run record says queued."""
    status, body = await post(client, load_example("integrity-firing.json"))
    job_id = body["alerts"][0]["job_id"]

    job = Job.fetch(job_id, connection=redis)
    record = RunStore(redis, retention_seconds=dry_settings.dedup_retention_seconds).get(job_id)
    assert (status, body["alerts"][0]["decision"]) == (202, "queued")
    assert job.origin == dry_settings.queue
    assert Queue(dry_settings.queue, connection=redis).job_ids == [job_id]
    assert (record.status, record.playbook, record.alert.fingerprint) == (
        "queued",
        "model_integrity_failed",
        "f9b97fe26881c67a",
    )


async def test_two_firing_alerts_queue_two_runs(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """Each firing alert of a group is its own run."""
    _, body = await post(client, load_example("drift-two-segments-firing.json"))

    assert [d["decision"] for d in body["alerts"]] == ["queued", "queued"]
    assert queue_length(redis, dry_settings) == 2


# --- Authentication ---


async def test_bearer_token_accepted(client: TestClient) -> None:
    """'Authorization: Bearer <token>' is accepted."""
    status, _ = await post(client, load_example("bias-firing.json"), AUTH)

    assert status == 202


async def test_basic_auth_with_any_user_accepted(client: TestClient) -> None:
    """HTTP Basic with any user name and the token as password is accepted."""
    status, _ = await post(client, load_example("bias-firing.json"), basic("alertmanager", WEBHOOK_TOKEN))

    assert status == 202


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token"},
        {},
        {"Authorization": f"Bearer {WEBHOOK_TOKEN}x"},
        {"Authorization": "Bearer"},
        basic("alertmanager", "wrong"),
        basic(WEBHOOK_TOKEN, ""),
        {"Authorization": "Basic not-base64!!"},
        {"Authorization": "Basic " + base64.b64encode(WEBHOOK_TOKEN.encode()).decode()},
        {"Authorization": f"Token {WEBHOOK_TOKEN}"},
    ],
    ids=[
        "wrong",
        "missing",
        "longer",
        "empty-bearer",
        "basic-wrong",
        "basic-token-as-user",
        "basic-malformed",
        "basic-no-colon",
        "other-scheme",
    ],
)
async def test_bad_credentials_get_401(
    client: TestClient, redis: Redis, dry_settings: Settings, headers: dict[str, str]
) -> None:
    """Wrong, missing or malformed credentials get 401 with WWW-Authenticate and queue nothing."""
    response = await client.post(URL, json=load_example("bias-firing.json"), headers=headers)

    assert response.status == 401
    assert "Bearer" in response.headers.get("WWW-Authenticate", "")
    assert queue_length(redis, dry_settings) == 0


async def test_no_token_means_no_auth(aiohttp_client: ClientFactory, dry_settings: Settings, catalog: Catalog) -> None:
    """With token=None (--insecure-no-auth) a request without credentials is accepted."""
    client = await aiohttp_client(create_app(dry_settings, catalog, token=None))

    status, _ = await post(client, load_example("bias-firing.json"), {})

    assert status == 202


# --- Bad input never gets a 5xx ---


async def test_non_json_content_type(client: TestClient) -> None:
    """A body that is not declared application/json gets 415."""
    response = await client.post(
        URL, data=json.dumps(load_example("bias-firing.json")), headers={**AUTH, "Content-Type": "text/plain"}
    )

    assert response.status == 415


async def test_json_with_charset_is_accepted(client: TestClient) -> None:
    """application/json with a charset parameter is JSON."""
    response = await client.post(
        URL,
        data=json.dumps(load_example("bias-firing.json")),
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status == 202


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b'{"alerts": [\xff\xfe]}', 400),
        (b"[]", 400),
        (b'"a string"', 400),
        (b"null", 400),
    ],
    ids=["malformed", "empty", "invalid-utf8", "array", "string", "null"],
)
async def test_unparsable_body(client: TestClient, body: bytes, expected: int) -> None:
    """Bodies that are not one JSON object get a 4xx with a JSON error, never a 5xx."""
    response = await client.post(URL, data=body, headers={**AUTH, "Content-Type": "application/json"})

    assert response.status == expected
    assert "error" in await response.json()


async def test_deeply_nested_json_within_size_limit(client: TestClient) -> None:
    """Deep nesting that fits in the size limit is a 400, not a crash."""
    body = b"[" * 200_000 + b"]" * 200_000

    response = await client.post(URL, data=body, headers={**AUTH, "Content-Type": "application/json"})

    assert response.status == 400


async def test_nesting_deeper_than_pydantic_parses_in_an_ignored_field_is_accepted(
    client: TestClient, redis: Redis, settings: Settings
) -> None:
    """pydantic's parser stops at 200 levels; Python's takes 300, as the receiver always has."""
    payload = {**load_example("bias-firing.json"), "extra": json.loads("[" * 300 + "]" * 300)}

    response = await client.post(URL, json=payload, headers=AUTH)

    assert response.status == 202
    assert [d["decision"] for d in (await response.json())["alerts"]] == ["queued"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (with_alert(load_example("bias-firing.json"), status="weird"), "alerts.0.status"),
        ({k: v for k, v in load_example("bias-firing.json").items() if k != "groupKey"}, "groupKey"),
        (with_alert(load_example("bias-firing.json"), startsAt="yesterday"), "alerts.0.startsAt"),
        (with_alert(load_example("bias-firing.json"), labels={"severity": 3}), "alerts.0.labels.severity"),
        ({**load_example("bias-firing.json"), "alerts": {}}, "alerts"),
    ],
    ids=["bad-status", "missing-groupKey", "bad-time", "non-string-label", "alerts-not-a-list"],
)
async def test_schema_violation_names_the_field(client: TestClient, payload: dict[str, Any], field: str) -> None:
    """A payload that does not match the schema gets 422 naming the offending field."""
    status, body = await post(client, payload)

    assert (status, body.get("field")) == (422, field)


async def test_body_over_limit_with_content_length(
    aiohttp_client: ClientFactory, redis: Redis, redis_url: str, catalog: Catalog
) -> None:
    """A body larger than max_body_bytes, announced by Content-Length, gets 413."""
    settings = make_settings(redis_url, dry_run=True, max_body_bytes=2048)
    client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
    payload = with_alert(load_example("bias-firing.json"), annotations={"summary": "x" * 4096})

    response = await client.post(
        URL, data=json.dumps(payload).encode(), headers={**AUTH, "Content-Type": "application/json"}
    )

    assert response.status == 413
    assert queue_length(redis, settings) == 0


async def test_body_over_limit_chunked(
    aiohttp_client: ClientFactory, redis: Redis, redis_url: str, catalog: Catalog
) -> None:
    """A chunked body (no Content-Length) larger than max_body_bytes gets 413."""
    settings = make_settings(redis_url, dry_run=True, max_body_bytes=2048)
    client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
    data = json.dumps(with_alert(load_example("bias-firing.json"), annotations={"summary": "x" * 4096})).encode()

    async def chunks() -> Any:
        for start in range(0, len(data), 512):
            yield data[start : start + 512]

    response = await client.post(URL, data=chunks(), headers={**AUTH, "Content-Type": "application/json"})

    assert response.status == 413
    assert "Content-Length" not in response.request_info.headers
    assert queue_length(redis, settings) == 0


async def test_body_at_limit_accepted(
    aiohttp_client: ClientFactory, redis: Redis, redis_url: str, catalog: Catalog
) -> None:
    """A body under max_body_bytes is accepted."""
    settings = make_settings(redis_url, dry_run=True, max_body_bytes=4096)
    client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))

    status, _ = await post(client, load_example("bias-firing.json"))

    assert status == 202


# --- Redis down and health ---


@pytest.fixture
async def client_without_redis(aiohttp_client: ClientFactory, catalog: Catalog) -> TestClient:
    """A receiver whose Redis is a closed port."""
    settings = make_settings(CLOSED_REDIS, dry_run=True)
    return await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))


async def test_redis_down_gets_503_with_retry_after(client_without_redis: TestClient) -> None:
    """With Redis unreachable the webhook answers 503 with Retry-After, so Alertmanager retries."""
    response = await client_without_redis.post(URL, json=load_example("bias-firing.json"), headers=AUTH)

    assert response.status == 503
    assert response.headers.get("Retry-After", "").isdigit()


async def test_redis_down_resolved_only_gets_503(client_without_redis: TestClient) -> None:
    """A resolved-only notification is recorded in Redis too, so Redis down is a 503 for it as well."""
    response = await client_without_redis.post(URL, json=load_example("drift-all-resolved.json"), headers=AUTH)

    assert response.status == 503


async def test_readyz_with_redis_down(client_without_redis: TestClient) -> None:
    """/readyz is 503 with Retry-After while Redis is unreachable."""
    response = await client_without_redis.get("/readyz")

    assert response.status == 503
    assert response.headers.get("Retry-After", "").isdigit()


async def test_healthz_with_redis_down(client_without_redis: TestClient) -> None:
    """/healthz stays 200 while Redis is unreachable: the process itself is alive."""
    response = await client_without_redis.get("/healthz")

    assert response.status == 200


async def test_readyz_with_redis_up(client: TestClient) -> None:
    """/readyz is 200 when Redis answers."""
    response = await client.get("/readyz")

    assert response.status == 200


async def test_health_needs_no_token(client: TestClient) -> None:
    """The health endpoints are open to probes without credentials."""
    statuses = [(await client.get(path)).status for path in ("/healthz", "/readyz")]

    assert statuses == [200, 200]


# --- Decisions ---


async def test_unknown_alertname_is_ignored(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """An alert no playbook handles is ignored with a reason, and nothing is queued."""
    payload = with_alert(load_example("bias-firing.json"), labels={"alertname": "disk_full"})

    _, body = await post(client, payload)

    decision = body["alerts"][0]
    assert (decision["decision"], decision["alertname"]) == ("ignored", "disk_full")
    assert "disk_full" in decision["reason"]
    assert queue_length(redis, dry_settings) == 0


async def test_resolved_alert_queues_its_resolve_run(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """A resolved alert (its own status) queues the playbook's resolve run under its own job id."""
    _, body = await post(client, load_example("drift-all-resolved.json"))

    decision = body["alerts"][0]
    assert (decision["decision"], decision["status"]) == ("queued", "resolved")
    assert "-resolved-" in decision["job_id"]
    assert queue_length(redis, dry_settings) == 1


async def test_resent_resolve_is_a_duplicate(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """Alertmanager re-sending a resolved alert queues its resolve run once."""
    await post(client, load_example("drift-all-resolved.json"))
    _, body = await post(client, load_example("drift-all-resolved.json"))

    assert body["alerts"][0]["decision"] == "duplicate"
    assert queue_length(redis, dry_settings) == 1


async def test_every_notification_is_in_the_decision_history(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """Each accepted notification is recorded with each alert's decision and reason."""
    await post(client, load_example("drift-all-resolved.json"))
    await post(client, load_example("drift-all-resolved.json"))

    history = History(redis, keep=dry_settings.history_keep, retention_seconds=dry_settings.history_retention_seconds)
    assert [[a.decision for a in n.alerts] for n in history.recent()] == [["duplicate"], ["queued"]]


@pytest.mark.parametrize("model_id", ["../x", "a b", "x;rm -rf /", "a" * 129])
async def test_bad_model_id_is_rejected(
    client: TestClient, redis: Redis, dry_settings: Settings, model_id: str
) -> None:
    """An alert whose model_id is unsafe is rejected with the reason, and nothing is queued."""
    _, body = await post(client, with_alert(load_example("bias-firing.json"), labels={"model_id": model_id}))

    decision = body["alerts"][0]
    assert decision["decision"] == "rejected"
    assert "model_id" in decision["reason"]
    assert playbook_jobs(redis, dry_settings) == []


async def test_missing_model_id_is_rejected(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """An alert without model_id is rejected naming the label, and nothing is queued."""
    _, body = await post(client, with_alert(load_example("bias-firing.json"), labels={"model_id": None}))

    decision = body["alerts"][0]
    assert decision["decision"] == "rejected"
    assert "model_id" in decision["reason"]
    assert playbook_jobs(redis, dry_settings) == []


async def test_missing_alertname_is_rejected(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """An alert without an alertname label is rejected, and nothing is queued."""
    _, body = await post(client, with_alert(load_example("bias-firing.json"), labels={"alertname": None}))

    assert (body["alerts"][0]["decision"], body["alerts"][0]["alertname"]) == ("rejected", "")
    assert playbook_jobs(redis, dry_settings) == []


async def test_rejected_alert_queues_one_triage_run_per_fingerprint(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """A rejected alert queues a needs-triage run (linked from its decision), once per fingerprint."""
    payload = with_alert(load_example("bias-firing.json"), labels={"model_id": "../etc"})
    _, first = await post(client, payload)
    _, again = await post(client, payload)

    triage = [j for j in Queue(dry_settings.queue, connection=redis).job_ids if j.startswith("triage-")]
    assert [first["alerts"][0]["job_id"]] == triage
    assert "job_id" not in again["alerts"][0]


async def test_repost_is_a_duplicate(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """Re-sending the same notification answers duplicate with the same job id and queues nothing more."""
    payload = load_example("integrity-firing.json")
    _, first = await post(client, payload)

    _, again = await post(client, payload)

    assert first["alerts"][0]["decision"] == "queued"
    assert (again["alerts"][0]["decision"], again["alerts"][0]["job_id"]) == ("duplicate", first["alerts"][0]["job_id"])
    assert queue_length(redis, dry_settings) == 1


async def test_new_starts_at_is_queued_again(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """The same alert firing again (a new startsAt) is a new firing instance and is queued."""
    payload = load_example("integrity-firing.json")
    starts = datetime.fromisoformat(payload["alerts"][0]["startsAt"].replace("Z", "+00:00"))
    refired = with_alert(payload, startsAt=(starts + timedelta(hours=1)).isoformat())
    _, first = await post(client, payload)

    _, second = await post(client, refired)

    assert second["alerts"][0]["decision"] == "queued"
    assert first["alerts"][0]["job_id"] != second["alerts"][0]["job_id"]
    assert queue_length(redis, dry_settings) == 2


async def test_mixed_notification_gets_one_decision_per_alert_in_order(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """Firing, resolved, unknown and rejected alerts in one notification each get their decision, in order."""
    payload = load_example("drift-one-resolved-one-firing.json")
    unknown = with_alert(payload, labels={"alertname": "disk_full"}, fingerprint="0000000000000001")["alerts"][0]
    bad = with_alert(payload, labels={"model_id": "../etc"}, fingerprint="0000000000000002")["alerts"][0]
    firing, resolved = payload["alerts"]
    payload["alerts"] = [unknown, firing, bad, resolved]

    _, body = await post(client, payload)

    assert [(d["fingerprint"], d["decision"]) for d in body["alerts"]] == [
        ("0000000000000001", "ignored"),
        ("4f2588905e9e0230", "queued"),
        ("0000000000000002", "rejected"),
        ("88b289594cc5a4bf", "queued"),
    ]
    assert len(playbook_jobs(redis, dry_settings)) == 2


async def test_alertname_outside_rq_job_id_characters(
    aiohttp_client: ClientFactory, redis: Redis, dry_settings: Settings, tmp_path: Path
) -> None:
    """A playbook for an alertname with ':' or '.' (valid label values) still gets its alert queued."""
    text = (ROOT / "playbooks" / "model_drift_detected.yaml").read_text()
    (tmp_path / "drift.yaml").write_text(text.replace("alertname: model_drift_detected", "alertname: ModelDrift:v2"))
    client = await aiohttp_client(create_app(dry_settings, load_catalog(tmp_path), token=SecretStr(WEBHOOK_TOKEN)))
    payload = with_alert(load_example("bias-firing.json"), labels={"alertname": "ModelDrift:v2"})

    response = await client.post(URL, json=payload, headers=AUTH)

    assert response.status == 202, f"{response.status} {await response.text()}"


# --- Concurrency ---


async def test_simultaneous_deliveries_queue_once(client: TestClient, redis: Redis, dry_settings: Settings) -> None:
    """20 simultaneous deliveries of one notification queue exactly one run; the rest are duplicates."""
    payload = load_example("integrity-firing.json")

    results = await asyncio.gather(*(post(client, payload) for _ in range(20)))

    decisions = sorted(body["alerts"][0]["decision"] for _, body in results)
    assert [status for status, _ in results] == [202] * 20
    assert decisions == ["duplicate"] * 19 + ["queued"]
    assert len({body["alerts"][0]["job_id"] for _, body in results}) == 1
    assert queue_length(redis, dry_settings) == 1


def test_intake_across_threads_queues_once(
    redis: Redis, redis_url: str, dry_settings: Settings, catalog: Catalog
) -> None:
    """Eight intakes with their own Redis connections accepting one notification at once queue it once."""
    notification = Notification.model_validate(load_example("drift-two-segments-firing.json"))
    barrier = threading.Barrier(8)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def accept() -> None:
        intake = Intake(Redis.from_url(redis_url), dry_settings, catalog)
        barrier.wait()
        try:
            results.append([d.decision for d in intake.accept(notification)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=accept) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert errors == []
    assert [sum(r[i] == "queued" for r in results) for i in range(2)] == [1, 1]
    assert [sum(r[i] == "duplicate" for r in results) for i in range(2)] == [7, 7]
    assert queue_length(redis, dry_settings) == 2


# --- Never a 500 ---


BAD_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("no-auth", {"json": {}, "headers": {}}),
    ("text", {"data": b"hello", "headers": {**AUTH, "Content-Type": "text/plain"}}),
    ("no-content-type", {"data": b"{}", "headers": AUTH}),
    ("malformed", {"data": b"{", "headers": {**AUTH, "Content-Type": "application/json"}}),
    ("utf8", {"data": b"\xc3\x28", "headers": {**AUTH, "Content-Type": "application/json"}}),
    ("utf16", {"data": '{"a": 1}'.encode("utf-16"), "headers": {**AUTH, "Content-Type": "application/json"}}),
    ("array", {"json": [1, 2], "headers": AUTH}),
    ("number", {"json": 12, "headers": AUTH}),
    ("empty-object", {"json": {}, "headers": AUTH}),
    ("alerts-null", {"json": {**load_example("bias-firing.json"), "alerts": None}, "headers": AUTH}),
    ("alert-not-object", {"json": {**load_example("bias-firing.json"), "alerts": ["x"]}, "headers": AUTH}),
    ("nan", {"data": b'{"version": NaN}', "headers": {**AUTH, "Content-Type": "application/json"}}),
    (
        "huge-number",
        {
            "data": b'{"truncatedAlerts": 1' + b"0" * 5000 + b"}",
            "headers": {**AUTH, "Content-Type": "application/json"},
        },
    ),
]


@pytest.mark.parametrize(("name", "request_kwargs"), BAD_REQUESTS, ids=[n for n, _ in BAD_REQUESTS])
async def test_bad_input_is_never_a_server_error(client: TestClient, name: str, request_kwargs: dict[str, Any]) -> None:
    """Whatever a client sends, the answer is a 4xx with a JSON error, not a 5xx."""
    response = await client.post(URL, **request_kwargs)

    assert 400 <= response.status < 500, f"{name}: {response.status} {await response.text()}"
    assert "error" in await response.json()


async def test_wrong_method_is_not_a_server_error(client: TestClient) -> None:
    """GET on the webhook is 405, not a crash."""
    response = await client.get(URL)

    assert response.status == 405
