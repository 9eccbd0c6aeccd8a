"""`responder worker`: an RQ worker on the configured queue, with the project's runtime.

The runtime (clients built once from the settings) is installed before work starts; each
job forks from this process and inherits it.

A worker that dies (SIGKILL, OOM killer, a lost host) leaves its run "started" in RQ's
StartedJobRegistry. A busy worker renews that entry every quarter of
``worker_ttl_seconds`` (``RESPONDER_WORKER_TTL_SECONDS``, default 60); once it has gone
unrenewed for ``worker_ttl_seconds`` the run is abandoned. Every worker looks for abandoned
runs every ``maintenance_interval_seconds`` (``RESPONDER_MAINTENANCE_INTERVAL_SECONDS``,
default 30) and puts them back at the front of the queue; the run then continues on any
worker from its checkpoints, so completed steps are not repeated (the step that was in
flight runs again, as after a transient failure). So a run interrupted by a
dead worker resumes within about ``worker_ttl_seconds + maintenance_interval_seconds``.
RQ would instead move an abandoned job to its failed registry (or, with RQ retries left,
schedule it after the first retry interval and spend a retry); it only gets to see an
abandoned job here when the same job was abandoned more than ``MAX_ABANDONED_REQUEUES``
times, and then the run is recorded as failed (``responder jobs retry`` queues it again).

A worker that cannot reach Redis keeps running: it retries with a backoff of 1 s doubling
up to ``RECONNECT_MAX_SECONDS``, logging each attempt, and carries on where it was (a run
in flight keeps running; missed heartbeats are logged). If RQ gives up on Redis anyway,
the same process starts a fresh RQ worker once Redis answers again. After this worker
itself lost Redis it judges no other worker dead for ``worker_ttl_seconds``: live workers
get to renew their entries before their runs could be taken for abandoned.

SIGTERM (or SIGINT) is a warm shutdown: the run in flight finishes, then the worker exits 0;
a second signal stops it at once (cold shutdown).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import redis.exceptions
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.utils import as_text, current_timestamp, now, parse_composite_key

from responder.errors import RunNotFound
from responder.jobs import install_runtime
from responder.log import get_logger
from responder.queueing import JOB_FUNCTION
from responder.runs import utcnow
from responder.runtime import Runtime
from responder.settings import Settings

if TYPE_CHECKING:
    from redis.client import Pipeline
    from rq.executions import Execution

log = get_logger(__name__)

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RECONNECT_MAX_SECONDS = 10.0  # longest wait between two attempts to reach Redis again
STABLE_SECONDS = 60.0  # an RQ worker that ran this long resets the restart backoff
MAX_ABANDONED_REQUEUES = 3  # a job whose worker died more often than this is failed, not re-queued
ABANDONED_META = "responder_abandoned"  # job.meta: how often this job was re-queued after its worker died


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Work the queue until SIGTERM/SIGINT (or, with ``burst``, until it is empty).

    Redis must answer at start-up (the CLI exits 3 otherwise); later outages are ridden out.
    """
    runtime = Runtime.build(settings)
    runtime.redis.ping()
    install_runtime(runtime)
    outages = Outages()
    stop = StopSignal()
    backoff = 1.0
    while True:
        started = time.monotonic()
        worker: ResponderWorker | None = None
        try:
            worker = ResponderWorker([settings.queue], runtime=runtime, outages=outages)
            if stop.requested:  # asked to stop while the worker was being set up
                return
            worker.work(burst=burst, with_scheduler=True)
        except REDIS_DOWN as exc:
            if burst:
                raise
            outages.seen()
            log.warning("worker.redis_lost", error=_one_line(exc))
        finally:
            stop.install()  # RQ's signal handlers belong to the worker that just ended
            if worker is not None:
                _release(worker)
        if burst or stop.requested or (worker is not None and worker.stop_requested):
            return
        # RQ quit on an error it does not handle (Redis went away at a bad moment): same process, fresh worker.
        if time.monotonic() - started > STABLE_SECONDS:
            backoff = 1.0
        log.warning("worker.restarting", in_seconds=backoff)
        if stop.wait(backoff) or not wait_for_redis(runtime.redis, stop, outages):
            log.info("worker.stopped")
            return
        backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)


