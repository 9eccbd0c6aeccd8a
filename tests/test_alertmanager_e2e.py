"""End to end: a real Alertmanager 0.25 notifies a real `responder serve` (subprocess), whose
queued runs a real `responder worker` (subprocess) executes against the GitHub fake.

Alerts are posted to Alertmanager's API, never to responder directly; what responder did is
observed in the fake's state, the run records in Redis and the receiver's JSON log lines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from redis import Redis

from responder.runs import RunRecord, RunStore
from tests.conftest import ROOT, WEBHOOK_TOKEN, free_port, load_example, tail, wait_until
from tests.fakes.github import FakeGitHub

ALERTMANAGER = "prometheus-alertmanager"
AMTOOL = "amtool"
INSTALL_HINT = "install it with: apt-get install prometheus-alertmanager"
QUEUE = "responder-e2e"
STARTUP_SECONDS = 20.0
STOP_SECONDS = 10.0


# --------------------------------------------------------------------------- helpers




def _get_status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=1).status_code
    except requests.RequestException:
        return None


def _start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # Own session: teardown can kill the process with its children (RQ's work horse) by group id.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_SECONDS)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode} before {url} was ready\n{tail(log)}")
        return _get_status(url) == 200

    wait_until(ready, f"GET {url} == 200", logs=(log,), timeout=STARTUP_SECONDS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- responder


@dataclass
class Responder:
    port: int
    log: Path
    worker_log: Path
    redis: Redis

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/alertmanager"

    def decisions(self, fingerprint: str | None = None) -> list[dict[str, Any]]:
        """The receiver's "alert.decision" log lines, oldest first (optionally for one fingerprint)."""
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (isinstance(entry, dict) and entry.get("event") == "alert.decision"
                    and fingerprint in (None, entry.get("fingerprint"))):
                found.append(entry)
        return found

    def runs(self) -> list[RunRecord]:
        return RunStore(self.redis, retention_seconds=3600).recent(limit=100)

    def finished_runs(self, count: int) -> list[RunRecord] | None:
        """The run records once exactly ``count`` runs exist and all have ended, else None."""
        runs = self.runs()
        if len(runs) == count and all(r.status in ("succeeded", "failed") for r in runs):
            return runs
        return None


@pytest.fixture
def responder(redis: Redis, redis_url: str, fake_github: FakeGitHub, tmp_path: Path) -> Iterator[Responder]:
    """`responder serve` and `responder worker` as subprocesses on the test Redis and the GitHub fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_QUEUE": QUEUE,
        "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "RESPONDER_GITHUB_API_URL": fake_github.url,
        "RESPONDER_GITHUB_TOKEN": fake_github.token,
        "RESPONDER_GITHUB_REPO": fake_github.full_name,
        "RESPONDER_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "RESPONDER_LOG_FORMAT": "json",
        "RESPONDER_JOB_RETRY_INTERVALS": "[]",
        "RESPONDER_GITHUB_WRITES_PER_SECOND": "0",
    })
    port = free_port()
    state = Responder(port=port, log=tmp_path / "receiver.log", worker_log=tmp_path / "worker.log", redis=redis)
    cli = [sys.executable, "-m", "responder.cli"]
    serve = _start([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], state.log, env)
    worker = _start([*cli, "worker"], state.worker_log, env)
    try:
        _wait_ready(serve, f"http://127.0.0.1:{port}/readyz", state.log)
        yield state
    finally:
        _stop(serve)
        _stop(worker)


# --------------------------------------------------------------------------- Alertmanager


@dataclass
class Alertmanager:
    url: str
    log: Path
    responder: Responder

    @property
    def logs(self) -> tuple[Path, ...]:
        return (self.responder.log, self.responder.worker_log, self.log)

    def post(self, alerts: list[dict[str, Any]]) -> None:
        response = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert response.status_code == 200, response.text

    def fingerprint(self, alertname: str) -> str:
        """Alertmanager's fingerprint of the one alert named ``alertname`` (what the webhook carries)."""
        response = requests.get(f"{self.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}, timeout=5)
        response.raise_for_status()
        [alert] = response.json()
        return str(alert["fingerprint"])


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not on PATH: the end-to-end tests need a real Alertmanager; {INSTALL_HINT}")
    return path


RESPONDER_RECEIVER = "responder"
# Far shorter than the production values on purpose: the group is first sent after 1s and re-sent
# every few seconds, so a test sees Alertmanager's first notification, its repeat notifications
# (and responder's dedup of them) and a resolve within its deadline instead of minutes to hours.
TEST_TIMERS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "4s"}


