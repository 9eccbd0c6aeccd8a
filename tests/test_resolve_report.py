"""What a resolve reports (issue 16 part A): the followed workflow runs counted by conclusion, the time
from responder's first action to the resolve as a histogram, and both on the resolve comment. Real
Redis, the GitHub fake over HTTP, a real RQ worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis

from responder.alerts import Notification
from responder.runs import RunStore
from responder.settings import Settings
from tests.conftest import Worker, following_settings, load_example
from tests.fakes.github import FakeGitHub
from tests.support.github import GOVERNANCE, RETRAINING
from tests.support.metrics import metric
from tests.support.runs import MANIFEST_DIGEST, integrity, queue_runs

FIRING = "drift-two-segments-firing.json"
RESOLVED = "drift-all-resolved.json"  # the resolve of FIRING's first alert
TOOK = timedelta(minutes=20)


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    return following_settings(redis_url, fake_github)


def fire_then_resolve(settings: Settings, redis: Redis, worker: Worker, *, follow: bool) -> None:
    """Run FIRING (following its workflow runs to their end when ``follow``), date its run's start TOOK
    before the resolve's endsAt, then run RESOLVED."""
    queue_runs(settings, redis, load_example(FIRING))
    worker.drain_scheduled() if follow else worker.drain()
    [resolved] = Notification.model_validate(load_example(RESOLVED)).alerts
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    firing = runs.get(resolved.firing_job_id())
    firing.started_at = resolved.endsAt - TOOK
    runs.save(firing)
    queue_runs(settings, redis, load_example(RESOLVED))
    worker.drain()


def resolve_comment(fake: FakeGitHub) -> str:
    [comment] = [c.replace("\\", "") for issue in fake.issues for c in issue.comments if "Resolved at" in c]
    return comment


def test_a_followed_run_that_ends_is_counted_once_by_workflow_and_conclusion(settings, redis, fake_github, worker):
    """The governance run of an integrity alert concludes `failure`: responder_workflow_runs_total counts it
    once under that workflow and conclusion, although following it took several polls."""
    fake_github.conclusions[GOVERNANCE] = "failure"
    fake_github.running_seconds = 2.5
    queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain_scheduled()

    assert 1 == metric(settings, redis, "responder_workflow_runs_total", workflow=GOVERNANCE, conclusion="failure")
    assert 1 == metric(settings, redis, "responder_workflow_runs_total")


def test_a_resolve_is_observed_in_the_time_to_resolve_histogram(settings, redis, fake_github, worker):
    """A drift alert resolves 20 minutes after its firing run started: one observation of 1200 s, in the
    30m bucket and not the 15m one."""
    fire_then_resolve(settings, redis, worker, follow=False)

    name, alertname = "responder_time_to_resolve_seconds", "model_drift_detected"
    assert 1 == metric(settings, redis, f"{name}_count", alertname=alertname)
    assert TOOK.total_seconds() == metric(settings, redis, f"{name}_sum", alertname=alertname)
    assert 0 == metric(settings, redis, f"{name}_bucket", alertname=alertname, le="900.0")
    assert 1 == metric(settings, redis, f"{name}_bucket", alertname=alertname, le="1800.0")


def test_the_resolve_comment_says_when_after_the_first_action_and_how_the_workflow_runs_ended(
    settings, redis, fake_github, worker
):
    """The resolve note says it resolved 20m after responder's first action and names the firing run's
    retraining run with its conclusion and link."""
    fire_then_resolve(settings, redis, worker, follow=True)

    comment = resolve_comment(fake_github)
    assert "Resolved 20m after responder's first action" in comment
    [dispatch] = [d for d in fake_github.dispatches if d.html_url in comment]
    line = next(line for line in comment.splitlines() if dispatch.html_url in line)
    assert RETRAINING in line and "success" in line


def test_the_resolve_comment_says_a_workflow_run_still_running(settings, redis, fake_github, worker):
    """A workflow run of the firing run that has not ended yet is listed as still running."""
    fire_then_resolve(settings, redis, worker, follow=False)

    line = next(line for line in resolve_comment(fake_github).splitlines() if RETRAINING in line)
    assert "still running" in line