class ResponderWorker(Worker):
    """RQ's forking worker with responder's liveness settings, abandoned-run re-queueing and
    tolerance of Redis outages while a run is in flight."""

    max_connection_wait_time = RECONNECT_MAX_SECONDS  # RQ's own backoff while dequeueing

    def __init__(self, queues: Sequence[str], *, runtime: Runtime, outages: Outages) -> None:
        settings = runtime.settings
        ttl = settings.worker_ttl_seconds
        super().__init__(
            queues,
            connection=runtime.redis,
            worker_ttl=ttl,
            job_monitoring_interval=max(1, ttl // 4),
            maintenance_interval=settings.maintenance_interval_seconds,
            work_horse_killed_handler=self._horse_killed,
        )
        self.runs = runtime.runs
        self.outages = outages
        self.stop_requested = False
        self._starting = False

    # --- liveness

    @property
    def dequeue_timeout(self) -> int:
        """RQ's (``worker_ttl - 15``), but at most the maintenance interval: an idle worker only runs
        maintenance between two waits for a job."""
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """A run is abandoned ``worker_ttl`` after its worker's last heartbeat (RQ: interval + 60 s)."""
        return int(self.worker_ttl)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_DOWN:
            self.outages.seen()
            raise

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """Called while a run is in flight: a missed heartbeat is logged, the run keeps going."""
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as exc:
            self.outages.seen()
            log.warning("worker.heartbeat_failed", job_id=job.id, error=_one_line(exc))

    # --- shutdown

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """RQ installs its signal handlers only after starting the scheduler process: a SIGTERM
        before that would kill this process and orphan the scheduler. Catch it from here on."""
        self._starting = True
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        super().bootstrap(*args, **kwargs)

    def _install_signal_handlers(self) -> None:
        self._starting = False
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        if self._starting:  # RQ's loop checks this before taking a job, then tears down cleanly
            self._stop_requested = True
            return
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def set_shutdown_requested_date(self) -> None:
        with contextlib.suppress(*REDIS_DOWN):  # only shown by `rq info`; the shutdown goes ahead anyway
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]

    # --- maintenance

    def clean_registries(self) -> None:
        """Re-queue abandoned runs first, then let RQ clean up (it fails what is left).

        Skipped for ``worker_ttl`` after this worker lost Redis: live workers have not had the
        chance to renew their runs yet, and RQ's cleanup would fail those runs as abandoned.
        """
        if self.outages.within(self.worker_ttl):
            self.last_cleaned_at = now()  # type: ignore[assignment]  # RQ declares it as None; it holds datetimes
            return
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                try:
                    self.requeue_abandoned(queue)
                finally:
                    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        super().clean_registries()  # type: ignore[no-untyped-call]

    def requeue_abandoned(self, queue: Queue) -> list[str]:
        """Put runs whose worker stopped renewing them back at the front of ``queue``; returns their job ids.

        Call it holding the queue's maintenance lock. Only responder's run jobs are touched,
        and only while their run record is unfinished; RQ's cleanup handles anything else.
        """
        registry = queue.started_job_registry
        requeued: list[str] = []
        for entry in cast(list[bytes], self.connection.zrangebyscore(registry.key, 0, current_timestamp())):
            try:
                job_id = self._requeue_abandoned(queue, as_text(entry))
            except REDIS_DOWN:
                raise
            except Exception:  # one unreadable job must not stop the others from being re-queued
                log.exception("run.requeue_failed", entry=as_text(entry))
                continue
            if job_id is not None:
                requeued.append(job_id)
        return requeued

    def _horse_killed(self, job: Job, pid: int, status: int, rusage: Any) -> None:
        """The process running a job died (OOM killer, a signal) while this worker lives on.

        With RQ retries left, RQ queues the job again and the run resumes from its checkpoints;
        otherwise the run is recorded as failed, so it is reported rather than left "running".
        """
        if job.func_name != JOB_FUNCTION or job.retries_left:
            return
        run_id = str(job.args[0]) if job.args else job.id
        try:
            record = self.runs.get(run_id)
        except RunNotFound:
            return
        record.status, record.ended_at = "failed", utcnow()
        record.error = f"the process running it died (wait status {status}); responder jobs retry {run_id}"
        self.runs.save(record)
        log.error("run.horse_killed", job_id=job.id, run_id=run_id, wait_status=status)

    def _requeue_abandoned(self, queue: Queue, composite: str) -> str | None:
        """Re-queue the job of one expired StartedJobRegistry entry (``<job id>:<execution id>``), if it is ours."""
        job_id, _ = parse_composite_key(composite)
        job = queue.fetch_job(job_id)
        if job is None or job.func_name != JOB_FUNCTION or job.get_status(refresh=False) != JobStatus.STARTED:
            return None
        run_id = str(job.args[0]) if job.args else job.id
        try:
            record = self.runs.get(run_id)
        except RunNotFound:
            return None
        if record.status not in ("queued", "running", "retrying"):  # it ended after all: nothing to resume
            return None
        count = int(job.meta.get(ABANDONED_META, 0)) + 1
        context: dict[str, Any] = {"job_id": job.id, "run_id": run_id, "dead_worker": job.worker_name}
        if count > MAX_ABANDONED_REQUEUES:
            record.status, record.ended_at = "failed", utcnow()
            record.error = (
                f"its worker stopped responding {count} times while running it; not re-queued again "
                f"(responder jobs retry {run_id})"
            )
            self.runs.save(record)
            log.error("run.abandoned_too_often", times=count, **context)
            return None
        record.status = "queued"
        record.error = f"re-queued: worker {job.worker_name} stopped responding while running it"
        job.meta[ABANDONED_META] = count
        job.started_at = job.ended_at = None
        with self.connection.pipeline() as pipe:
            pipe.multi()
            pipe.zrem(queue.started_job_registry.key, composite)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            self.runs.add(record, pipe)
            pipe.execute()
        log.warning("run.requeued_abandoned", times=count, **context)
        return job.id


