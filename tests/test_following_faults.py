"""Following a dispatched workflow run when things go wrong: the worker polling it dies, GitHub
answers a poll with an error, the run outlasts the follow timeout, the ticket refuses a comment;
and the completion comment as Jira shows it. Real Redis, the fakes over HTTP; real `responder
worker` processes where a worker dies, a real RQ worker in this process elsewhere."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from responder import jobs
from responder.following import LOCK_SECONDS, lock_key
from responder.runs import FollowedRun
from responder.runtime import Runtime
from responder.settings import Settings
from responder.store.queueing import MAX_RETRY_AFTER_SECONDS
from responder.worker import MAX_ABANDONED_REQUEUES, Outages, ResponderWorker
from tests.conftest import Worker, following_settings, integration_settings, load_example, wait_until
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.github import GOVERNANCE, workflow_comments
from tests.support.metrics import metric
from tests.support.processes import Service, service_env
from tests.support.runs import MANIFEST_DIGEST, enqueue_example, integrity, queue_runs, record_of

RUN_READ = r"/actions/runs/\d+$"  # a poll's read of the workflow run (not its artifacts)
INTEGRITY = "integrity-firing.json"  # one governance dispatch, step GOVERNANCE_STEP
GOVERNANCE_STEP = "dispatch-governance"
DRIFT = "drift-two-segments-firing.json"
# GitHub's secondary rate limit: 403 with Retry-After. (A 429 or 503 with Retry-After on a GET is
# waited out inside the call by the client's urllib3 retry, and never reaches the follow job.)
SECONDARY_LIMIT = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes and try again."}


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    return following_settings(redis_url, fake_github)


@pytest.fixture
def workers() -> Iterator[Callable[[Settings], Worker]]:
    """Make in-process workers with settings of the test's own; the runtime is uninstalled after."""
    yield Worker
    jobs.install_runtime(None)


def followed_run(settings: Settings, redis: Redis, job_id: str, step: str = GOVERNANCE_STEP) -> FollowedRun:
    followed = record_of(settings, redis, job_id).workflow_run(step)
    assert followed is not None, f"{job_id} follows no workflow run of step {step}"
    return followed


def follow_job_id(job_id: str, poll: int, step: str = GOVERNANCE_STEP) -> str:
    return f"{job_id}-follow-{step}-{poll}"


def abandoned(settings: Settings, redis: Redis, workflow: str = GOVERNANCE) -> float:
    return metric(settings, redis, "responder_workflow_runs_total", workflow=workflow, conclusion="abandoned")


# --------------------------------------------------------------------------- a worker dies mid-poll


