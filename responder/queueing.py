"""How a playbook run is put on the RQ queue, for the first attempt and for retries."""

from __future__ import annotations

import random
from datetime import timedelta

from redis.client import Pipeline
from rq import Queue, Retry

from responder.settings import Settings

JOB_FUNCTION = "responder.jobs.run_playbook_job"
MAX_RETRY_AFTER_SECONDS = 3600  # a server asking for more than an hour is not waited for blindly


def enqueue_run(
    queue: Queue,
    settings: Settings,
    run_id: str,
    *,
    job_id: str | None = None,
    pipeline: Pipeline | None = None,
    delay: float = 0.0,
) -> None:
    """Queue ``run_id`` (at once, or after ``delay`` seconds through the worker's scheduler).

    RQ's own Retry only covers a job that dies without finishing (a crash, a timeout, an
    abandoned job); transient failures of a step are retried by ``schedule_retry`` so that
    Retry-After and rate-limit resets are honoured.
    """
    intervals = settings.job_retry_intervals
    options = {
        "args": (run_id,),
        "job_id": job_id or run_id,
        "timeout": settings.job_timeout_seconds,
        "result_ttl": settings.dedup_retention_seconds,
        "failure_ttl": settings.dedup_retention_seconds,
        "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
        "pipeline": pipeline,
    }
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), JOB_FUNCTION, **options)
    else:
        queue.enqueue_call(JOB_FUNCTION, **options)  # type: ignore[arg-type]


def retry_delay(intervals: list[int], attempt: int, retry_after: float | None) -> float:
    """Seconds before retry number ``attempt`` (1-based): the configured backoff step with
    ±25 % jitter (so workers do not retry in step), never sooner than the server asked."""
    base = intervals[min(attempt, len(intervals)) - 1] if intervals else 0
    delay = base * random.uniform(0.75, 1.25)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay
