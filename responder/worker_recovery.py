"""Recovery of jobs whose worker died: abandoned runs and follow polls go back at the front of the queue.

A worker that dies (SIGKILL, OOM killer, a lost host, a run crashing the interpreter) leaves
its run "started" in RQ's StartedJobRegistry; once that entry has gone unrenewed for
``worker_ttl_seconds`` the run is abandoned. Every worker looks for abandoned runs every
``maintenance_interval_seconds`` (``RESPONDER_MAINTENANCE_INTERVAL_SECONDS``, default 30; the RQ
worker's ``clean_registries`` calls ``AbandonedJobs.requeue_all``) and puts them back at the front
of the queue; the run then continues on any worker from its checkpoints, so completed steps are not
repeated (the step that was in flight runs again, as after a transient failure). So a run
interrupted by a dead worker resumes within about ``worker_ttl_seconds +
maintenance_interval_seconds``. RQ would instead move an abandoned job to its failed registry (or,
with RQ retries left, schedule it after the first retry interval and spend a retry); it only gets to
see an abandoned job here when the same job was abandoned more than ``MAX_ABANDONED_REQUEUES``
times, and then the run is recorded as failed (``responder jobs retry`` queues it again).

A follow job (one poll of a dispatched workflow run, ``responder.following``) abandoned the same
way is put back at the front of the queue too, while the ticket has not been told how the
workflow run ended; the follow lock the dead poll held is released with it, so the poll runs
again at once instead of being turned away as a duplicate. Abandoned more than
``MAX_ABANDONED_REQUEUES`` times, it is left to RQ to fail, and following stops with the reason
recorded on the run record (``jobs show``), counted as abandoned; the ticket is not told.

A run interrupted by this worker's cold shutdown (``responder.worker_rq``) is re-queued the same
way at once, without counting as abandoned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from redis import Redis
from rq import Queue
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.utils import as_text, current_timestamp, parse_composite_key

from responder import following
from responder.errors import RunNotFound
from responder.log import get_logger
from responder.runs import utcnow
from responder.runtime import Runtime
from responder.store.queueing import FOLLOW_FUNCTION, JOB_FUNCTION
from responder.store.redisconn import REDIS_DOWN
from responder.text import one_line

if TYPE_CHECKING:
    from redis.client import Pipeline

log = get_logger(__name__)

MAX_ABANDONED_REQUEUES = 3  # a job whose worker died more often than this is failed, not re-queued
ABANDONED_META = "responder_abandoned"  # job.meta: how often this job was re-queued after its worker died


class AbandonedJobs:
    """Puts responder's jobs whose worker stopped renewing them (or was cold-stopped while running
    them) back at the front of their queue, with what the job's run record needs written with it."""

    def __init__(self, runtime: Runtime, connection: Redis) -> None:
        self.runtime = runtime
        self.runs = runtime.runs
        self.connection = connection

    def requeue_all(self, queue: Queue) -> list[str]:
        """Put jobs whose worker stopped renewing them back at the front of ``queue``; returns their job ids.

        Call it holding the queue's maintenance lock. Only responder's jobs are touched, and only
        while they have something left to do: a run job while its run record is unfinished, a follow
        job (a poll of a dispatched workflow run) while the ticket has not been told how the workflow
        run ended. RQ's cleanup handles anything else.
        """
        registry = queue.started_job_registry
        requeued: list[str] = []
        for entry in cast(list[bytes], self.connection.zrangebyscore(registry.key, 0, current_timestamp())):
            try:
                job_id = self.requeue(queue, as_text(entry))
            except REDIS_DOWN:
                raise
            except Exception:  # one unreadable job must not stop the others from being re-queued
                log.exception("run.requeue_failed", entry=as_text(entry))
                continue
            if job_id is not None:
                requeued.append(job_id)
        return requeued

    def requeue_interrupted(self, queue: Queue, job: Job, execution: Execution, *, worker_name: str) -> None:
        """Re-queue ``job``, interrupted by the cold shutdown of worker ``worker_name``, at once."""
        reason = f"worker {worker_name} was stopped while running it"
        try:
            self.requeue(queue, execution.composite_key, reason=reason, execution=execution)
        except Exception as exc:  # it stays in the started registry: recovered as abandoned
            log.warning("run.requeue_on_stop_failed", job_id=job.id, error=one_line(exc, 200))

    def requeue(
        self, queue: Queue, composite: str, *, reason: str | None = None, execution: Execution | None = None
    ) -> str | None:
        """Re-queue the job of one StartedJobRegistry entry (``<job id>:<execution id>``), if it is ours:
        expired (its worker died; ``reason`` None), or interrupted by this worker's cold shutdown
        (``reason`` says so; its ``execution`` is deleted with it). Returns the job id, None if not re-queued."""
        job_id, _ = parse_composite_key(composite)
        job = queue.fetch_job(job_id)
        if job is None or job.get_status(refresh=False) != JobStatus.STARTED:
            return None
        count = int(job.meta.get(ABANDONED_META, 0)) + (0 if reason else 1)
        why = reason or f"worker {job.worker_name} stopped responding while running it"
        if job.func_name == JOB_FUNCTION:
            kind, also = "run", self._resumable_run(job, count, why)
        elif job.func_name == FOLLOW_FUNCTION:
            kind, also = "follow", self._resumable_follow(job, count)
        else:
            return None
        if also is None:
            return None
        job.meta[ABANDONED_META] = count
        job.started_at = job.ended_at = None
        with self.connection.pipeline() as pipe:
            pipe.multi()
            pipe.zrem(queue.started_job_registry.key, composite)
            if execution is not None:
                execution.delete(job, pipe)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            also(pipe)
            pipe.execute()
        event = f"{kind}.requeued_interrupted" if reason else f"{kind}.requeued_abandoned"
        run_id = str(job.args[0]) if job.args else job.id
        log.warning(event, job_id=job.id, run_id=run_id, dead_worker=job.worker_name, times=count)
        return job.id

    def _resumable_run(self, job: Job, count: int, why: str) -> Callable[[Pipeline], object] | None:
        """What re-queueing run job ``job`` writes besides the job (its run record, queued again), or
        None when it is not to be re-queued: its run ended after all, or it was abandoned more than
        MAX_ABANDONED_REQUEUES times (``count``), and then the run is recorded as failed."""
        run_id = str(job.args[0]) if job.args else job.id
        try:
            record = self.runs.get(run_id)
        except RunNotFound:
            return None
        if record.status not in ("queued", "running", "retrying"):  # it ended after all: nothing to resume
            return None
        if count > MAX_ABANDONED_REQUEUES:
            record.status, record.ended_at = "failed", utcnow()
            record.error = (
                f"its worker stopped responding {count} times while running it; not re-queued again "
                f"(responder jobs retry {run_id})"
            )
            self.runs.save(record)
            log.error("run.abandoned_too_often", job_id=job.id, run_id=run_id, times=count)
            return None
        record.status = "queued"
        record.error = f"re-queued: {why}"
        return lambda pipe: self.runs.add(record, pipe)

    def _resumable_follow(self, job: Job, count: int) -> Callable[[Pipeline], object] | None:
        """What re-queueing follow job ``job`` (a poll of a workflow run) writes besides the job: the
        release of the follow lock the poll held (its worker died; the lock would turn the re-queued
        poll away). None when it is not to be re-queued: the ticket was told how the workflow run
        ended, or the poll was abandoned more than MAX_ABANDONED_REQUEUES times (``count``); then
        following stops with the reason recorded, unless it had ended (RQ fails the job), as a run
        abandoned that often is failed."""
        run_id, step, number = str(job.args[0]), str(job.args[1]), int(job.args[2]) if len(job.args) > 2 else 1
        try:
            record = self.runs.get(run_id)
        except RunNotFound:
            return None
        followed = record.workflow_run(step)
        if followed is None or followed.reported:
            return None
        if count > MAX_ABANDONED_REQUEUES:
            if not followed.finished:  # one that ended was counted then, and keeps its note
                note = f"following stopped: its worker stopped responding {count} times while polling it"
                following.stop_following(self.runtime, record, followed, note)
            log.error("follow.abandoned_too_often", job_id=job.id, run_id=run_id, step=step, times=count)
            return None
        return lambda pipe: following.release_abandoned_lock(pipe, run_id, step, number)
