"""Transient failures are retried with bounded, jittered backoff that honours the server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from rq import Queue

from responder.runs import RunStore
from responder.store.queueing import MAX_RETRY_AFTER_SECONDS, retry_delay
from tests.conftest import Worker, load_example, make_settings
from tests.support.runs import MANIFEST_DIGEST, RetryingWorker, integrity, is_follow, queue_runs


@pytest.fixture
def retrying(redis, redis_url, fake_github):
    """Settings with three retries after 10, 60 and 300 seconds."""
    return make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                         github_repo=fake_github.full_name, job_retry_intervals=[10, 60, 300])


def scheduled_in(settings, redis, job_id: str) -> float:
    """Seconds from now until the scheduled job runs."""
    when = Queue(settings.queue, connection=redis).scheduled_job_registry.get_scheduled_time(job_id)
    return (when - datetime.now(UTC)).total_seconds()


def test_delay_is_the_backoff_step_with_jitter():
    """Retry n waits the n-th interval, ±25 %."""
    delays = [retry_delay([10, 60, 300], 2, None) for _ in range(200)]
    assert 45 <= min(delays) and max(delays) <= 75


def test_delay_is_bounded_by_the_last_interval():
    """Attempts past the list keep the last (largest) interval."""
    assert retry_delay([10, 60], 7, None) <= 75


def test_delay_is_never_shorter_than_retry_after():
    """A Retry-After longer than the backoff wins."""
    assert retry_delay([10], 1, 120) == 120


def test_retry_after_is_capped():
    """A server asking for days is waited for at most an hour."""
    assert retry_delay([10], 1, 10**6) == MAX_RETRY_AFTER_SECONDS


def test_rate_limited_step_is_retried_after_retry_after(retrying, redis, fake_github):
    """A 429 with Retry-After: 120 schedules the next attempt about two minutes out, not after 10 s."""
    fake_github.fail_next("POST", r"/dispatches", status=429, headers={"Retry-After": "120"},
                          body={"message": "You have exceeded a secondary rate limit"})
    [job_id] = queue_runs(retrying, redis, load_example("bias-firing.json"))
    Worker(retrying).drain()
    record = RunStore(redis, retention_seconds=retrying.dedup_retention_seconds).get(job_id)
    assert record.status == "retrying"
    assert 115 <= scheduled_in(retrying, redis, f"{job_id}-retry1") <= 121


def test_secondary_rate_limit_403_waits_for_the_reset(retrying, redis, fake_github):
    """A 403 with no requests left waits until x-ratelimit-reset."""
    reset = int(time.time()) + 200
    fake_github.fail_next("POST", r"/dispatches", status=403,
                          headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                          body={"message": "API rate limit exceeded"})
    [job_id] = queue_runs(retrying, redis, load_example("bias-firing.json"))
    Worker(retrying).drain()
    assert 190 <= scheduled_in(retrying, redis, f"{job_id}-retry1") <= 201


def test_5xx_is_retried_after_the_first_backoff_step(retrying, redis, fake_github):
    """A 502 schedules the retry after the first interval (10 s ± 25 %)."""
    fake_github.fail_next("POST", r"/dispatches", status=502)
    [job_id] = queue_runs(retrying, redis, load_example("bias-firing.json"))
    started = datetime.now(UTC)
    Worker(retrying).drain()
    when = Queue(retrying.queue, connection=redis).scheduled_job_registry.get_scheduled_time(f"{job_id}-retry1")
    # Scheduled between the drain's start and now, 7.5 to 12.5 s later (however long the drain took;
    # RQ keeps the time in whole seconds, so it reads up to 1 s early).
    assert 6.5 <= (when - started).total_seconds()
    assert (when - datetime.now(UTC)).total_seconds() <= 12.5


def test_other_4xx_fails_at_once_without_retry(retrying, redis, fake_github):
    """A 404 fails the step at once; nothing is scheduled."""
    fake_github.fail_next("POST", r"/dispatches", status=404, body={"message": "Not Found"})
    [job_id] = queue_runs(retrying, redis, load_example("bias-firing.json"))
    Worker(retrying).drain()
    record = RunStore(redis, retention_seconds=retrying.dedup_retention_seconds).get(job_id)
    assert record.status == "failed"
    scheduled = Queue(retrying.queue, connection=redis).scheduled_job_registry.get_job_ids()
    assert [] == [j for j in scheduled if not is_follow(j)]  # the other dispatch's run is followed


def test_retries_stop_after_the_last_interval(redis, redis_url, fake_github):
    """When every attempt fails transiently, the last one records the failure instead of retrying."""
    # A 503 may have started the run: the retry reads the run list for a lookup window (1 s) before
    # it dispatches again, and is scheduled for the end of that window.
    settings = make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                             github_repo=fake_github.full_name, job_retry_intervals=[0, 0],
                             dispatch_lookup_seconds=1)
    fake_github.fail_next("POST", r"/dispatches", status=503, times=10)
    [job_id] = queue_runs(settings, redis, load_example("drift-two-segments-firing.json"))[:1]
    RetryingWorker(settings).drain()
    record = RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(job_id)
    assert (record.status, record.attempts) == ("failed", 3)
    assert "GitHub answered 503" in record.step("dispatch-retraining").error


def test_a_read_asked_to_wait_an_hour_does_not_hold_the_worker(retrying, redis, fake_github):
    """The manifest read gets 429 with Retry-After: 3600: the call does not sleep on it (urllib3
    would, inside the request); the digest check is deferred an hour and the attempt ends."""
    fake_github.fail_next("GET", r"/contents/", status=429, headers={"Retry-After": "3600"})
    [job_id] = queue_runs(retrying, redis, integrity(MANIFEST_DIGEST))
    Worker(retrying).drain()
    record = RunStore(redis, retention_seconds=retrying.dedup_retention_seconds).get(job_id)
    step = record.step("verify-digest")
    assert (record.status, step.status) == ("retrying", "retrying")
    assert 3500 <= (step.retry_at - datetime.now(UTC)).total_seconds() <= 3600
    assert record.step("open-incident").status == "ok"
