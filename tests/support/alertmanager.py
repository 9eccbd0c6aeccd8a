"""The end-to-end harness: a real Alertmanager, in front of `responder serve` and `responder worker`
subprocesses, fed alerts through its API; its configuration is the shipped config/alertmanager.yml
with the receiver's URL, a token file and short timers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from redis import Redis

from responder.runs import RunRecord, RunStore
from tests.conftest import ROOT, WEBHOOK_TOKEN, load_example, tail, wait_until
from tests.fakes.github import FakeGitHub
from tests.support.runs import MANIFEST_DIGEST

ALERTMANAGER = "prometheus-alertmanager"
AMTOOL = "amtool"
INSTALL_HINT = "install it with: apt-get install prometheus-alertmanager"
STARTUP_SECONDS = 20.0
STOP_SECONDS = 10.0


# --------------------------------------------------------------------------- processes


def _get_status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=1).status_code
    except requests.RequestException:
        return None


def start_process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, its output in ``log``."""
    with log.open("wb") as out:
        # Own session: teardown can kill the process with its children (RQ's work horse) by group id.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc``; SIGKILL its process group if it is still running STOP_SECONDS later."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_SECONDS)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until GET ``url`` answers 200; fail at once if ``proc`` exits first."""

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode} before {url} was ready\n{tail(log)}")
        return _get_status(url) == 200

    wait_until(ready, f"GET {url} == 200", logs=(log,), timeout=STARTUP_SECONDS)


def now_iso() -> str:
    """Now, as Alertmanager's API writes a time (UTC, milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def require_binary(binary: str) -> str:
    """The path of ``binary``; the test fails, saying how to install it, when it is not on PATH."""
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not on PATH: the end-to-end tests need a real Alertmanager; {INSTALL_HINT}")
    return path


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
    check = subprocess.run(
        [require_binary(AMTOOL), "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, f"amtool check-config failed:\n{check.stdout}{check.stderr}"
    return path


def am_alerts(sample: str, *, starts_at: str | None = None, ends_at: str | None = None,
              annotations: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The alerts of a sample notification as Alertmanager's API takes them (startsAt now; no endsAt:
    firing), with ``annotations`` added or replaced."""
    alerts = []
    for alert in load_example(sample)["alerts"]:
        posted = {"labels": alert["labels"], "annotations": {**alert["annotations"], **(annotations or {})},
                  "startsAt": starts_at or now_iso()}
        if alert["generatorURL"]:
            posted["generatorURL"] = alert["generatorURL"]
        if ends_at:
            posted["endsAt"] = ends_at
        alerts.append(posted)
    return alerts


def variable_writes(fake: FakeGitHub) -> list[str]:
    """The fake's writes to Actions variables, as "METHOD path"."""
    return [f"{r.method} {r.path}" for r in fake.requests if "/actions/variables" in r.path and r.method != "GET"]


# An integrity alert whose deployed digest is the manifest's: no rollback is proposed (no approval wait).
MATCHING = {"deployed_digest": MANIFEST_DIGEST}