def test_a_poll_whose_worker_is_killed_is_polled_again_on_another_worker_and_reported_once(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """A worker SIGKILLed while its follow poll reads the workflow run: another worker re-queues the
    poll and releases the dead poll's lock, so the poll runs again at once (well inside LOCK_SECONDS)
    and the ticket gets exactly one comment with the run's conclusion."""
    fake_github.conclusions[GOVERNANCE] = "failure"
    env = service_env(cli_env, worker_ttl_seconds="4", maintenance_interval_seconds="1", follow_poll_seconds="1")
    fake_github.fail_next("GET", RUN_READ, status=None, delay=20)  # the first poll's read hangs
    first = services(env, "worker-1", "worker")
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    wait_until(
        lambda: any(re.search(RUN_READ, r.path) for r in fake_github.requests), "the first poll", logs=(first.log,)
    )

    first.kill_tree()
    assert not followed_run(settings, redis, job_id).reported
    second = services(env, "worker-2", "worker")
    started = time.monotonic()
    wait_until(
        lambda: followed_run(settings, redis, job_id).reported,
        "the ticket to be told",
        timeout=LOCK_SECONDS / 3,
        logs=(second.log,),
    )

    assert time.monotonic() - started < LOCK_SECONDS / 3  # the dead poll's lock was not waited out
    [dispatch] = fake_github.dispatches
    [comment] = workflow_comments(fake_github)
    assert "failure" in comment and dispatch.html_url in comment
    followed = followed_run(settings, redis, job_id)
    assert ("completed", "failure", None) == (followed.status, followed.conclusion, followed.note)
    [requeued] = second.events("follow.requeued_abandoned")
    assert follow_job_id(job_id, 1) == requeued["job_id"]
    assert JobStatus.FINISHED == Job.fetch(follow_job_id(job_id, 1), connection=redis).get_status()


def abandon_first_poll(settings: Settings, redis: Redis, job_id: str, *, times: int) -> Job:
    """Take poll 1 of ``job_id`` off the schedule as if a worker had started it and died, for the
    ``times``-th time; returns the job."""
    queue = Queue(settings.queue, connection=redis)
    job = Job.fetch(follow_job_id(job_id, 1), connection=redis)
    queue.scheduled_job_registry.remove(job)
    job.meta["responder_abandoned"] = times - 1
    job.save_meta()
    job.set_status(JobStatus.STARTED)
    redis.zadd(queue.started_job_registry.key, {f"{job.id}:dead-execution": time.time() - 5})
    return job


def test_a_requeued_poll_leaves_a_lock_another_poll_holds(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """Re-queueing an abandoned poll releases the follow lock only when that poll holds it: a lock held
    by another poll of the same workflow run (a live one) stays."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    abandon_first_poll(settings, redis, job_id, times=1)
    lock = lock_key(job_id, GOVERNANCE_STEP)
    redis.set(lock, "2:a-live-poll", ex=LOCK_SECONDS)
    maintainer = ResponderWorker([settings.queue], runtime=Runtime.build(settings), outages=Outages())

    assert [follow_job_id(job_id, 1)] == maintainer.requeue_abandoned(Queue(settings.queue, connection=redis))
    assert b"2:a-live-poll" == redis.get(lock)
    redis.set(lock, "1:the-dead-poll", ex=LOCK_SECONDS)
    abandon_first_poll(settings, redis, job_id, times=2)
    assert [follow_job_id(job_id, 1)] == maintainer.requeue_abandoned(Queue(settings.queue, connection=redis))
    assert redis.get(lock) is None


def test_a_poll_abandoned_too_often_stops_following_with_the_reason(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """A poll whose worker died more than MAX_ABANDONED_REQUEUES times is not re-queued: RQ fails it, the
    run record notes why following stopped, and the workflow run is counted as abandoned."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    job = abandon_first_poll(settings, redis, job_id, times=MAX_ABANDONED_REQUEUES + 1)
    maintainer = ResponderWorker([settings.queue], runtime=Runtime.build(settings), outages=Outages())

    assert [] == maintainer.requeue_abandoned(Queue(settings.queue, connection=redis))
    maintainer.clean_registries()

    followed = followed_run(settings, redis, job_id)
    assert f"stopped responding {MAX_ABANDONED_REQUEUES + 1} times" in (followed.note or "")
    assert not followed.reported and [] == workflow_comments(fake_github)
    assert JobStatus.FAILED == job.get_status()
    assert 1 == abandoned(settings, redis)


# --------------------------------------------------------------------------- following ends without a conclusion


def test_a_run_still_going_at_the_follow_timeout_is_given_up_once_and_said_so(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, workers: Callable[[Settings], Worker]
) -> None:
    """A workflow run still in progress RESPONDER_FOLLOW_TIMEOUT_SECONDS after following began: the
    polls stop, the ticket gets one "gave up following" comment, the run record keeps the note and
    the last status seen, and the run is counted once as abandoned."""
    fake_github.running_seconds = 600
    worker = workers(settings.model_copy(update={"follow_timeout_seconds": 2.5}))
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain_scheduled()  # returns once no poll is scheduled any more

    [comment] = workflow_comments(fake_github)
    assert "gave up following after" in comment and "in_progress" in comment
    followed = followed_run(settings, redis, job_id)
    assert followed.note is not None and followed.note.startswith("gave up following after")
    assert ("in_progress", None, True) == (followed.status, followed.conclusion, followed.reported)
    assert Job.exists(follow_job_id(job_id, 2), redis)  # it was polled more than once before giving up
    assert 1 == abandoned(settings, redis)
    assert 1 == metric(settings, redis, "responder_workflow_runs_total")


def test_a_run_github_no_longer_has_ends_following_with_the_reason(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """A poll answered 404 (the workflow run was deleted): following ends at once, the record notes that
    the run could not be read and why, the ticket gets one comment saying so, it is counted as abandoned
    and no further poll is scheduled."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    fake_github.fail_next("GET", RUN_READ, status=404)
    worker.drain_scheduled()

    followed = followed_run(settings, redis, job_id)
    assert followed.note is not None and followed.note.startswith("could not read the run")
    assert "404" in followed.note and followed.reported
    [comment] = workflow_comments(fake_github)
    assert "could not read the run" in comment and "404" in comment
    assert not Job.exists(follow_job_id(job_id, 2), redis)
    assert 1 == abandoned(settings, redis)


# --------------------------------------------------------------------------- transient failures


def test_a_rate_limited_poll_is_polled_again_after_retry_after_and_completes(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """A poll refused by GitHub's secondary rate limit with Retry-After: 3 schedules the next poll 3 s
    later (not after the 1 s poll interval); that poll finds the run completed and the ticket gets one
    comment with its conclusion."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    fake_github.fail_next("GET", RUN_READ, status=403, body=SECONDARY_LIMIT, headers={"Retry-After": "3"})
    worker.drain_scheduled(lambda j: j == follow_job_id(job_id, 1))

    registry = Queue(settings.queue, connection=redis).scheduled_job_registry
    ran = Job.fetch(follow_job_id(job_id, 1), connection=redis).ended_at
    assert ran is not None
    due = registry.get_scheduled_time(follow_job_id(job_id, 2))
    assert 2.5 <= (due - ran.replace(tzinfo=UTC)).total_seconds() <= 4  # RQ keeps whole seconds
    worker.drain_scheduled()

    assert [403] == [r.status for r in fake_github.requests if re.search(RUN_READ, r.path)][:1]
    [comment] = workflow_comments(fake_github)
    assert "success" in comment
    followed = followed_run(settings, redis, job_id)
    assert ("completed", "success", None) == (followed.status, followed.conclusion, followed.note)


def test_a_retry_after_of_a_day_is_waited_for_an_hour_at_most(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """A poll refused by GitHub's secondary rate limit with Retry-After of a day schedules the next poll
    MAX_RETRY_AFTER_SECONDS (an hour) later, not a day."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    fake_github.fail_next("GET", RUN_READ, status=403, body=SECONDARY_LIMIT, headers={"Retry-After": "86400"})
    worker.drain_scheduled(lambda j: j == follow_job_id(job_id, 1))

    due = Queue(settings.queue, connection=redis).scheduled_job_registry.get_scheduled_time(follow_job_id(job_id, 2))
    waits = (due - datetime.now(UTC)).total_seconds()
    assert MAX_RETRY_AFTER_SECONDS - 60 < waits <= MAX_RETRY_AFTER_SECONDS


def test_a_comment_refused_when_the_run_completes_lands_once_at_the_next_poll(
    redis: Redis, settings: Settings, fake_github: FakeGitHub, worker: Worker
) -> None:
    """The ticket answers 502 to the completion comment: the poll that saw the run complete schedules
    another, which comments without reading the run again; the ticket gets the comment once and the
    run is counted once."""
    [job_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    worker.drain()
    fake_github.fail_next("POST", r"/issues/\d+/comments$", status=502)
    worker.drain_scheduled()

    results = {}
    for poll in range(1, 20):
        if not Job.exists(follow_job_id(job_id, poll), redis):
            break
        results[poll] = Job.fetch(follow_job_id(job_id, poll), connection=redis).return_value()
    last = max(results)
    assert ("ticket not told yet", "success") == (results[last - 1], results[last])
    posts = [r.status for r in fake_github.requests if r.method == "POST" and r.path.endswith("/comments")]
    assert [502, 201] == posts
    reads = [r for r in fake_github.requests if re.search(RUN_READ, r.path)]
    assert last - 1 == len(reads)  # the last poll only told the ticket
    [comment] = workflow_comments(fake_github)
    assert "success" in comment and followed_run(settings, redis, job_id).reported
    assert 1 == metric(settings, redis, "responder_workflow_runs_total")


# --------------------------------------------------------------------------- the comment on Jira


def test_the_completion_comment_on_jira_is_wiki_markup_naming_workflow_conclusion_link_and_artifacts(
    redis: Redis,
    redis_url: str,
    fake_github: FakeGitHub,
    fake_toggles: FakeToggles,
    fake_jira: FakeJira,
    workers: Callable[[Settings], Worker],
) -> None:
    """With tickets in Jira, the comment on a completed retraining run is wiki markup: the workflow in
    {{monospace}}, the conclusion in *bold*, a [label|url] link to the run and an artifact table with
    each artifact's status; none of the Markdown GitHub gets."""
    following_settings(redis_url, fake_github)  # the fake's runs complete within 2 s
    settings = integration_settings(redis_url, "jira", fake_github, fake_toggles, fake_jira, follow_poll_seconds=1)
    worker = workers(settings)
    queue_runs(settings, redis, load_example(DRIFT))
    worker.drain()
    [dispatch] = fake_github.dispatches
    fake_github.add_artifact(dispatch.run_id, "training-summary", {"training-summary.json": {"status": "passed"}})
    fake_github.add_artifact(dispatch.run_id, "logs", b"not a zip")
    worker.drain_scheduled()

    [comment] = [c for issue in fake_jira.issues for c in issue.comments if c.startswith("Workflow")]
    first, table = comment.rstrip("\n").split("\n\n")
    assert first.startswith(
        f"Workflow {{{{model\\-retraining.yml}}}} [run {dispatch.run_id}|{dispatch.html_url}] concluded *success*"
    ), first
    rows = table.splitlines()
    assert "||artifact||status||" == rows[0]
    assert "|training\\-summary|passed|" in rows
    [logs] = [row for row in rows if row.startswith("|logs|not read")]
    assert logs.endswith("|")
    for markdown in ("**", "`", "](", "| --- |"):
        assert markdown not in comment