class Outages:
    """When this process last failed to reach Redis (monotonic clock)."""

    def __init__(self) -> None:
        self._last: float | None = None

    def seen(self) -> None:
        self._last = time.monotonic()

    def within(self, seconds: float) -> bool:
        return self._last is not None and time.monotonic() - self._last < seconds


class StopSignal:
    """SIGTERM/SIGINT while no RQ worker is running (between two of them): stop waiting, exit."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a stop was asked for."""
        return self._event.wait(seconds)


def wait_for_redis(client: Redis, stop: StopSignal, outages: Outages) -> bool:
    """Ping Redis with backoff until it answers (True) or a stop is asked for (False)."""
    delay, since = 1.0, time.monotonic()
    while True:
        try:
            client.ping()
        except REDIS_DOWN as exc:
            outages.seen()
            log.warning("worker.redis_unavailable", error=_one_line(exc), retry_in_seconds=delay)
            if stop.wait(delay):
                return False
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        else:
            log.info("worker.redis_reconnected", after_seconds=round(time.monotonic() - since, 1))
            return True


def _release(worker: ResponderWorker) -> None:
    """Stop what an RQ worker leaves behind when it quits with Redis gone: its pubsub thread, its horse."""
    thread = worker.pubsub_thread
    if thread is not None and thread.is_alive():
        thread.stop()
        thread.join(timeout=5)
    if worker.horse_pid:
        log.info("worker.waiting_for_run_in_flight", horse_pid=worker.horse_pid)
        worker.wait_for_horse()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
