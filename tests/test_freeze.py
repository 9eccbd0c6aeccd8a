"""Deploy-freeze control as ops meet it: `responder freeze status|set|lift` as real processes
against a real Redis and the GitHub fake, next to integrity alerts run by a real RQ worker."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from responder.alerts import Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.settings import Settings
from tests.conftest import Worker, github_repo, run_cli
from tests.fakes.github import FakeGitHub
from tests.support.runs import MANIFEST_DIGEST, integrity

LIFTED = "Deploy freeze lifted by alice: digests verified"
RUN_LINE = re.compile(r"^run (?P<id>manual-[0-9a-f]+): (?P<status>[A-Z]+)(?P<dry> \(dry-run\))?$", re.MULTILINE)


def deliver(settings: Settings, redis: Redis, worker: Worker, payload: dict[str, Any]) -> list[str]:
    """Hand a notification to the intake as the webhook does, run the queued jobs; return their ids."""
    decisions = Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(
        Notification.model_validate(payload)
    )
    worker.drain()
    return [d.job_id for d in decisions if d.decision == "queued" and d.job_id]


def integrity_alert(settings: Settings, redis: Redis, worker: Worker) -> str:
    """Run the integrity playbook for the sample alert (it freezes deploys); return the run id."""
    [job_id] = deliver(settings, redis, worker, integrity(MANIFEST_DIGEST))
    return job_id


def printed_run(result: subprocess.CompletedProcess[str]) -> re.Match[str]:
    """The first line of the run record `freeze set|lift` prints: its id, status and dry-run mark."""
    match = RUN_LINE.search(result.stdout)
    assert match is not None, result.stdout + result.stderr
    return match


def open_issue(fake: FakeGitHub, alertname: str, model_id: str) -> int:
    issue = github_repo(fake).create_issue(
        title=f"[{alertname}] {model_id}", labels=["incident", alertname, f"model:{model_id}"]
    )
    return issue.number


def comments_of(fake: FakeGitHub) -> dict[int, list[str]]:
    return {issue.number: issue.comments for issue in fake.issues}


# --------------------------------------------------------------------------- status


def test_status_without_the_variable_says_not_frozen(cli_env):
    """`freeze status` with no DEPLOY_FREEZE variable says deploys are not frozen and exits 0."""
    result = run_cli(cli_env, "freeze", "status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deploys are not frozen (DEPLOY_FREEZE is not set)"


def test_status_after_an_integrity_alert_says_frozen_since_why_and_which_run(cli_env, settings, redis, worker):
    """After an integrity alert, status says FROZEN, since when, why and by which run."""
    before = datetime.now(UTC).replace(microsecond=0)
    job_id = integrity_alert(settings, redis, worker)
    result = run_cli(cli_env, "freeze", "status")
    assert result.returncode == 0, result.stderr
    state, detail = result.stdout.strip().splitlines()
    assert state == "deploys are FROZEN (DEPLOY_FREEZE=true)"
    assert detail.endswith(f"by responder: model_integrity_failed on fraud-scorer (run {job_id})")
    since = datetime.fromisoformat(detail.split("frozen since ")[1].split(" by ")[0])
    assert before <= since <= datetime.now(UTC)


def test_status_notices_a_variable_changed_outside_responder(cli_env, settings, redis, worker, fake_github):
    """When the variable no longer matches what responder recorded, status says it was changed elsewhere."""
    integrity_alert(settings, redis, worker)
    github_repo(fake_github).get_variable("DEPLOY_FREEZE").edit("false")
    result = run_cli(cli_env, "freeze", "status")
    assert result.stdout.splitlines()[0] == "deploys are not frozen (DEPLOY_FREEZE=false)"
    assert "the variable was changed outside responder since" in result.stdout


def test_status_after_a_refreeze_names_the_run_that_froze_again(cli_env, settings, redis, worker, fake_github):
    """Frozen, lifted outside responder, then frozen again by a new alert: status names the new run, not the old."""
    integrity_alert(settings, redis, worker)
    github_repo(fake_github).get_variable("DEPLOY_FREEZE").edit("false")
    payload = integrity(MANIFEST_DIGEST)
    payload["alerts"][0]["startsAt"] = "2026-11-26T15:00:00Z"
    [second] = deliver(settings, redis, worker, payload)
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    result = run_cli(cli_env, "freeze", "status")
    assert result.stdout.splitlines()[0] == "deploys are FROZEN (DEPLOY_FREEZE=true)"
    assert f"(run {second})" in result.stdout


# --------------------------------------------------------------------------- lift


def test_lift_sets_the_variable_false_and_prints_the_run(cli_env, settings, redis, worker, fake_github):
    """`freeze lift --reason` sets DEPLOY_FREEZE to "false", prints the run record and exits 0."""
    integrity_alert(settings, redis, worker)
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert result.returncode == 0, result.stdout + result.stderr
    assert fake_github.variables == {"DEPLOY_FREEZE": "false"}
    assert printed_run(result)["status"] == "SUCCEEDED"
    assert "freeze-lift" in result.stdout
    assert "OK       lift-freeze [freeze_deploys]" in result.stdout
    assert "DEPLOY_FREEZE=false (was true)" in result.stdout


def test_lift_prints_only_the_run_record_on_stdout(cli_env, fake_github):
    """What `freeze lift` prints on stdout is the run record, first line first; logs do not go in between."""
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("run manual-"), result.stdout
    assert '"event": "run.started"' not in result.stdout


def test_status_after_lift_says_lifted_by_whom_and_why(cli_env, settings, redis, worker):
    """After a lift, status says not frozen and "lifted ... by alice: digests verified"."""
    integrity_alert(settings, redis, worker)
    run_id = printed_run(run_cli(cli_env, "freeze", "lift", "--reason", "digests verified"))["id"]
    result = run_cli(cli_env, "freeze", "status")
    state, detail = result.stdout.strip().splitlines()
    assert state == "deploys are not frozen (DEPLOY_FREEZE=false)"
    assert detail.startswith("  lifted since ")
    assert detail.endswith(f"by alice: digests verified (run {run_id})")


def test_lift_comments_on_every_open_integrity_ticket_only(cli_env, fake_github):
    """The lift is noted on each open model_integrity_failed ticket, and on no other ticket."""
    fraud = open_issue(fake_github, "model_integrity_failed", "fraud-scorer")
    credit = open_issue(fake_github, "model_integrity_failed", "credit-limit")
    closed = open_issue(fake_github, "model_integrity_failed", "churn")
    github_repo(fake_github).get_issue(closed).edit(state="closed")
    drift = open_issue(fake_github, "model_drift_detected", "fraud-scorer")
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert result.returncode == 0, result.stdout + result.stderr
    comments = comments_of(fake_github)
    for number in (fraud, credit):
        [comment] = comments[number]
        assert comment.startswith(LIFTED)
    assert comments[closed] == []
    assert comments[drift] == []


def test_lift_without_integrity_tickets_skips_the_note(cli_env, fake_github):
    """With no open integrity ticket the note step is skipped and the lift still succeeds."""
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED  note-integrity-tickets" in result.stdout
    assert "no open model_integrity_failed tickets" in result.stdout


def test_lift_is_listed_in_jobs_with_its_playbook(cli_env):
    """The lift's run appears in `jobs list --json` as a succeeded freeze-lift run."""
    run_id = printed_run(run_cli(cli_env, "freeze", "lift", "--reason", "digests verified"))["id"]
    [row] = json.loads(run_cli(cli_env, "jobs", "list", "--json").stdout)
    assert (row["id"], row["playbook"], row["status"], row["source"]) == (run_id, "freeze-lift", "succeeded", "manual")


