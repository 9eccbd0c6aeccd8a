"""End to end, on both trackers: a real Alertmanager 0.25 in front of real `responder serve` and
`responder worker` subprocesses, and the `responder` CLI run by hand, against the GitHub, Jira
and toggle-service fakes.

The integrity alert goes through its whole lifecycle -- fire, Alertmanager's repeats, resolve,
re-fire, `responder run rollback`, `responder freeze lift` -- and after each phase the test checks
exactly which tickets, comments, workflow dispatches, variable values and re-tags exist. Alerts
are only ever posted to Alertmanager's API; each phase waits on a polling deadline.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from responder.runs import RunRecord
from tests.conftest import MANIFEST, ROOT, WEBHOOK_TOKEN, TicketView, free_port, tickets_of, wait_until
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.alertmanager import (
    ALERTMANAGER,
    MATCHING,
    Alertmanager,
    Responder,
    am_alerts,
    now_iso,
    require_binary,
    start_process,
    stop_process,
    variable_writes,
    wait_ready,
    write_alertmanager_config,
)

TRACKERS = ("github", "jira")
QUEUE = "responder-e2e-lifecycle"
MODEL = "fraud-scorer"
CURRENT, PREVIOUS = "2026.11.1", "2026.10.3"
GOVERNANCE, RETRAINING = "model-governance.yml", "model-retraining.yml"
REQUESTED_BY = "oncall-e2e"
CLI_SECONDS = 60.0


def plain(text: str) -> str:
    """Ticket text without the renderers' escaping backslashes (Markdown escapes '.', '-'; Jira '-')."""
    return text.replace("\\", "")


