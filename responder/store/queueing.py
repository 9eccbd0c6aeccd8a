"""How a playbook run is put on the RQ queue, for the first attempt and for retries, and
which workers listen on it."""

from __future__ import annotations

import math
import random
import struct
import time
import zlib
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry, Worker
from rq.job import Job, JobStatus
from rq.utils import missing_keys

from responder.settings import Settings
from responder.store.redis_keys import digest
from responder.store.writeset import Arg, WriteSet

JOB_FUNCTION = "responder.jobs.run_playbook_job"
FOLLOW_FUNCTION = "responder.jobs.follow_workflow_run_job"
REPLY_FUNCTION = "responder.jobs.ticket_reply_job"
NOTE_FUNCTION = "responder.jobs.ticket_note_job"
CHANGE_REQUEST_FUNCTION = "responder.jobs.change_request_job"
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
    options = {**_options(settings, run_id, job_id), "pipeline": pipeline}
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), JOB_FUNCTION, **options)
    else:
        queue.enqueue_call(JOB_FUNCTION, **options)


def enqueue_follow(
    queue: Queue,
    settings: Settings,
    run_id: str,
    step: str,
    poll: int,
    *,
    delay: float,
    pipeline: Pipeline | None = None,
) -> None:
    """Schedule poll number ``poll`` of the workflow run that step ``step`` of run ``run_id`` started.

    The job id names the poll, so queueing the same poll twice leaves one job. A follow job holds
    no worker while it waits: it is a scheduled job, run by the worker's scheduler when due."""
    queue.enqueue_in(
        timedelta(seconds=delay),
        FOLLOW_FUNCTION,
        args=(run_id, step, poll),
        job_id=f"{run_id}-follow-{step}-{poll}",
        timeout=settings.job_timeout_seconds,
        result_ttl=settings.dedup_retention_seconds,
        failure_ttl=settings.dedup_retention_seconds,
        pipeline=pipeline,
    )


def enqueue_follow_now(queue: Queue, settings: Settings, run_id: str, step: str, tag: str) -> None:
    """Queue one poll now of the workflow run that step ``step`` of run ``run_id`` started, outside
    the scheduled chain (GitHub said it completed): it schedules no poll after it. ``tag`` names what
    asked for it (a webhook delivery), so that asking twice queues one job."""
    queue.enqueue_call(
        FOLLOW_FUNCTION,
        args=(run_id, step, 0, False),
        job_id=f"{run_id}-follow-{step}-now-{digest(tag)}",
        timeout=settings.job_timeout_seconds,
        result_ttl=settings.dedup_retention_seconds,
        failure_ttl=settings.dedup_retention_seconds,
    )


def enqueue_change_request(
    queue: Queue, settings: Settings, run_id: str, step: str, job_id: str, *, poll: int = 0, delay: float = 0.0
) -> None:
    """Queue a look at the change request of step ``step`` of run ``run_id`` (``responder.change_requests``):
    now, or after ``delay`` seconds. ``poll`` > 0 is the scheduled review poll of that number, which
    schedules the next one; 0 is a look outside that chain (a workflow run ended, a webhook delivery)."""
    options: dict[str, Any] = {
        "args": (run_id, step, poll),
        "job_id": job_id,
        "timeout": settings.job_timeout_seconds,
        "result_ttl": settings.dedup_retention_seconds,
        "failure_ttl": settings.dedup_retention_seconds,
    }
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), CHANGE_REQUEST_FUNCTION, **options)
    else:
        queue.enqueue_call(CHANGE_REQUEST_FUNCTION, **options)


def enqueue_ticket_reply(queue: Queue, settings: Settings, ref: str, url: str, text: str, tag: str) -> None:
    """Queue a comment on the ticket ``ref`` (at ``url``) saying ``text``: the reply to an answer
    given on the ticket itself. ``tag`` names what asked for it (a webhook delivery): once per tag."""
    _enqueue_comment(queue, settings, REPLY_FUNCTION, (ref, url, text), f"ticket-reply-{digest(tag)}")


def enqueue_ticket_note(queue: Queue, settings: Settings, run_id: str, text: str, tag: str) -> None:
    """Queue a note ``text`` about run ``run_id`` on its model's open incident ticket (an answer
    given on the runs page). Once per ``tag``."""
    _enqueue_comment(queue, settings, NOTE_FUNCTION, (run_id, text), f"ticket-note-{digest(tag)}")


def _enqueue_comment(queue: Queue, settings: Settings, function: str, args: tuple[str, ...], job_id: str) -> None:
    intervals = [max(1, round(i)) for i in settings.job_retry_intervals]
    queue.enqueue_call(
        function,
        args=args,
        job_id=job_id,
        timeout=settings.job_timeout_seconds,
        result_ttl=settings.dedup_retention_seconds,
        failure_ttl=settings.dedup_retention_seconds,
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
    )


