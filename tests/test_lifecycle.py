"""The incident lifecycle on both trackers: fire, repeat, resolve, re-fire, close, cooldowns.

Real Redis, a real RQ worker in-process, and HTTP fakes of GitHub, Jira and the toggle
service that the real clients talk to.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.conftest import ROOT, Worker, integration_settings, load_example, tickets_of
from tests.support.runs import MANIFEST_DIGEST, integrity, refired, run_in_env

TRACKERS = ["github", "jira"]


@pytest.fixture(params=TRACKERS)
def tracker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(redis, redis_url, tracker, fake_github, fake_toggles, fake_jira) -> dict[str, Any]:
    settings = integration_settings(redis_url, tracker, fake_github, fake_toggles, fake_jira)
    return {"settings": settings, "redis": redis, "worker": Worker(settings), "tracker": tracker,
            "github": fake_github, "jira": fake_jira}


def tickets(env: dict[str, Any]) -> list[Any]:
    return tickets_of(env["tracker"], env["github"], env["jira"])


def plain(text: str) -> str:
    """Ticket text without the renderers' escaping backslashes."""
    return text.replace("\\", "")


def resolved(payload: dict[str, Any], ends_at: str = "2026-11-26T14:30:00Z") -> dict[str, Any]:
    for alert in payload["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", ends_at
    payload["status"] = "resolved"
    return payload


def test_resolve_comments_with_times_and_duration(env):
    """A resolved alert comments "resolved at; fired at; lasted" with the run on the open ticket."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    [run] = run_in_env(env, resolved(integrity(MANIFEST_DIGEST)))
    [ticket] = tickets(env)
    [comment] = ticket.comments
    assert plain(comment).startswith("Resolved at 2026-11-26 14:30:00 UTC; fired at 2026-11-26 13:26:36 UTC; "
                                     "lasted 1h 3m 23s")
    assert run.id in plain(comment)
    assert ticket.is_open


def test_resolve_never_lifts_the_freeze(env):
    """Resolving an integrity alert leaves DEPLOY_FREEZE true."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_in_env(env, resolved(integrity(MANIFEST_DIGEST)))
    assert env["github"].variables == {"DEPLOY_FREEZE": "true"}


def test_resend_of_a_resolve_comments_once(env):
    """Alertmanager re-sending the resolved notification adds no second comment."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_in_env(env, resolved(integrity(MANIFEST_DIGEST)))
    assert run_in_env(env, resolved(integrity(MANIFEST_DIGEST))) == []
    assert len(tickets(env)[0].comments) == 1


def test_resolve_without_seen_firing_still_comments_on_open_ticket(env):
    """A resolve whose firing responder never saw comments on the open ticket of its alertname and model."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    other = resolved(refired(integrity(MANIFEST_DIGEST), "2026-11-26T10:00:00Z"))
    other["alerts"][0]["fingerprint"] = "aaaaaaaaaaaaaaaa"
    [run] = run_in_env(env, other)
    assert run.step("comment-resolved").status == "ok"
    assert len(tickets(env)[0].comments) == 1


def test_resolve_without_ticket_is_recorded_and_skipped(env):
    """A resolve with no open ticket is recorded, its comment step skipped, and nothing is written."""
    [run] = run_in_env(env, resolved(integrity(MANIFEST_DIGEST)))
    assert (run.status, run.step("comment-resolved").status) == ("succeeded", "skipped")
    assert tickets(env) == []


def test_refire_while_open_comments_instead_of_opening(env):
    """A new firing instance while the ticket is open comments "fired again" on it."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_in_env(env, refired(integrity(MANIFEST_DIGEST)))
    [ticket] = tickets(env)
    assert [plain(c)[:36] for c in ticket.comments] == ["Fired again at 2026-11-26 16:00:00 U"]


def test_refire_runs_the_other_steps_again(env):
    """A re-fire dispatches governance again (no cooldown on governance)."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_in_env(env, refired(integrity(MANIFEST_DIGEST)))
    assert [d.workflow for d in env["github"].dispatches] == ["model-governance.yml", "model-governance.yml"]


def close_on_resolve_playbooks(directory) -> Any:
    text = (ROOT / "playbooks" / "model_integrity_failed.yaml").read_text()
    directory.mkdir(exist_ok=True)
    (directory / "model_integrity_failed.yaml").write_text(text + "close_on_resolve: true\n")
    shutil.copy(ROOT / "playbooks" / "rollback.yaml", directory)  # the rollback it proposes on a mismatch
    return directory


def test_close_on_resolve_closes_and_next_firing_opens_new_ticket(env, tmp_path):
    """With close_on_resolve, the resolve closes the ticket and the next firing opens a new one."""
    settings = env["settings"].model_copy(update={"playbooks_dir": close_on_resolve_playbooks(tmp_path / "pb")})
    env = {**env, "settings": settings, "worker": Worker(settings)}
    run_in_env(env, integrity(MANIFEST_DIGEST))
    [run] = run_in_env(env, resolved(integrity(MANIFEST_DIGEST)))
    assert [s.name for s in run.steps] == ["comment-resolved", "close-incident"]
    assert [t.is_open for t in tickets(env)] == [False]
    run_in_env(env, refired(integrity(MANIFEST_DIGEST)))
    assert [t.is_open for t in tickets(env)] == [False, True]


def test_retraining_cooldown_skips_redispatch_for_the_same_model(env):
    """A drift re-fire within the cooldown records the retraining step skipped "cooldown until"."""
    run_in_env(env, load_example("drift-two-segments-firing.json"))
    runs = run_in_env(env, refired(load_example("drift-two-segments-firing.json")))
    assert [d.workflow for d in env["github"].dispatches] == ["model-retraining.yml"]
    step = runs[0].step("dispatch-retraining")
    assert step.status == "skipped"
    assert step.detail.startswith("cooldown until ")


def test_cooldown_is_per_model(env):
    """Retraining one model does not hold back another's."""
    run_in_env(env, load_example("drift-two-segments-firing.json"))
    other = refired(load_example("drift-two-segments-firing.json"))
    for alert in other["alerts"]:
        alert["labels"]["model_id"] = "credit-limit"
        alert["labels"]["model_version"] = "3.2.0"
    run_in_env(env, other)
    assert [d.inputs["MODEL_ID"] for d in env["github"].dispatches] == ["fraud-scorer", "credit-limit"]


def test_bias_hotfix_shares_the_retraining_cooldown(env):
    """A critical bias alert's hotfix retraining respects a drift retraining just dispatched for that model."""
    drift = load_example("drift-two-segments-firing.json")
    for alert in drift["alerts"]:
        alert["labels"]["model_id"], alert["labels"]["model_version"] = "credit-limit", "3.2.0"
    run_in_env(env, drift)
    [run] = run_in_env(env, load_example("bias-firing.json"))
    assert run.step("dispatch-hotfix-retraining").status == "skipped"
    assert [d.inputs["REASON"] for d in env["github"].dispatches] == ["model_drift_detected", "model_bias_alert"]


def test_failed_dispatch_gives_the_cooldown_back(env):
    """A retraining dispatch that GitHub refused does not start a cooldown."""
    env["github"].fail_next("POST", r"/dispatches", status=422, body={"message": "Unexpected inputs"})
    run_in_env(env, load_example("drift-two-segments-firing.json"))
    run_in_env(env, refired(load_example("drift-two-segments-firing.json")))
    assert len(env["github"].dispatches) == 1


def test_tickets_carry_tracker_labels(env):
    """Tickets carry their tracker's key labels: GitHub model:<id>, Jira responder and model-<id>."""
    run_in_env(env, load_example("bias-firing.json"))
    [ticket] = tickets(env)
    expected = {
        "github": {"incident", "model_bias_alert", "model:credit-limit", "severity:critical", "responsible-ai"},
        "jira": {"responder", "model_bias_alert", "model-credit-limit", "severity:critical", "responsible-ai"},
    }[env["tracker"]]
    assert set(ticket.labels) == expected