@dataclass
class Stack:
    """Alertmanager -> responder serve -> responder worker, the fakes behind them, and the CLI's env."""

    tracker: str
    github: FakeGitHub
    jira: FakeJira
    toggles: FakeToggles
    am: Alertmanager
    env: dict[str, str]

    @property
    def responder(self) -> Responder:
        return self.am.responder

    def tickets(self) -> list[TicketView]:
        return tickets_of(self.tracker, self.github, self.jira)

    def ticket(self) -> TicketView:
        found = self.tickets()
        assert len(found) == 1, f"expected exactly one ticket, got {found}"
        return found[0]

    def comments(self) -> list[str]:
        return [plain(c) for c in self.ticket().comments]

    def dispatches(self, workflow: str | None = None) -> list[dict[str, Any]]:
        return [d.inputs for d in self.github.dispatches if workflow in (None, d.workflow)]

    def finished_runs(self, count: int) -> list[RunRecord] | None:
        return self.responder.finished_runs(count)

    def wait_runs(self, count: int, what: str) -> list[RunRecord]:
        runs: list[RunRecord] = wait_until(lambda: self.finished_runs(count), what, logs=self.am.logs)
        assert all(r.status == "succeeded" for r in runs), [r.model_dump(mode="json") for r in runs]
        return runs

    def wait(self, condition: Callable[[], Any], what: str) -> Any:
        return wait_until(condition, what, logs=self.am.logs)

    def decisions(self, fingerprint: str, decision: str, status: str = "firing") -> int:
        return sum(d["decision"] == decision and d["status"] == status
                   for d in self.responder.decisions(fingerprint))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`responder ARGS` in a subprocess with the receiver's and worker's environment."""
        return subprocess.run([sys.executable, "-m", "responder.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=CLI_SECONDS)


@pytest.fixture(params=TRACKERS)
def tracker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _environment(tracker: str, redis_url: str, github: FakeGitHub, toggles: FakeToggles,
                 jira: FakeJira) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_QUEUE": QUEUE,
        "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "RESPONDER_GITHUB_API_URL": github.url,
        "RESPONDER_GITHUB_TOKEN": github.token,
        "RESPONDER_GITHUB_REPO": github.full_name,
        "RESPONDER_TOGGLE_URL": toggles.url,
        "RESPONDER_TOGGLE_TOKEN": str(toggles.token),
        "RESPONDER_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "RESPONDER_LOG_FORMAT": "json",
        "RESPONDER_JOB_RETRY_INTERVALS": "[]",
        "RESPONDER_REQUESTED_BY": REQUESTED_BY,
    })
    if tracker == "jira":
        env.update({
            "RESPONDER_TRACKER": "jira",
            "RESPONDER_JIRA_URL": jira.url,
            "RESPONDER_JIRA_USER": str(jira.user),
            "RESPONDER_JIRA_TOKEN": jira.token,
            "RESPONDER_JIRA_PROJECT": jira.project,
        })
    return env


@pytest.fixture
def stack(tracker: str, redis: Redis, redis_url: str, fake_github: FakeGitHub, fake_toggles: FakeToggles,
          fake_jira: FakeJira, tmp_path: Path) -> Iterator[Stack]:
    # Manifest history for the rollback: the fixture committed the sample (2026.11.1); then
    # 2026.10.3 was deployed, then 2026.11.1 again (current).
    sample = json.loads(MANIFEST.read_text())
    older = copy.deepcopy(sample)
    [entry] = [m for m in older["models"] if m["modelId"] == MODEL]
    entry.update(version=PREVIOUS, modelVersion=PREVIOUS)
    entry["artifact"]["uri"] = entry["artifact"]["uri"].replace(CURRENT, PREVIOUS)
    fake_github.set_manifest(older)
    fake_github.set_manifest(sample)

    env = _environment(tracker, redis_url, fake_github, fake_toggles, fake_jira)
    port = free_port()
    state = Responder(port=port, log=tmp_path / "receiver.log", worker_log=tmp_path / "worker.log", redis=redis)
    cli = [sys.executable, "-m", "responder.cli"]
    procs = [start_process([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], state.log, env)]
    try:
        procs.append(start_process([*cli, "worker"], state.worker_log, env))
        wait_ready(procs[0], f"http://127.0.0.1:{port}/readyz", state.log)
        config = write_alertmanager_config(state.webhook_url, tmp_path)
        storage = tmp_path / "alertmanager-data"
        storage.mkdir()
        url = f"http://127.0.0.1:{free_port()}"
        am_log = tmp_path / "alertmanager.log"
        procs.append(start_process([
            require_binary(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",
        ], am_log))
        wait_ready(procs[-1], f"{url}/-/ready", am_log)
        yield Stack(tracker, fake_github, fake_jira, fake_toggles, Alertmanager(url, am_log, state), env)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def _key_labels(tracker: str, alertname: str) -> set[str]:
    if tracker == "jira":
        return {"responder", alertname, f"model-{MODEL}"}
    return {"incident", alertname, f"model:{MODEL}"}


# --------------------------------------------------------------------------- tests


def test_integrity_lifecycle_fire_repeat_resolve_refire_rollback_lift(stack: Stack) -> None:
    """Fire, repeats, resolve, re-fire, rollback and lift leave one ticket with exactly four comments in order."""
    [firing] = am_alerts("integrity-firing.json", annotations=MATCHING)
    governance = {"MODEL_ID": MODEL, "MODEL_VERSION": CURRENT, "REASON": "model_integrity_failed"}

    # 1. fire: freeze, one governance dispatch, one open ticket.
    stack.am.post([firing])
    stack.wait_runs(1, "the integrity run to end")
    fingerprint = stack.am.fingerprint("model_integrity_failed")
    assert stack.github.variables == {"DEPLOY_FREEZE": "true"}
    assert stack.dispatches() == [governance]
    ticket = stack.ticket()
    assert ticket.is_open
    assert _key_labels(stack.tracker, "model_integrity_failed") <= set(ticket.labels), ticket.labels
    assert ticket.comments == []

    # 2. Alertmanager's repeats: duplicates that run, dispatch, open and comment nothing.
    stack.wait(lambda: stack.decisions(fingerprint, "duplicate") >= 2, "two repeats logged as duplicates")
    assert stack.decisions(fingerprint, "queued") == 1
    assert len(stack.responder.runs()) == 1
    assert stack.dispatches() == [governance]
    assert stack.ticket().comments == []

    # 3. resolve: one "Resolved at" comment; the freeze stays; nothing dispatched.
    stack.am.post([{**firing, "endsAt": now_iso()}])
    stack.wait(lambda: stack.decisions(fingerprint, "queued", "resolved") == 1, "the resolve to be queued")
    stack.wait_runs(2, "the resolve run to end")
    [resolved] = stack.comments()
    assert resolved.startswith("Resolved at "), resolved
    assert stack.ticket().is_open
    assert stack.github.variables == {"DEPLOY_FREEZE": "true"}
    assert stack.dispatches() == [governance]

    # 4. re-fire (a new startsAt, after the resolve): "Fired again at" on the same ticket, governance again.
    stack.am.post([{**firing, "startsAt": now_iso()}])
    stack.wait(lambda: stack.decisions(fingerprint, "queued") == 2, "the re-fire to be queued")
    stack.wait_runs(3, "the re-fire run to end")
    assert len(stack.tickets()) == 1
    assert stack.ticket().is_open
    assert [c[:14] for c in stack.comments()] == ["Resolved at 20", "Fired again at"], stack.comments()
    assert stack.dispatches() == [governance, governance]
    assert stack.github.variables == {"DEPLOY_FREEZE": "true"}
    assert len(variable_writes(stack.github)) == 1, variable_writes(stack.github)  # the re-fire found it set

    # 5. rollback by hand: previous manifest version dispatched, endpoint re-tagged, noted on the ticket.
    assert stack.toggles.requests == []
    done = stack.cli("run", "rollback", "--label", f"model_id={MODEL}", "--wait", "--timeout", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stack.dispatches() == [governance, governance,
                                  {"MODEL_ID": MODEL, "MODEL_VERSION": PREVIOUS, "REASON": "rollback"}]
    [retag] = stack.toggles.requests
    assert (retag.method, retag.path, retag.status) == ("PUT", f"/endpoints/{MODEL}", 200)
    assert (retag.body["version"], retag.body["reason"]) == (PREVIOUS, "rollback")
    assert stack.toggles.endpoints[MODEL]["version"] == PREVIOUS
    comments = stack.comments()
    assert len(comments) == 3, comments
    assert CURRENT in comments[2] and PREVIOUS in comments[2], comments[2]
    assert comments[2].index(CURRENT) < comments[2].index(PREVIOUS), comments[2]  # "from 2026.11.1 to 2026.10.3"
    assert stack.github.variables == {"DEPLOY_FREEZE": "true"}

    # 6. lift the freeze by hand, with a reason noted on the integrity ticket.
    done = stack.cli("freeze", "lift", "--reason", "digests verified")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stack.github.variables == {"DEPLOY_FREEZE": "false"}
    assert len(variable_writes(stack.github)) == 2, variable_writes(stack.github)
    assert len(stack.dispatches()) == 3
    assert len(stack.toggles.requests) == 1

    # Finally: one ticket, still open, with exactly these comments in this order.
    [ticket] = stack.tickets()
    assert ticket.is_open
    comments = [plain(c) for c in ticket.comments]
    assert len(comments) == 4, comments
    resolved, refired, rollback, lifted = comments
    assert resolved.startswith("Resolved at ") and "; fired at " in resolved and "; lasted " in resolved
    assert refired.startswith("Fired again at ") and fingerprint in refired
    assert "Rolled back" in rollback and CURRENT in rollback and PREVIOUS in rollback
    assert lifted.startswith(f"Deploy freeze lifted by {REQUESTED_BY}: digests verified"), lifted
    runs = stack.responder.runs()
    assert sorted(r.playbook for r in runs) == ["freeze-lift", *["model_integrity_failed"] * 3, "rollback"]
    assert all(r.status == "succeeded" for r in runs), [r.model_dump(mode="json") for r in runs]


def test_drift_refire_within_cooldown_does_not_retrain_again(stack: Stack) -> None:
    """A drift alert's re-fire within the retraining cooldown skips the dispatch ("cooldown until") and comments."""
    firing = am_alerts("drift-two-segments-firing.json")[0]
    stack.am.post([firing])
    stack.wait_runs(1, "the drift run to end")
    fingerprint = stack.am.fingerprint("model_drift_detected")
    assert [d["REASON"] for d in stack.dispatches(RETRAINING)] == ["model_drift_detected"]

    stack.am.post([{**firing, "endsAt": now_iso()}])
    stack.wait(lambda: stack.decisions(fingerprint, "queued", "resolved") == 1, "the resolve to be queued")
    stack.wait_runs(2, "the resolve run to end")

    stack.am.post([{**firing, "startsAt": now_iso()}])
    stack.wait(lambda: stack.decisions(fingerprint, "queued") == 2, "the re-fire to be queued")
    runs = stack.wait_runs(3, "the re-fire run to end")
    refire = max((r for r in runs if r.alert.is_firing), key=lambda r: r.alert.startsAt)
    step = refire.step("dispatch-retraining")
    assert step is not None and step.status == "skipped", refire.model_dump(mode="json")
    assert step.detail.startswith("cooldown until "), step.detail
    assert len(stack.dispatches(RETRAINING)) == 1
    assert stack.dispatches() == stack.dispatches(RETRAINING)
    [ticket] = stack.tickets()
    assert ticket.is_open
    assert _key_labels(stack.tracker, "model_drift_detected") <= set(ticket.labels), ticket.labels
    assert [plain(c)[:14] for c in ticket.comments] == ["Resolved at 20", "Fired again at"], ticket.comments
