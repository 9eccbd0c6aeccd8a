"""Shared fixtures: a real Redis (flushed around each test), the GitHub fake, settings
pointing at both, and a way to run queued jobs on a real RQ worker."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from github import Auth, Github
from github.Repository import Repository
from pydantic import SecretStr
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import current_timestamp

from responder import jobs
from responder.playbooks.catalog import Catalog, load_catalog
from responder.receiver import create_app
from responder.runtime import Runtime
from responder.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT.parent / "shared" / "examples"
SAMPLES = ROOT / "responder" / "samples"
MANIFEST = SAMPLES / "model-manifest.json"
# The shipped playbooks' approval groups (model_integrity_failed's approved rollback), with people.
TEST_APPROVERS = {"ml-lead": ["lee"], "responsible-ai": ["rai"]}
TEST_REDIS_URL = os.environ.get("RESPONDER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WEBHOOK_TOKEN = "hook-secret-token-123"

# Helpers shared by test modules live in tests/support (test modules never import one another); their
# asserts are rewritten as the tests' own are, and the fixtures among them are registered here.
pytest.register_assert_rewrite("tests.support")
pytest_plugins = ["tests.support.logs", "tests.support.processes"]


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM stops the run as Ctrl-C does, so that fixtures tear down what they started: the
    receivers, workers and Alertmanagers run in sessions of their own, and left running they
    would take the jobs of a later run on the same Redis db."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the one at RESPONDER_TEST_REDIS_URL, or a redis-server started for the session."""
    if _ping(TEST_REDIS_URL):
        yield TEST_REDIS_URL
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("no Redis at RESPONDER_TEST_REDIS_URL and redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/15"
    for _ in range(100):
        if _ping(url):
            break
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.set_manifest(json.loads(MANIFEST.read_text()))
        yield fake


def github_repo(fake: FakeGitHub) -> Repository:
    """A PyGithub handle on the fake, for arranging state the way a person would."""
    client = Github(base_url=fake.url, auth=Auth.Token(fake.token), retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)
    return client.get_repo(fake.full_name)


def make_settings(redis_url: str, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "queue": "responder-test",
        "webhook_token": WEBHOOK_TOKEN,
        "playbooks_dir": ROOT / "playbooks",
        "job_retry_intervals": [],
        "github_writes_per_second": 0,
        "log_format": "json",
        "approvers": TEST_APPROVERS,
    }
    return Settings(**{**base, **values})


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    """Settings for live GitHub writes against the fake."""
    return make_settings(
        redis_url,
        github_api_url=fake_github.url,
        github_token=fake_github.token,
        github_repo=fake_github.full_name,
    )


class Worker:
    """Runs queued jobs to completion on a real RQ worker (in this process, real Redis)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        jobs.install_runtime(self.runtime)

    def drain(self) -> None:
        queue = Queue(self.settings.queue, connection=self.runtime.redis)
        SimpleWorker([queue], connection=self.runtime.redis).work(burst=True)

    def drain_scheduled(self, wanted: Callable[[str], bool] = lambda job_id: True, timeout: float = 30.0) -> None:
        """Run queued jobs and, as a worker's scheduler does, the ``wanted`` jobs scheduled for later
        once due, until none of those is left. RQ keeps the schedule in whole seconds, rounded down:
        a job runs here a second after that, so never sooner than it asked to be."""
        queue = Queue(self.settings.queue, connection=self.runtime.redis)
        deadline = time.monotonic() + timeout
        Worker.drain(self)  # the plain drain: a subclass may build its own drain on this method
        registry = queue.scheduled_job_registry
        while pending := [j for j in registry.get_job_ids() if wanted(j)]:
            assert time.monotonic() < deadline, f"scheduled jobs still pending: {pending}"
            due = [j for j in registry.get_jobs_to_schedule(current_timestamp() - 1) if j in pending]
            if not due:
                time.sleep(0.1)
                continue
            for job_id in due:
                registry.remove(job_id)
                queue.enqueue_job(Job.fetch(job_id, connection=self.runtime.redis))
            Worker.drain(self)


def following_settings(redis_url: str, fake_github: FakeGitHub) -> Settings:
    """Live GitHub writes against the fake, whose runs list at once and complete within 2 s,
    followed every second."""
    fake_github.list_lag_seconds = 0
    fake_github.queued_seconds = 0.5
    fake_github.running_seconds = 1.5
    return make_settings(
        redis_url,
        github_api_url=fake_github.url,
        github_token=fake_github.token,
        github_repo=fake_github.full_name,
        follow_poll_seconds=1,
    )


@pytest.fixture
def worker(settings: Settings) -> Iterator[Worker]:
    yield Worker(settings)
    jobs.install_runtime(None)


def load_example(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def live_worker(redis: Redis, redis_url: str, fake_github: FakeGitHub, tmp_path: Path) -> Iterator[Settings]:
    """Live settings against the GitHub fake, with the playbooks of tmp_path; the worker runtime is reset after."""
    yield make_settings(
        redis_url,
        github_api_url=fake_github.url,
        github_token=fake_github.token,
        github_repo=fake_github.full_name,
        playbooks_dir=tmp_path,
    )
    jobs.install_runtime(None)


@pytest.fixture
def fake_toggles() -> Iterator[FakeToggles]:
    with FakeToggles() as fake:
        yield fake


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture(params=["github", "jira"])
def tracker(request: pytest.FixtureRequest) -> str:
    """Where tickets go: the test runs once with GitHub issues and once with Jira."""
    return str(request.param)


def integration_settings(
    redis_url: str, tracker: str, github: FakeGitHub, toggles: FakeToggles, jira: FakeJira, **values: Any
) -> Settings:
    """Live settings against the fakes, with tickets in GitHub issues or in Jira."""
    extra: dict[str, Any] = {}
    if tracker == "jira":
        extra = {"tracker": "jira", "jira_url": jira.url, "jira_user": jira.user, "jira_token": jira.token,
                 "jira_project": jira.project}
    return make_settings(
        redis_url, github_api_url=github.url, github_token=github.token, github_repo=github.full_name,
        toggle_url=toggles.url, toggle_token=toggles.token, **extra, **values,
    )


@dataclass(frozen=True)
class TicketView:
    """A ticket as either tracker holds it, for tests that run on both."""

    title: str
    body: str
    labels: list[str]
    is_open: bool
    comments: list[str]


def tickets_of(tracker: str, github: FakeGitHub, jira: FakeJira) -> list[TicketView]:
    if tracker == "jira":
        return [TicketView(i.summary, i.description or "", i.labels, i.status_category != "done", i.comments)
                for i in jira.issues]
    return [TicketView(i.title, i.body or "", i.labels, i.state == "open", i.comments) for i in github.issues]


@pytest.fixture
def cli_env(redis, redis_url: str, fake_github: FakeGitHub, fake_toggles: FakeToggles) -> dict[str, str]:
    """Environment for `responder` processes: the test Redis, GitHub and toggle fakes, GitHub issues."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env.update({
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_QUEUE": "responder-test",
        "RESPONDER_GITHUB_API_URL": fake_github.url,
        "RESPONDER_GITHUB_TOKEN": fake_github.token,
        "RESPONDER_GITHUB_REPO": fake_github.full_name,
        "RESPONDER_TOGGLE_URL": fake_toggles.url,
        "RESPONDER_TOGGLE_TOKEN": str(fake_toggles.token),
        "RESPONDER_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "RESPONDER_JOB_RETRY_INTERVALS": "[]",
        "RESPONDER_GITHUB_WRITES_PER_SECOND": "0",
        "RESPONDER_LOG_FORMAT": "json",
        "RESPONDER_APPROVERS": json.dumps(TEST_APPROVERS),
        "RESPONDER_REQUESTED_BY": "alice",
    })
    return env


