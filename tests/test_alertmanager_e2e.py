"""End to end: a real Alertmanager 0.25 notifies a real `responder serve` (subprocess), whose
queued runs a real `responder worker` (subprocess) executes against the GitHub fake.

Alerts are posted to Alertmanager's API, never to responder directly; what responder did is
observed in the fake's state, the run records in Redis and the receiver's JSON log lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.conftest import ROOT, WEBHOOK_TOKEN, free_port, wait_until
from tests.fakes.github import FakeGitHub
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

QUEUE = "responder-e2e"


# --------------------------------------------------------------------------- fixtures


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
    serve = start_process([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], state.log, env)
    worker = start_process([*cli, "worker"], state.worker_log, env)
    try:
        wait_ready(serve, f"http://127.0.0.1:{port}/readyz", state.log)
        yield state
    finally:
        stop_process(serve)
        stop_process(worker)


@pytest.fixture
def alertmanager_config(responder: Responder, tmp_path: Path) -> Path:
    return write_alertmanager_config(responder.webhook_url, tmp_path)


@pytest.fixture
def alertmanager(alertmanager_config: Path, responder: Responder, tmp_path: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager (clustering off) with its own storage, notifying responder."""
    binary = require_binary(ALERTMANAGER)
    storage = tmp_path / "alertmanager-data"
    storage.mkdir()
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "alertmanager.log"
    proc = start_process([
        binary,
        f"--config.file={alertmanager_config}",
        f"--storage.path={storage}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ], log)
    try:
        wait_ready(proc, f"{url}/-/ready", log)
        yield Alertmanager(url=url, log=log, responder=responder)
    finally:
        stop_process(proc)


def dispatched(fake: FakeGitHub) -> list[tuple[str, dict[str, Any]]]:
    return [(d.workflow, d.inputs) for d in fake.dispatches]


# --------------------------------------------------------------------------- tests


def test_integrity_alert_freezes_dispatches_governance_and_opens_ticket(alertmanager, fake_github):
    """An integrity alert routed by Alertmanager freezes deploys, dispatches governance once and opens one ticket."""
    alertmanager.post(am_alerts("integrity-firing.json", annotations=MATCHING))

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
    alertmanager.post(am_alerts("integrity-firing.json", annotations=MATCHING))
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
    [firing] = am_alerts("integrity-firing.json", annotations=MATCHING)
    alertmanager.post([firing])
    wait_until(lambda: alertmanager.responder.finished_runs(1), "the integrity run to end", logs=alertmanager.logs)
    fingerprint = alertmanager.fingerprint("model_integrity_failed")

    alertmanager.post([{**firing, "endsAt": now_iso()}])

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