def test_lift_dry_run_writes_nothing(cli_env, fake_github):
    """`freeze lift --dry-run` plans the change and the notes, and writes nothing to GitHub."""
    github_repo(fake_github).create_variable("DEPLOY_FREEZE", "true")
    open_issue(fake_github, "model_integrity_failed", "fraud-scorer")
    before = len(fake_github.requests)
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert printed_run(result)["dry"]
    assert "PLANNED  lift-freeze" in result.stdout
    assert "PLANNED  note-integrity-tickets" in result.stdout
    assert [r for r in fake_github.requests[before:] if r.method != "GET"] == []
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    assert fake_github.issues[0].comments == []


def test_dry_run_lift_leaves_status_frozen(cli_env, settings, redis, worker):
    """A dry-run lift does not change what `freeze status` reports."""
    job_id = integrity_alert(settings, redis, worker)
    run_cli(cli_env, "freeze", "lift", "--reason", "digests verified", "--dry-run")
    result = run_cli(cli_env, "freeze", "status")
    assert result.stdout.splitlines()[0] == "deploys are FROZEN (DEPLOY_FREEZE=true)"
    assert f"(run {job_id})" in result.stdout


def refused(fake: FakeGitHub, method: str) -> None:
    fake.fail_next(method, r"/actions/variables", status=403,
                   body={"message": "Resource not accessible by integration"})


