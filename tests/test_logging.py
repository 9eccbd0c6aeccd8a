"""Logs are data and never carry a credential: the Redactor, and real log lines of the receiver."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis

from responder.log import REDACTED, SENSITIVE_TEXT, Redactor, _mask, get_logger
from responder.playbooks.catalog import load_catalog
from responder.receiver import create_app
from responder.settings import Settings
from tests.conftest import ROOT, WEBHOOK_TOKEN, load_example, make_settings, run_cli
from tests.support.logs import LogOutput

SECRET = "SECRETVALUE-0123456789"
URL = "/webhooks/alertmanager"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"alertmanager:{WEBHOOK_TOKEN}".encode()).decode()}

ClientFactory = Callable[..., Awaitable[TestClient]]


def redact(event: dict[str, Any], secrets: tuple[str, ...] = (SECRET,)) -> dict[str, Any]:
    return dict(Redactor(secrets)(None, "info", dict(event)))


# --- The Redactor processor ---


@pytest.mark.parametrize(
    "key", ["token", "github_token", "password", "Authorization", "client_secret", "api_key", "credentials"]
)
def test_sensitive_keys_are_replaced(key: str) -> None:
    """A value under a credential-like key is replaced whatever it is."""
    assert redact({"event": "call", key: "whatever-it-is"}) == {"event": "call", key: REDACTED}


def test_ordinary_keys_are_kept() -> None:
    """Values under ordinary keys pass through unchanged."""
    event = {"event": "alert.decision", "alertname": "model_bias_alert", "fingerprint": "04fa4bc67593cbd7", "n": 3}

    assert redact(event) == event


def test_none_under_sensitive_key_is_kept() -> None:
    """A None under a credential key stays None, so 'not configured' is still visible."""
    assert redact({"event": "e", "token": None}) == {"event": "e", "token": None}


def test_known_secret_in_a_url_is_removed() -> None:
    """A configured secret inside an exception message is removed, the rest is kept."""
    event = {"event": "github.failed", "error": f"401 for url https://x?token={SECRET}"}

    assert redact(event) == {"event": "github.failed", "error": f"401 for url https://x?token={REDACTED}"}


def test_known_secret_in_the_event_text_is_removed() -> None:
    """A configured secret in the event message itself is removed."""
    assert redact({"event": f"sent {SECRET} upstream"}) == {"event": f"sent {REDACTED} upstream"}


def test_bearer_header_text_is_removed_without_knowing_the_secret() -> None:
    """'Authorization: Bearer <x>' text is masked even when <x> is not a configured secret."""
    event = {"event": "e", "detail": "Authorization: Bearer someone-elses-token"}

    assert redact(event, secrets=()) == {"event": "e", "detail": f"Authorization: Bearer {REDACTED}"}


def test_github_token_shape_is_removed_without_knowing_it() -> None:
    """A string shaped like a GitHub token is masked."""
    event = {"event": "e", "detail": "used ghp_" + "A1b2C3d4" * 5}

    assert redact(event, secrets=()) == {"event": "e", "detail": f"used {REDACTED}"}


def test_url_password_is_removed() -> None:
    """The password of a user:password@host URL is masked."""
    event = {"event": "e", "url": "redis://default:hunter2pass@redis:6379/0"}

    assert redact(event, secrets=()) == {"event": "e", "url": f"redis://default:{REDACTED}@redis:6379/0"}


def test_unknown_token_in_a_query_string_is_removed() -> None:
    """A token passed as a URL query parameter is masked even when it is not a configured secret."""
    event = {"event": "e", "error": "401 for url https://api.example/x?access_token=abcdef123456"}

    assert "abcdef123456" not in json.dumps(redact(event, secrets=()))


def test_nested_dicts_and_lists_are_redacted() -> None:
    """Credential keys and secrets are removed at any depth of dicts and lists."""
    event = {
        "event": "request",
        "headers": {"Authorization": f"Bearer {SECRET}", "Accept": "application/json"},
        "calls": [{"password": "p"}, {"note": f"used {SECRET}"}],
    }

    assert redact(event) == {
        "event": "request",
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "calls": [{"password": REDACTED}, {"note": f"used {REDACTED}"}],
    }


@given(text=st.from_regex(SENSITIVE_TEXT))
@example(text="pa\u017f\u017fword=hunter22")  # long s: the regex folds it to "s", str.lower() does not
@settings(max_examples=300, deadline=None)
def test_a_line_holding_credential_shaped_text_is_redacted(text: str) -> None:
    """Whatever text the credential pattern finds (in any case, ASCII or not) is redacted, also
    on the short way Redactor takes for lines with none of the words the pattern needs."""
    assert redact({"event": "e", "detail": text}, secrets=())["detail"] == SENSITIVE_TEXT.sub(_mask, text)


def test_short_secrets_are_not_used_for_replacement() -> None:
    """Secrets shorter than 4 characters are not searched for (they would mangle ordinary text)."""
    assert redact({"event": "abc value"}, secrets=("abc",)) == {"event": "abc value"}


# --- Real log lines ---


@pytest.fixture
def dry_settings(redis: Redis, redis_url: str) -> Settings:
    return make_settings(redis_url, dry_run=True)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, dry_settings: Settings) -> TestClient:
    app = create_app(dry_settings, load_catalog(ROOT / "playbooks"), token=SecretStr(WEBHOOK_TOKEN))
    return await aiohttp_client(app)


async def test_decision_lines_carry_alertname_and_fingerprint(client: TestClient, logs: LogOutput) -> None:
    """Each alert's decision is one JSON log line with its alertname, fingerprint and decision."""
    logs.new_lines()
    await client.post(
        URL,
        json=load_example("drift-one-resolved-one-firing.json"),
        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    )

    decisions = [line for line in logs.new_lines() if line.get("event") == "alert.decision"]

    assert [(d.get("alertname"), d.get("fingerprint"), d.get("decision")) for d in decisions] == [
        ("model_drift_detected", "4f2588905e9e0230", "queued"),
        ("model_drift_detected", "88b289594cc5a4bf", "queued"),
    ]


