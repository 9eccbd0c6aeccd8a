"""No credential appears in a log line, an error message or a run record.

Playbooks run on a real RQ worker against the GitHub, Jira and toggle fakes, with the fakes'
tokens as the configured credentials, while those systems refuse, fail, echo the credentials
back or cannot be reached. Afterwards none of the credentials -- the GitHub, Jira, toggle and
webhook tokens, and the base64 of Jira's ``user:token`` -- may appear in the captured log text,
the run record, or ``responder jobs show --json``. The receiver's answers and logs for wrong and
right webhook credentials are checked the same way.
"""

from __future__ import annotations

import base64
import io
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis import Redis

from responder import cli, jobs
from responder.alerts import Alert, Notification
from responder.intake import Intake
from responder.log import configure_logging
from responder.playbooks.catalog import load_catalog
from responder.receiver import create_app
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import ROOT, WEBHOOK_TOKEN, Worker, free_port, integration_settings, load_example, make_settings
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.runs import MANIFEST_DIGEST, integrity

URL = "/webhooks/alertmanager"

ClientFactory = Callable[..., Awaitable[TestClient]]
Credentials = dict[str, str]


@pytest.fixture
def credentials(fake_github: FakeGitHub, fake_jira: FakeJira, fake_toggles: FakeToggles) -> Credentials:
    """Every credential string that must never be shown, by what it is."""
    assert fake_jira.user and fake_toggles.token
    return {
        "GitHub token": fake_github.token,
        "Jira token": fake_jira.token,
        "Jira basic auth": base64.b64encode(f"{fake_jira.user}:{fake_jira.token}".encode()).decode(),
        "toggle token": fake_toggles.token,
        "webhook token": WEBHOOK_TOKEN,
    }


