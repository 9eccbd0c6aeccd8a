"""The storm guard and needs-triage tickets: nothing is dropped silently."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunStore
from tests.conftest import Worker, integration_settings, load_example, tickets_of
from tests.support.runs import drift_for


@pytest.fixture(params=["github", "jira"])
def env(request, redis, redis_url, fake_github, fake_toggles, fake_jira) -> dict[str, Any]:
    settings = integration_settings(redis_url, request.param, fake_github, fake_toggles, fake_jira, storm_max_runs=3)
    return {"settings": settings, "redis": redis, "worker": Worker(settings), "tracker": request.param,
            "github": fake_github, "jira": fake_jira}


def accept(env: dict[str, Any], payload: dict[str, Any]) -> list[Any]:
    settings = env["settings"]
    decisions = Intake(env["redis"], settings, load_catalog(settings.playbooks_dir)).accept(
        Notification.model_validate(payload))
    env["worker"].drain()
    return decisions


def tickets(env):
    return tickets_of(env["tracker"], env["github"], env["jira"])


def storm_tickets(env):
    return [t for t in tickets(env) if "storm" in t.labels]


def test_runs_past_the_limit_are_suppressed_with_the_reason(env):
    """Past storm_max_runs in the window, firing instances are `suppressed: storm` and run no steps."""
    decisions = accept(env, drift_for(["m1", "m2", "m3", "m4", "m5"]))
    assert [d.decision for d in decisions] == ["queued", "queued", "queued", "suppressed", "suppressed"]
    assert decisions[3].reason.startswith("storm: more than 3 runs of model_drift_detected started within 600s")
    assert len(env["github"].dispatches) == 3


def test_suppressed_instances_have_run_records(env):
    """Each suppressed instance is recorded as a run with status suppressed."""
    decisions = accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    store = RunStore(env["redis"], retention_seconds=env["settings"].dedup_retention_seconds)
    record = store.get(decisions[3].job_id)
    assert (record.status, record.steps) == ("suppressed", [])
    assert record.error.startswith("storm:")


def test_one_storm_ticket_lists_every_suppressed_model(env):
    """The storm ticket (labels incident/responder, storm, alertname) names each suppressed model_id."""
    accept(env, drift_for(["m1", "m2", "m3", "m4", "m5"]))
    [storm] = storm_tickets(env)
    assert "model_drift_detected" in storm.labels
    assert "m4" in storm.body and "m5" in storm.body
    assert "m1" not in storm.body


def test_the_storm_ticket_is_labelled_with_its_window_not_a_made_up_model(env):
    """The storm ticket's key is a label of its own kind (storm:<playbook>-<window>, Jira storm-...);
    no model label names a model that does not exist."""
    accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    [storm] = storm_tickets(env)
    window = int(time.time()) // env["settings"].storm_window_seconds
    separator = "-" if env["tracker"] == "jira" else ":"
    assert f"storm{separator}model_drift_detected-{window}" in storm.labels
    assert not [label for label in storm.labels if label.startswith(("model:", "model-"))]


def test_storm_ticket_is_updated_as_more_arrive(env):
    """Later suppressed instances in the same window are added to the same storm ticket."""
    accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    accept(env, drift_for(["m1", "m2", "m3", "m4", "m5", "m6"], starts_at="2026-11-26T13:30:00Z"))
    [storm] = storm_tickets(env)
    assert any("m5" in c and "m6" in c for c in storm.comments)


def test_repeats_of_a_suppressed_instance_are_duplicates(env):
    """Alertmanager re-sending a suppressed instance does not count again or re-report it."""
    accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    again = accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    assert [d.decision for d in again] == ["duplicate"] * 4
    assert storm_tickets(env)[0].comments == []


def test_resolves_are_not_held_back_by_a_storm(env):
    """Resolved alerts still run their resolve steps during a storm."""
    accept(env, drift_for(["m1", "m2", "m3", "m4"]))
    resolved = drift_for(["m1", "m2", "m3", "m4"])
    for alert in resolved["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", "2026-11-26T14:00:00Z"
    assert [d.decision for d in accept(env, resolved)] == ["queued"] * 4


def test_rejected_alert_gets_a_needs_triage_ticket(env):
    """An alert with an unsafe model_id gets a needs-triage ticket saying why, and no playbook runs."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["model_id"] = "credit limit; DROP"
    [decision] = accept(env, payload)
    [ticket] = tickets(env)
    assert decision.decision == "rejected"
    assert ticket.title.startswith("[needs triage] model_bias_alert: label model_id is not a valid identifier")
    assert "needs-triage" in ticket.labels
    assert env["github"].dispatches == []


def test_the_needs_triage_ticket_is_labelled_with_the_fingerprint_digest(env):
    """A triage ticket's key is a fingerprint label (a digest: the fingerprint is untrusted text),
    not a made-up model label."""
    payload = load_example("bias-firing.json")
    del payload["alerts"][0]["labels"]["model_id"]
    accept(env, payload)
    [ticket] = tickets(env)
    digest = hashlib.sha256(payload["alerts"][0]["fingerprint"].encode()).hexdigest()[:16]
    separator = "-" if env["tracker"] == "jira" else ":"
    assert f"fingerprint{separator}{digest}" in ticket.labels
    assert not [label for label in ticket.labels if label.startswith(("model:", "model-"))]


def test_needs_triage_ticket_is_opened_once_per_fingerprint(env):
    """Alertmanager re-sending the rejected alert opens no second triage ticket."""
    payload = load_example("bias-firing.json")
    del payload["alerts"][0]["labels"]["model_id"]
    accept(env, payload)
    accept(env, payload)
    assert len(tickets(env)) == 1