def listening_workers(redis: Redis, queue: str) -> int:
    """How many RQ workers listen on ``queue`` now.

    RQ's per-queue worker set still names a worker that died without unregistering (SIGKILL,
    OOM, a lost host) until a live worker's maintenance cleans the set, so ``Worker.count``
    would count it. A worker is counted here only while its key lives: each heartbeat renews
    the key, which expires at most ``worker_ttl + 60`` seconds after the last one.
    """
    keys = Worker.all_keys(queue=Queue(queue, connection=redis))
    return len(keys) - len(missing_keys(redis, keys))


def _options(settings: Settings, run_id: str, job_id: str | None) -> dict[str, Any]:
    intervals = settings.job_retry_intervals
    return {
        "args": (run_id,),
        "job_id": job_id or run_id,
        "timeout": settings.job_timeout_seconds,
        "result_ttl": settings.dedup_retention_seconds,
        "failure_ttl": settings.dedup_retention_seconds,
        # RQ's Retry (a job that died) takes whole seconds, as its scheduler keeps them
        "retry": Retry(max=len(intervals), interval=[math.ceil(i) for i in intervals]) if intervals else None,
    }


class FirstAttempts:
    """The first attempts of many runs queued on one pipeline, written as ``enqueue_run`` writes them.

    RQ builds a Job object per call, which costs more than the rest of the commit when an alert
    storm queues thousands (the intake's group commit queues a batch at a time). Here the job hash RQ
    writes is taken once from a job RQ builds itself, and only the fields that differ per
    run are filled in; ``tests/test_queueing.py`` compares the result with RQ's own, field
    by field, so an RQ upgrade that changes the format fails there.
    """

    PER_RUN = ("created_at", "enqueued_at", "data", "description")

    def __init__(self, queue: Queue, settings: Settings) -> None:
        probe = queue.create_job(JOB_FUNCTION, **_options(settings, "probe", None))
        template = probe.to_dict()
        template["status"] = JobStatus.QUEUED.value
        for name in self.PER_RUN:
            template.pop(name, None)
        self._template = template
        self._serializer = probe.serializer
        self._queue = queue

    def add(self, pipe: WriteSet, run_ids: Sequence[str]) -> None:
        """Queue the writes of ``run_ids``' jobs (job id = run id) on ``pipe``, in this order; the
        fields every job shares are sent once."""
        if not run_ids:
            return
        stamp = _rq_timestamp(time.time())
        template, dumps = self._template, self._serializer.dumps
        for run_id in run_ids:
            args = (run_id,)
            fields: dict[str, Arg] = {
                "created_at": stamp,
                "enqueued_at": stamp,
                "data": _zlib_stored(dumps((JOB_FUNCTION, None, args, {}))),
                "description": f"{JOB_FUNCTION}({run_id!r})",  # what rq.utils.get_call_string writes
            }
            pipe.hset(Job.key_for(run_id), mapping=fields, shared=template)
        pipe.sadd(self._queue.redis_queues_keys, self._queue.key)
        pipe.rpush(self._queue.key, *run_ids)


def _zlib_stored(data: bytes) -> bytes:
    """``data`` as a zlib stream, which is how RQ keeps job data, without compressing it (a job's
    data is a pickle of about 100 bytes, which deflate does not shrink): the stream header, one
    final stored block (RFC 1951 3.2.4: its length and the length's complement) and the Adler-32
    of the data (RFC 1950), which is cheaper than setting up a compressor for it."""
    if len(data) > 0xFFFF:  # more than one stored block holds: let zlib frame it
        stream = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
        return stream.compress(data) + stream.flush()
    size = len(data)
    return b"\x78\x01\x01" + struct.pack("<HH", size, size ^ 0xFFFF) + data + struct.pack(">I", zlib.adler32(data))


def _rq_timestamp(now: float) -> str:
    """``now`` (Unix time) as RQ writes job timestamps (``rq.utils.utcformat``: %Y-%m-%dT%H:%M:%S.%fZ)."""
    second, micro = divmod(round(now * 1_000_000), 1_000_000)
    return f"{_utc_second(second)}.{micro:06d}Z"


@lru_cache(maxsize=1)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def retry_delay(intervals: list[float], attempt: int, retry_after: float | None) -> float:
    """Seconds before retry number ``attempt`` (1-based): the configured backoff step with
    ±25 % jitter (so workers do not retry in step), never sooner than the server asked."""
    base = intervals[min(attempt, len(intervals)) - 1] if intervals else 0
    return not_before(base * random.uniform(0.75, 1.25), retry_after)


def not_before(delay: float, retry_after: float | None) -> float:
    """``delay``, or longer where a server asked for it (Retry-After), up to MAX_RETRY_AFTER_SECONDS."""
    if retry_after is None:
        return delay
    return max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