@pytest.fixture
def log_text(credentials: Credentials) -> Iterator[io.StringIO]:
    """Logging configured as `responder serve`/`worker` configure it (JSON lines, the tokens as secrets), captured."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(
        "info", "json", secrets=[v for k, v in credentials.items() if k != "Jira basic auth"], stream=stream
    )
    yield stream
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


def assert_hidden(credentials: Credentials, text: str, where: str) -> None:
    shown = [name for name, value in credentials.items() if value in text]
    assert shown == [], f"{', '.join(shown)} shown in {where}:\n{text[:3000]}"


def jobs_show_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_url: str, job_id: str
) -> str:
    """What `responder jobs show JOB_ID --json` prints."""
    monkeypatch.delenv("RESPONDER_CONFIG", raising=False)
    monkeypatch.setenv("RESPONDER_REDIS_URL", redis_url)
    capsys.readouterr()
    assert cli.main(["jobs", "show", job_id, "--json"]) == 0
    return capsys.readouterr().out


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --------------------------------------------------------------------------- the failures


@dataclass(frozen=True)
class Failure:
    """One way an external system fails a run: its answer (None: it cannot be reached)."""

    system: str  # "github", "jira" or "toggles"
    status: int | None
    body: Callable[[Credentials], dict[str, Any]] | None = None
    method: str = "*"  # the requests that fail (GitHub retries a GET that got a 5xx in the call)
    playbook: str = "model_integrity_failed"  # rollback is the one that calls the toggle service


FAILURES = {
    "github-401-bad-credentials": Failure(
        "github", 401, lambda c: {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    ),
    "github-401-echoing-the-token": Failure("github", 401, lambda c: {"message": f"token {c['GitHub token']} is bad"}),
    "github-403-echoing-the-header": Failure(
        "github",
        403,
        lambda c: {"message": f"Resource not accessible with Authorization: token {c['GitHub token']}"},
    ),
    "github-422-echoing-in-errors": Failure(
        "github",
        422,
        lambda c: {
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "code": "invalid", "value": c["GitHub token"]}],
        },
    ),
    "github-502-echoing-the-token": Failure(
        "github", 502, lambda c: {"message": f"token {c['GitHub token']} is bad"}, method="POST"
    ),
    "github-unreachable": Failure("github", None, playbook="rollback"),  # stops at its first step: 1 GET retried
    "jira-401": Failure("jira", 401, lambda c: {"errorMessages": ["You are not authenticated."], "errors": {}}),
    "jira-400-echoing-basic-auth": Failure(
        "jira",
        400,
        lambda c: {
            "errorMessages": [f"Authorization: Basic {c['Jira basic auth']} refused"],
            "errors": {"labels": f"{c['Jira token']} is not a label"},
        },
    ),
    "jira-502-echoing-the-token": Failure(
        "jira", 502, lambda c: {"errorMessages": [f"proxy: upstream refused {c['Jira token']}"]}
    ),
    "jira-unreachable": Failure("jira", None),
    "toggles-401-echoing-the-token": Failure(
        "toggles", 401, lambda c: {"message": f"bad token {c['toggle token']}"}, playbook="rollback"
    ),
    "toggles-502-echoing-the-header": Failure(
        "toggles", 502, lambda c: {"error": {"authorization": f"Bearer {c['toggle token']}"}}, playbook="rollback"
    ),
    "toggles-unreachable": Failure("toggles", None, playbook="rollback"),
}


@pytest.fixture
def failure(request: pytest.FixtureRequest) -> Failure:
    return FAILURES[request.param]


@pytest.fixture
def armed_settings(
    failure: Failure,
    redis: Redis,
    redis_url: str,
    fake_github: FakeGitHub,
    fake_jira: FakeJira,
    fake_toggles: FakeToggles,
    credentials: Credentials,
) -> Iterator[Settings]:
    """Live settings against the fakes with the failure armed (tickets in Jira for Jira's failures)."""
    tracker = "jira" if failure.system == "jira" else "github"
    overrides: dict[str, Any] = {}
    if failure.status is None:
        overrides = {
            "github": {"github_api_url": closed_url()},
            "jira": {"jira_url": closed_url()},
            "toggles": {"toggle_url": closed_url()},
        }[failure.system]
    else:
        fakes: dict[str, FakeGitHub | FakeJira | FakeToggles] = {
            "github": fake_github,
            "jira": fake_jira,
            "toggles": fake_toggles,
        }
        assert failure.body is not None
        body = failure.body(credentials)
        fakes[failure.system].fail_next(failure.method, "", status=failure.status, body=body, times=100)
    live = integration_settings(redis_url, tracker, fake_github, fake_toggles, fake_jira)
    yield live.model_copy(update=overrides)
    jobs.install_runtime(None)


def run_playbook(settings: Settings, redis: Redis, playbook: str) -> RunRecord:
    """Queue ``playbook`` as it is triggered (webhook or `responder run`), run it on a worker, return its record."""
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    if playbook == "rollback":
        alert = Alert(
            status="firing",
            startsAt=datetime.now(UTC),
            fingerprint=uuid.uuid4().hex[:16],
            labels={"alertname": "rollback", "model_id": "fraud-scorer", "to_version": "2026.9.0"},
        )
        job_id = intake.enqueue_manual("rollback", alert, dry_run=False, requested_by="alice").id
    else:
        decisions = intake.accept(Notification.model_validate(integrity(MANIFEST_DIGEST)))
        assert [d.decision for d in decisions] == ["queued"]
        job_id = str(decisions[0].job_id)
    Worker(settings).drain()
    return RunStore(redis, retention_seconds=60).get(job_id)


@pytest.mark.parametrize("failure", list(FAILURES), indirect=True)
def test_no_credential_shown_when_a_system_fails(
    failure: Failure,
    armed_settings: Settings,
    redis: Redis,
    redis_url: str,
    credentials: Credentials,
    log_text: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refusal, a 5xx, an answer echoing the credentials or a closed port shows no credential anywhere."""
    record = run_playbook(armed_settings, redis, failure.playbook)
    shown = jobs_show_json(monkeypatch, capsys, redis_url, record.id)

    errors = [s.error for s in record.steps if s.status == "failed"]
    assert record.status == "failed" and errors, record.model_dump_json(indent=2)
    expected = "unreachable" if failure.status is None else f"answered {failure.status}"
    assert any(expected in str(e) for e in errors), errors
    assert '"step.finished"' in log_text.getvalue()
    assert_hidden(credentials, log_text.getvalue(), "the log")
    assert_hidden(credentials, record.model_dump_json(), "the run record")
    assert_hidden(credentials, shown, "`responder jobs show --json`")


def test_no_credential_shown_when_a_run_succeeds(
    redis: Redis,
    redis_url: str,
    fake_github: FakeGitHub,
    fake_jira: FakeJira,
    fake_toggles: FakeToggles,
    credentials: Credentials,
    log_text: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A rollback that talks to all three systems successfully shows no credential either."""
    settings = integration_settings(redis_url, "jira", fake_github, fake_toggles, fake_jira)
    try:
        record = run_playbook(settings, redis, "rollback")
    finally:
        jobs.install_runtime(None)
    shown = jobs_show_json(monkeypatch, capsys, redis_url, record.id)

    assert record.status == "succeeded", record.model_dump_json(indent=2)
    assert_hidden(credentials, log_text.getvalue(), "the log")
    assert_hidden(credentials, record.model_dump_json(), "the run record")
    assert_hidden(credentials, shown, "`responder jobs show --json`")


# --------------------------------------------------------------------------- the receiver


@pytest.fixture
async def client(aiohttp_client: ClientFactory, redis: Redis, redis_url: str) -> TestClient:
    settings = make_settings(redis_url, dry_run=True)
    return await aiohttp_client(create_app(settings, load_catalog(ROOT / "playbooks"), token=SecretStr(WEBHOOK_TOKEN)))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


PRESENTED = "presented-wrong-secret-4711"
AUTHORIZATIONS = {
    "bearer-wrong": (f"Bearer {PRESENTED}", 401),
    "bearer-near-miss": (f"Bearer {WEBHOOK_TOKEN}-{PRESENTED}", 401),
    "basic-wrong-password": (basic("alertmanager", PRESENTED), 401),
    "basic-token-as-user": (basic(WEBHOOK_TOKEN, PRESENTED), 401),
    "other-scheme-right-token": (f"Token {WEBHOOK_TOKEN}", 401),
    "bearer-right": (f"Bearer {WEBHOOK_TOKEN}", 202),
    "basic-right": (basic("alertmanager", WEBHOOK_TOKEN), 202),
}


@pytest.mark.parametrize(("authorization", "status"), list(AUTHORIZATIONS.values()), ids=list(AUTHORIZATIONS))
async def test_webhook_credentials_are_neither_answered_nor_logged(
    client: TestClient, log_text: io.StringIO, credentials: Credentials, authorization: str, status: int
) -> None:
    """Wrong or right webhook credentials appear in neither the answer nor the log, whatever was presented."""
    hidden = {**credentials, "presented credential": PRESENTED, "presented header": authorization.split(" ", 1)[1]}

    response = await client.post(URL, json=load_example("bias-firing.json"), headers={"Authorization": authorization})
    answer = f"{response.status} {dict(response.headers)} {await response.text()}"

    assert response.status == status
    assert "POST /webhooks/alertmanager" in log_text.getvalue()
    assert_hidden(hidden, answer, "the answer")
    assert_hidden(hidden, log_text.getvalue(), "the log")
