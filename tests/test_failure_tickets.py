"""A ticket only when something went wrong: `when: {failed: [step]}` (issue 18, the quarterly
baseline retraining is "ticket-free unless it fails"). Real Redis, an RQ worker in this process, the
GitHub fake over HTTP, the shipped quarterly-baseline playbook."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis

from responder.alerts import Alert
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import Worker, following_settings, make_settings
from tests.fakes.github import FakeGitHub

DISPATCHES = r"/actions/workflows/.*/dispatches"


def quarterly_run(settings: Settings, redis: Redis, wanted: Callable[[str], bool] = lambda job_id: "-retry" in job_id
                  ) -> RunRecord:
    """One quarterly-baseline run of fraud-scorer, as the scheduler queues it, worked to its end
    (with the scheduled jobs ``wanted``: by default its retries, not the follow polls)."""
    alert = Alert(status="firing", labels={"alertname": "quarterly-baseline", "model_id": "fraud-scorer"},
                  annotations={}, startsAt=datetime.now(UTC), fingerprint=uuid.uuid4().hex[:16])
    record = Intake(redis, settings, load_catalog(settings.playbooks_dir)).enqueue_manual(
        "quarterly-baseline", alert, dry_run=False, requested_by="schedule:quarterly-baseline")
    Worker(settings).drain_scheduled(wanted)
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(record.id)


def live(redis_url: str, fake: FakeGitHub, **values: object) -> Settings:
    return make_settings(redis_url, github_api_url=fake.url, github_token=fake.token, github_repo=fake.full_name,
                         **values)


def test_a_run_that_succeeds_opens_no_ticket(redis, redis_url, fake_github):
    record = quarterly_run(live(redis_url, fake_github), redis)
    assert (record.status, record.step("open-incident").detail) == (
        "succeeded", "condition not met: dispatch-retraining failed")
    assert fake_github.issues == []


def test_a_failed_dispatch_opens_the_ticket(redis, redis_url, fake_github):
    fake_github.fail_next("POST", DISPATCHES, status=422, body={"message": "Unexpected inputs provided"})
    record = quarterly_run(live(redis_url, fake_github), redis)
    [issue] = fake_github.issues
    assert (record.status, record.step("open-incident").status) == ("failed", "ok")
    assert issue.title == "[quarterly-baseline] fraud-scorer: Quarterly baseline retraining failed"


def test_the_ticket_waits_for_a_dispatch_being_retried(redis, redis_url, fake_github):
    """A 502 defers the dispatch and the conditional ticket waits with it (it is not settled as "not
    needed"): when the retry fails for good, the ticket opens."""
    fake_github.fail_next("POST", DISPATCHES, status=502)
    fake_github.fail_next("POST", DISPATCHES, status=422, body={"message": "Unexpected inputs provided"})
    settings = live(redis_url, fake_github, job_retry_intervals=[0], dispatch_lookup_seconds=1)
    record = quarterly_run(settings, redis)
    assert (record.status, record.attempts, record.step("open-incident").status) == ("failed", 2, "ok")
    assert len(fake_github.issues) == 1


def test_a_retraining_run_that_fails_in_github_opens_the_ticket(redis, redis_url, fake_github):
    """The dispatch went fine but the retraining run it started concluded failure: that is the run
    failing too, and the ticket opens, naming the workflow run's conclusion."""
    fake_github.conclusions["model-retraining.yml"] = "failure"
    record = quarterly_run(following_settings(redis_url, fake_github), redis, wanted=lambda job_id: True)
    [issue] = fake_github.issues
    assert (record.step("dispatch-retraining").status, record.step("open-incident").status) == ("ok", "ok")
    assert issue.title == "[quarterly-baseline] fraud-scorer: Quarterly baseline retraining failed"
    run_id = record.workflow_runs[0].run_id
    assert f"| model-retraining.yml | {run_id} | failure |" in issue.body.replace("\\", "")


def test_a_retraining_run_that_succeeds_opens_no_ticket(redis, redis_url, fake_github):
    record = quarterly_run(following_settings(redis_url, fake_github), redis, wanted=lambda job_id: True)
    assert (record.workflow_runs[0].conclusion, record.step("open-incident").status) == ("success", "skipped")
    assert fake_github.issues == []