async def test_queued_alert_logs_no_token(
    client: TestClient, logs: LogOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    """Accepting alerts sent with Bearer and with Basic credentials prints no trace of the token."""
    await client.post(URL, json=load_example("bias-firing.json"), headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
    await client.post(URL, json=load_example("integrity-firing.json"), headers=BASIC)

    printed = logs.text() + capsys.readouterr().err

    assert printed.count('"alert.decision"') == 2
    assert WEBHOOK_TOKEN not in printed


async def test_rejected_credentials_log_no_token(
    client: TestClient, logs: LogOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 for a near-miss token leaves neither the presented nor the real token in the output."""
    response = await client.post(
        URL, json=load_example("bias-firing.json"), headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}-old"}
    )

    printed = logs.text() + capsys.readouterr().err

    assert response.status == 401
    assert 'POST /webhooks/alertmanager HTTP/1.1\\" 401' in printed
    assert WEBHOOK_TOKEN not in printed


def test_exception_text_is_redacted_in_the_rendered_line(logs: LogOutput) -> None:
    """A traceback whose message holds the token is rendered with the token removed."""
    try:
        raise RuntimeError(f"401 for url https://api.example/x?token={WEBHOOK_TOKEN}")
    except RuntimeError:
        get_logger("test").exception("github.failed")

    lines = logs.new_lines()

    assert [line["event"] for line in lines] == ["github.failed"]
    assert f"RuntimeError: 401 for url https://api.example/x?token={REDACTED}" in lines[0]["exception"]
    assert WEBHOOK_TOKEN not in logs.text()


def test_stdlib_library_lines_are_redacted(logs: LogOutput) -> None:
    """Lines logged by libraries through stdlib logging are redacted too."""
    logging.getLogger("urllib3.connectionpool").warning("retrying with Authorization: Bearer %s", WEBHOOK_TOKEN)

    lines = logs.new_lines()

    assert [line["event"] for line in lines] == [f"retrying with Authorization: Bearer {REDACTED}"]
    assert WEBHOOK_TOKEN not in logs.text()


def test_bound_context_keys_are_redacted(logs: LogOutput) -> None:
    """A credential bound into the context (contextvars) is redacted like any key."""
    structlog.contextvars.bind_contextvars(job_id="j-1", github_token=WEBHOOK_TOKEN)
    try:
        get_logger("test").info("step.started")
    finally:
        structlog.contextvars.clear_contextvars()

    lines = logs.new_lines()

    assert [(line["job_id"], line["github_token"]) for line in lines] == [("j-1", REDACTED)]


def test_worker_at_level_warning_writes_no_info_lines_of_rq(cli_env: dict[str, str], fake_github: Any) -> None:
    """RESPONDER_LOG_LEVEL=warning quiets RQ's per-job lines too (RQ sets its own loggers to INFO)."""
    env = {**cli_env, "RESPONDER_LOG_LEVEL": "warning"}
    queued = run_cli(env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer")
    assert queued.returncode == 0, queued.stderr

    worked = run_cli(env, "worker", "--burst")

    assert worked.returncode == 0, worked.stderr
    assert len(fake_github.dispatches) == 1  # the run did happen
    levels = [json.loads(line).get("level") for line in worked.stdout.splitlines() if line.startswith("{")]
    assert "info" not in levels
