"""The intake's batched job writer produces the jobs RQ's own enqueue would."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from responder.store.queueing import FirstAttempts, _rq_timestamp, _zlib_stored, enqueue_run
from responder.store.writeset import APPLY, WriteSet
from tests.conftest import make_settings

TIMESTAMPS = {b"created_at", b"enqueued_at"}


def written(redis: Redis, job_id: str) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = redis.hgetall(Job.key_for(job_id))  # type: ignore[assignment]
    return {k: v for k, v in fields.items() if k not in TIMESTAMPS}


@pytest.mark.parametrize("retries", [[], [5, 30]])
def test_first_attempt_is_the_hash_rq_writes(redis: Redis, redis_url: str, retries: list[int]) -> None:
    """Byte for byte but the run id (ids of equal length) and the timestamps, with and without RQ retries."""
    settings = make_settings(redis_url, job_retry_intervals=retries)
    queue = Queue(settings.queue, connection=redis)
    with redis.pipeline() as pipe:
        pipe.multi()
        enqueue_run(queue, settings, "run-by-rq", pipeline=pipe)
        pipe.execute()
    writes = WriteSet()
    FirstAttempts(queue, settings).add(writes, ["run-by-tp"])
    assert writes.apply(redis.register_script(APPLY))
    by_rq, by_template = written(redis, "run-by-rq"), written(redis, "run-by-tp")
    assert zlib.decompress(by_template.pop(b"data")) == zlib.decompress(by_rq.pop(b"data")).replace(
        b"run-by-rq", b"run-by-tp"
    )
    assert by_template.pop(b"description") == by_rq.pop(b"description").replace(b"run-by-rq", b"run-by-tp")
    assert by_rq == by_template


def test_first_attempts_are_queued_in_order_and_load_as_rq_jobs(redis: Redis, redis_url: str) -> None:
    settings = make_settings(redis_url)
    queue = Queue(settings.queue, connection=redis)
    writes = WriteSet()
    FirstAttempts(queue, settings).add(writes, ["run-a", "run-b", "run-c"])
    assert writes.apply(redis.register_script(APPLY))
    assert ["run-a", "run-b", "run-c"] == queue.job_ids
    job: Any = queue.fetch_job("run-b")
    assert ("responder.jobs.run_playbook_job", ("run-b",), "queued") == (job.func_name, job.args, job.get_status())
    assert settings.job_timeout_seconds == job.timeout


@pytest.mark.parametrize("size", [0, 1, 120, 0xFFFF, 0xFFFF + 1, 200_000])
def test_job_data_is_a_zlib_stream_of_any_size(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert zlib.decompress(_zlib_stored(data)) == data


@pytest.mark.parametrize("now", [1764190000.0, 1764190000.5, 1764190000.999999, 1764190000.9999996])
def test_job_timestamps_are_rqs_format(now: float) -> None:
    assert _rq_timestamp(now) == datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