def _shorten_timers(route: dict[str, Any]) -> None:
    """Set TEST_TIMERS on ``route`` and every route below it (child routes set their own)."""
    route.update(TEST_TIMERS)
    for child in route.get("routes", []):
        _shorten_timers(child)


def write_alertmanager_config(webhook_url: str, tmp_path: Path) -> Path:
    """config/alertmanager.yml adapted to the test: the responder receiver posts to ``webhook_url``
    with a token file in ``tmp_path``, and the route timers are TEST_TIMERS; checked with amtool.

    Everything else (matchers, group_by, send_resolved, max_alerts, inhibit rules, the default
    receiver) is the production file's, so these tests exercise the routing that ships.
    """
    token_file = tmp_path / "webhook-token"
    token_file.write_text(WEBHOOK_TOKEN)
    config = yaml.safe_load((ROOT / "config" / "alertmanager.yml").read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == RESPONDER_RECEIVER]
    [webhook] = receiver["webhook_configs"]
    webhook["url"] = webhook_url
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    _shorten_timers(config["route"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    check = subprocess.run([_require(AMTOOL), "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"amtool check-config failed:\n{check.stdout}{check.stderr}"
    return path


@pytest.fixture
def alertmanager_config(responder: Responder, tmp_path: Path) -> Path:
    return write_alertmanager_config(responder.webhook_url, tmp_path)


@pytest.fixture
def alertmanager(alertmanager_config: Path, responder: Responder, tmp_path: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager (clustering off) with its own storage, notifying responder."""
    binary = _require(ALERTMANAGER)
    storage = tmp_path / "alertmanager-data"
    storage.mkdir()
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "alertmanager.log"
    proc = _start([
        binary,
        f"--config.file={alertmanager_config}",
        f"--storage.path={storage}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ], log)
    try:
        _wait_ready(proc, f"{url}/-/ready", log)
        yield Alertmanager(url=url, log=log, responder=responder)
    finally:
        _stop(proc)


def am_alerts(sample: str, *, starts_at: str | None = None, ends_at: str | None = None) -> list[dict[str, Any]]:
    """The alerts of a sample notification as Alertmanager's API takes them (startsAt now; no endsAt: firing)."""
    alerts = []
    for alert in load_example(sample)["alerts"]:
        posted = {"labels": alert["labels"], "annotations": alert["annotations"], "startsAt": starts_at or _now()}
        if alert["generatorURL"]:
            posted["generatorURL"] = alert["generatorURL"]
        if ends_at:
            posted["endsAt"] = ends_at
        alerts.append(posted)
    return alerts


def dispatched(fake: FakeGitHub) -> list[tuple[str, dict[str, Any]]]:
    return [(d.workflow, d.inputs) for d in fake.dispatches]


def variable_writes(fake: FakeGitHub) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if "/actions/variables" in r.path and r.method != "GET"]


# --------------------------------------------------------------------------- tests


def test_integrity_alert_freezes_dispatches_governance_and_opens_ticket(alertmanager, fake_github):
    """An integrity alert routed by Alertmanager freezes deploys, dispatches governance once and opens one ticket."""
    alertmanager.post(am_alerts("integrity-firing.json"))

    [run] = wait_until(lambda: alertmanager.responder.finished_runs(1), "the integrity run to end",
                       logs=alertmanager.logs)
    assert run.status == "succeeded", run.model_dump_json(indent=2)
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    assert dispatched(fake_github) == [
        ("model-governance.yml",
         {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": "2026.11.1", "REASON": "model_integrity_failed"}),
    ]
    [issue] = fake_github.issues
    assert issue.state == "open"
    assert sorted(issue.labels) == sorted(["incident", "model_integrity_failed", "model:fraud-scorer",
                                           "severity:critical"])


def test_critical_bias_alert_dispatches_governance_and_hotfix_and_engages_responsible_ai(alertmanager, fake_github):
    """A critical bias alert routed by Alertmanager dispatches governance and hotfix retraining once each."""
    alertmanager.post(am_alerts("bias-firing.json"))

    [run] = wait_until(lambda: alertmanager.responder.finished_runs(1), "the bias run to end", logs=alertmanager.logs)
    assert run.status == "succeeded", run.model_dump_json(indent=2)
    assert dispatched(fake_github) == [
        ("model-governance.yml", {"MODEL_ID": "credit-limit", "MODEL_VERSION": "3.2.0", "REASON": "model_bias_alert"}),
        ("model-retraining.yml", {"MODEL_ID": "credit-limit", "MODEL_VERSION": "3.2.0", "REASON": "bias-hotfix"}),
    ]
    [issue] = fake_github.issues
    assert "responsible-ai" in issue.labels


def test_drift_in_two_segments_retrains_once_and_opens_one_ticket_listing_both(alertmanager, fake_github):
    """Two drifting segments (one group) dispatch retraining once (cooldown) and open one checklist ticket."""
    alertmanager.post(am_alerts("drift-two-segments-firing.json"))

    runs = wait_until(lambda: alertmanager.responder.finished_runs(2), "both drift runs to end",
                      logs=alertmanager.logs)
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.model_dump(mode="json") for r in runs]
    assert [d.workflow for d in fake_github.dispatches] == ["model-retraining.yml"]
    assert all(d.inputs["REASON"] == "model_drift_detected" for d in fake_github.dispatches)
    [issue] = [i for i in fake_github.issues if i.state == "open"]
    assert len(fake_github.issues) == 1
    assert "- [ ] apac" in issue.body
    assert "- [ ] eu" in issue.body


def test_alertmanager_resends_of_a_firing_alert_run_nothing_again(alertmanager, fake_github):
    """Alertmanager's repeat notifications of a firing alert are duplicates that dispatch, open and set nothing."""
    alertmanager.post(am_alerts("integrity-firing.json"))
    wait_until(lambda: alertmanager.responder.finished_runs(1), "the integrity run to end", logs=alertmanager.logs)
    fingerprint = alertmanager.fingerprint("model_integrity_failed")

    def duplicates() -> int:
        return sum(d["decision"] == "duplicate" for d in alertmanager.responder.decisions(fingerprint))

    seen = duplicates()
    wait_until(lambda: duplicates() >= seen + 2, "two more re-sends logged as duplicates", logs=alertmanager.logs)
    assert alertmanager.responder.decisions(fingerprint)[0]["decision"] == "queued"
    assert len(alertmanager.responder.runs()) == 1
    assert len(fake_github.dispatches) == 1
    assert len(fake_github.issues) == 1
    assert len(variable_writes(fake_github)) == 1, variable_writes(fake_github)


def test_resolve_comments_on_the_ticket_and_keeps_the_freeze(alertmanager, fake_github):
    """A resolved integrity alert comments on its ticket; nothing is dispatched and the freeze stays."""
    [firing] = am_alerts("integrity-firing.json")
    alertmanager.post([firing])
    wait_until(lambda: alertmanager.responder.finished_runs(1), "the integrity run to end", logs=alertmanager.logs)
    fingerprint = alertmanager.fingerprint("model_integrity_failed")

    alertmanager.post([{**firing, "endsAt": _now()}])

    def resolve_queued() -> dict[str, Any] | None:
        return next((d for d in alertmanager.responder.decisions(fingerprint)
                     if d["decision"] == "queued" and d["status"] == "resolved"), None)

    wait_until(resolve_queued, "the resolved notification to be queued", logs=alertmanager.logs)
    wait_until(lambda: alertmanager.responder.finished_runs(2), "the resolve run to end", logs=alertmanager.logs)
    [issue] = fake_github.issues
    assert len(issue.comments) == 1
    assert issue.comments[0].startswith("Resolved at ")
    assert len(fake_github.dispatches) == 1
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