def test_github_refusing_to_create_the_variable_fails_the_lift(cli_env, fake_github):
    """A 403 on creating DEPLOY_FREEZE fails the lift: exit 1, GitHub's message printed, no ticket noted."""
    refused(fake_github, "POST")
    open_issue(fake_github, "model_integrity_failed", "fraud-scorer")
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert result.returncode == 1, result.stdout + result.stderr
    assert printed_run(result)["status"] == "FAILED"
    assert "GitHub answered 403: Resource not accessible by integration" in result.stdout
    assert "not run: lift-freeze failed" in result.stdout
    assert fake_github.issues[0].comments == []
    assert "Traceback" not in result.stderr


def test_github_refusing_to_update_the_variable_fails_the_lift(cli_env, fake_github):
    """A 403 on updating an existing DEPLOY_FREEZE fails the lift: exit 1 and GitHub's message, not "was true"."""
    github_repo(fake_github).create_variable("DEPLOY_FREEZE", "true")
    refused(fake_github, "PATCH")
    result = run_cli(cli_env, "freeze", "lift", "--reason", "digests verified")
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    assert result.returncode == 1, result.stdout + result.stderr
    assert "GitHub answered 403: Resource not accessible by integration" in result.stdout


# --------------------------------------------------------------------------- set


def test_set_sets_the_variable_true_and_notes_integrity_tickets(cli_env, fake_github):
    """`freeze set --reason` sets DEPLOY_FREEZE to "true" and notes it on open integrity tickets."""
    number = open_issue(fake_github, "model_integrity_failed", "fraud-scorer")
    drift = open_issue(fake_github, "model_drift_detected", "fraud-scorer")
    result = run_cli(cli_env, "freeze", "set", "--reason", "release window")
    assert result.returncode == 0, result.stdout + result.stderr
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    [comment] = comments_of(fake_github)[number]
    assert comment.startswith("Deploy freeze set by alice: release window")
    assert comments_of(fake_github)[drift] == []


def test_status_after_set_says_frozen_by_whom_and_why(cli_env):
    """After `freeze set`, status says FROZEN by alice with the reason."""
    run_cli(cli_env, "freeze", "set", "--reason", "release window")
    result = run_cli(cli_env, "freeze", "status")
    state, detail = result.stdout.strip().splitlines()
    assert state == "deploys are FROZEN (DEPLOY_FREEZE=true)"
    assert "by alice: release window (run manual-" in detail


def test_set_is_listed_in_jobs_with_its_playbook(cli_env):
    """The set's run appears in `jobs list --json` as a freeze-set run."""
    run_cli(cli_env, "freeze", "set", "--reason", "release window")
    [row] = json.loads(run_cli(cli_env, "jobs", "list", "--json").stdout)
    assert (row["playbook"], row["alertname"], row["status"]) == ("freeze-set", "freeze-set", "succeeded")


# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize("action", ["set", "lift"])
def test_reason_is_required(cli_env, action, fake_github):
    """`freeze set|lift` without --reason is a usage error (exit 2) and changes nothing."""
    result = run_cli(cli_env, "freeze", action)
    assert result.returncode == 2
    assert "--reason" in result.stderr
    assert fake_github.variables == {}


@pytest.mark.parametrize("reason", ["", "   "], ids=["empty", "blank"])
def test_an_empty_reason_is_refused_in_one_line(cli_env, reason, fake_github):
    """An empty or blank reason is refused with one line and exit 2; nothing is written."""
    result = run_cli(cli_env, "freeze", "lift", "--reason", reason)
    assert result.returncode == 2
    assert result.stderr.strip() == "responder: error: --reason must not be empty"
    assert result.stdout == ""
    assert [r for r in fake_github.requests if r.method != "GET"] == []


# --------------------------------------------------------------------------- alerts never lift it


def test_resolved_integrity_alert_does_not_lift_the_freeze(cli_env, settings, redis, worker, fake_github):
    """A resolved integrity alert comments on its ticket but leaves DEPLOY_FREEZE at "true"."""
    integrity_alert(settings, redis, worker)
    payload = integrity(MANIFEST_DIGEST)
    payload["status"] = "resolved"
    alert = payload["alerts"][0]
    alert["status"] = "resolved"
    alert["endsAt"] = (datetime.fromisoformat(alert["startsAt"]) + timedelta(minutes=40)).isoformat()
    [job_id] = deliver(settings, redis, worker, payload)
    assert job_id.startswith("model_integrity_failed-resolved-")
    assert fake_github.variables == {"DEPLOY_FREEZE": "true"}
    assert len(fake_github.issues[0].comments) == 1
    assert run_cli(cli_env, "freeze", "status").stdout.splitlines()[0] == "deploys are FROZEN (DEPLOY_FREEZE=true)"
