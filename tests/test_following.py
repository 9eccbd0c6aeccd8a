"""Following a dispatched workflow run to its end (issue 16 part A): scheduled follow jobs poll the
run with its ETag, read its artifacts once it completes and tell the incident ticket. Real Redis,
the GitHub fake over HTTP, a real RQ worker that runs scheduled jobs when they are due."""

from __future__ import annotations

import json

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from responder.alerts import Notification
from responder.output import run_text
from responder.pages import _page
from responder.runs import FollowedArtifact, FollowedRun, RunRecord
from responder.settings import Settings
from tests.conftest import Worker, following_settings, load_example, make_settings, run_cli
from tests.fakes.github import FakeGitHub
from tests.support.github import GOVERNANCE, RETRAINING, workflow_comments
from tests.support.runs import MANIFEST_DIGEST, integrity, queue_runs, record_of


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    return following_settings(redis_url, fake_github)


def test_a_completed_retraining_run_is_reported_on_the_ticket_and_in_the_run_record(
    settings, redis, fake_github, worker, cli_env
):
    """A drift alert's retraining run completes `success` with a training summary: the ticket gets one
    comment naming its conclusion, link and the artifact's status, and `jobs show --json` lists it."""
    [job_id, *_] = queue_runs(settings, redis, load_example("drift-two-segments-firing.json"))
    worker.drain()  # the playbook runs; the first poll is scheduled
    [dispatch] = fake_github.dispatches
    fake_github.add_artifact(dispatch.run_id, "training-summary", {"training-summary.json": {"status": "passed"}})
    worker.drain_scheduled()

    [comment] = workflow_comments(fake_github)
    assert "success" in comment and dispatch.html_url in comment
    assert "| training-summary | passed |" in comment
    shown = json.loads(run_cli(cli_env, "jobs", "show", job_id, "--json").stdout)
    [followed] = shown["workflow_runs"]
    expected = {
        "workflow": RETRAINING,
        "run_id": str(dispatch.run_id),
        "html_url": dispatch.html_url,
        "status": "completed",
        "conclusion": "success",
        "artifacts": [{"name": "training-summary", "status": "passed", "reason": None}],
    }
    assert expected == {k: followed[k] for k in expected}


def test_a_failed_governance_run_of_an_integrity_alert_says_the_freeze_stays(settings, redis, fake_github, worker):
    """The governance run of an integrity alert concludes `failure`: the ticket says the model failed its
    integrity check and the freeze stays, and DEPLOY_FREEZE is still "true"."""
    fake_github.conclusions[GOVERNANCE] = "failure"
    queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain_scheduled()

    [comment] = workflow_comments(fake_github)
    assert "failure" in comment
    assert "The model failed its integrity check" in comment and "The deploy freeze stays" in comment
    assert "true" == fake_github.variables["DEPLOY_FREEZE"]


def test_polling_an_unchanged_run_costs_one_conditional_read_per_poll(settings, redis, fake_github, worker):
    """While the run does not change, each poll sends If-None-Match and is answered 304; no poll reads twice."""
    fake_github.running_seconds = 3.5
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain_scheduled()

    [dispatch] = fake_github.dispatches
    polls = sum(1 for n in range(1, 50) if Job.exists(f"{job_id}-follow-dispatch-governance-{n}", redis))
    counts = fake_github.path_counts[f"/repos/{fake_github.full_name}/actions/runs/{dispatch.run_id}"]
    assert polls == counts.requests
    assert counts.not_modified >= 1


def test_a_dry_run_dispatch_is_not_followed(redis, redis_url, fake_github):
    """A dry run plans its dispatch: nothing is scheduled to follow it and its record lists no workflow run."""
    settings = make_settings(
        redis_url,
        github_api_url=fake_github.url,
        github_token=fake_github.token,
        github_repo=fake_github.full_name,
        follow_poll_seconds=1,
        dry_run=True,
    )
    worker = Worker(settings)
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()

    record = record_of(settings, redis, job_id)
    assert "planned" == record.step("dispatch-governance").status
    assert [] == record.workflow_runs
    assert [] == Queue(settings.queue, connection=redis).scheduled_job_registry.get_job_ids()


def followed_record() -> RunRecord:
    """A run whose governance dispatch was followed to a failed conclusion with one artifact."""
    [alert] = Notification.model_validate(integrity(MANIFEST_DIGEST)).alerts
    followed = FollowedRun(
        step="dispatch-governance",
        workflow=GOVERNANCE,
        run_id="9000000001",
        html_url="http://github.fake/acme/ml-platform/actions/runs/9000000001",
        status="completed",
        conclusion="failure",
        artifacts=[
            FollowedArtifact(name="integrity-report", status="failed"),
            FollowedArtifact(name="logs", reason="too large"),
        ],
    )
    return RunRecord(
        id="model_integrity_failed-1", playbook="model_integrity_failed", alert=alert, workflow_runs=[followed]
    )


def test_jobs_show_text_lists_the_workflow_run_and_its_artifacts():
    """The text view has a line for the followed run (status, conclusion, workflow, link) and one per artifact."""
    text = run_text(followed_record())
    assert "  workflow runs:" in text
    [line] = [line for line in text.splitlines() if "(step dispatch-governance)" in line]
    expected = [
        "completed/failure",
        GOVERNANCE,
        "(step",
        "dispatch-governance)",
        followed_record().workflow_runs[0].html_url,
    ]
    assert expected == line.split()
    assert "artifact integrity-report: failed" in text and "artifact logs: not read: too large" in text


def test_the_runs_page_lists_the_workflow_run_and_its_artifacts():
    """The run's page has a workflow runs section linking the run and naming each artifact's status."""
    html = _page("run.html", run=followed_record()).text or ""
    section = html[html.index("<h2>Workflow runs</h2>") :]
    assert 'href="http://github.fake/acme/ml-platform/actions/runs/9000000001"' in section
    assert "<code>integrity-report</code>: failed" in section and "not read: too large" in section


def test_two_follow_jobs_saving_at_once_keep_each_others_entries(settings, redis, fake_github, worker):
    """Each follow job writes only its own step's entry: a job holding a stale copy of the run
    record (another step's poll saved meanwhile) does not undo that save."""
    from responder.following import _store

    [job_id] = queue_runs(settings, redis, load_example("bias-firing.json"))
    worker.drain()
    stale = record_of(settings, redis, job_id)
    first, second = (f.step for f in stale.workflow_runs)
    fresh = record_of(settings, redis, job_id)
    done = fresh.workflow_run(first).model_copy(update={"status": "completed", "conclusion": "success"})
    _store(worker.runtime, job_id, done)
    late = stale.workflow_run(second).model_copy(update={"status": "in_progress"})
    _store(worker.runtime, job_id, late)
    stored = {f.step: f for f in record_of(settings, redis, job_id).workflow_runs}
    assert ("completed", "success") == (stored[first].status, stored[first].conclusion)
    assert "in_progress" == stored[second].status