@contextlib.contextmanager
def started_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `responder worker` process, stopped (with its scheduler) on the way out, whatever happened."""
    with log.open("wb") as out:
        # Its own process group: the worker forks a scheduler and work horses, stopped with it.
        proc = subprocess.Popen([sys.executable, "-m", "responder.cli", "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def worker_process(cli_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `responder worker` process on the test queue."""
    with started_worker(cli_env, tmp_path / "worker.log") as proc:
        yield proc


def run_cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `responder ARGS` as a process and capture its output."""
    return subprocess.run([sys.executable, "-m", "responder.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for a failure message."""
    if not path.exists():
        return f"--- {path.name}: (no file)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text)


def wait_until(condition: Callable[[], Any], what: str, *, logs: tuple[Path, ...] = (), timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` (and the logs' tails)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n" + "\n".join(tail(p) for p in logs))
        time.sleep(0.1)


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "playbooks")


@pytest.fixture
def dry_settings(redis: Redis, redis_url: str) -> Settings:
    """Dry-run settings on the flushed test Redis."""
    return make_settings(redis_url, dry_run=True)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], dry_settings: Settings, catalog: Catalog
) -> TestClient:
    """A receiver that requires the webhook token, with the default body limit (1 MiB)."""
    return await aiohttp_client(create_app(dry_settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
