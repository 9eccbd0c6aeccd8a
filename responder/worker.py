"""`responder worker`: an RQ worker on the configured queue, with the project's runtime.

The runtime (clients built once from the settings) is installed before work starts. Runs are
executed in this process, one after the other (RQ's SimpleWorker pattern): no work horse is
forked per run. A fork per run cost more CPU than the run itself (copying the page tables,
then copy-on-write faults as the horse touched its inherited objects; bench/ measured 33 ms of
worker CPU per drift run forking, under 10 ms without) and threw away every warm connection:
the horse's GitHub and Redis connections died with it. In-process, the runtime's GitHub
session keeps its connections alive across runs. The price is isolation: a
run that crashes the interpreter takes the worker down with it, and the run is then recovered
like the run of any dead worker (below). There is no setting to fork again: nothing a playbook
runs needs the isolation (pure-Python clients, each run's state is its run record), and every
liveness guarantee below holds without it.

While a run is in flight the worker's renewal thread (``RunRenewal``) does what RQ's parent
process did while it waited for its horse: every quarter of ``worker_ttl_seconds``
(``RESPONDER_WORKER_TTL_SECONDS``, default 60) it renews the run's StartedJobRegistry entry
and the worker's heartbeat in one pipeline. A renewal that cannot reach Redis is logged and
tried again at the next tick; the run keeps going. The renewal stops before RQ records the
run's end, so a late renewal can never put a finished run back in the registry. The job
timeout (``RESPONDER_JOB_TIMEOUT_SECONDS``) is enforced by RQ's SIGALRM death penalty in this
process; should a run still be going ``job_timeout + 60`` seconds after it started (something
swallowed the timeout), the renewal thread kills the worker with SIGKILL, as RQ's parent used
to kill a horse, and the run is recovered as abandoned.

A worker that dies (SIGKILL, OOM killer, a lost host, a run crashing the interpreter) leaves
its run "started" in RQ's StartedJobRegistry; once that entry has gone unrenewed for
``worker_ttl_seconds`` the run is abandoned. Every worker looks for abandoned runs every
``maintenance_interval_seconds`` (``RESPONDER_MAINTENANCE_INTERVAL_SECONDS``, default 30) and
puts them back at the front of the queue; the run then continues on any worker from its
checkpoints, so completed steps are not repeated (the step that was in flight runs again, as
after a transient failure). So a run interrupted by a dead worker resumes within about
``worker_ttl_seconds + maintenance_interval_seconds``. RQ would instead move an abandoned job
to its failed registry (or, with RQ retries left, schedule it after the first retry interval
and spend a retry); it only gets to see an abandoned job here when the same job was abandoned
more than ``MAX_ABANDONED_REQUEUES`` times, and then the run is recorded as failed
(``responder jobs retry`` queues it again).

A follow job (one poll of a dispatched workflow run, ``responder.following``) abandoned the same
way is put back at the front of the queue too, while the ticket has not been told how the
workflow run ended; the follow lock the dead poll held is released with it, so the poll runs
again at once instead of being turned away as a duplicate. Abandoned more than
``MAX_ABANDONED_REQUEUES`` times, it is left to RQ to fail, and following stops with the reason
recorded on the run record (``jobs show``), counted as abandoned; the ticket is not told.

A worker that cannot reach Redis keeps running: it retries with a backoff of 1 s doubling
up to ``RECONNECT_MAX_SECONDS``, logging each attempt, and carries on where it was (a run
in flight keeps running; missed renewals are logged). If RQ gives up on Redis anyway,
the same process starts a fresh RQ worker once Redis answers again. After this worker
itself lost Redis it judges no other worker dead for ``worker_ttl_seconds``: live workers
get to renew their entries before their runs could be taken for abandoned.

SIGTERM (or SIGINT) is a warm shutdown: the run in flight finishes, then the worker exits 0.
A second signal stops it at once (cold shutdown): the run in flight is interrupted where it
is and put back at the front of the queue for another worker, which resumes it from its
checkpoints (if Redis cannot be reached for that, it is recovered as abandoned instead).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from redis import Redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.utils import as_text, current_timestamp, now, parse_composite_key
from rq.worker import WorkerStatus

from responder import following
from responder.errors import RunNotFound
from responder.jobs import install_runtime
from responder.log import get_logger
from responder.queueing import FOLLOW_FUNCTION, JOB_FUNCTION
from responder.redisconn import REDIS_DOWN
from responder.runs import utcnow
from responder.runtime import Runtime
from responder.settings import Settings

if TYPE_CHECKING:
    from redis.client import Pipeline

log = get_logger(__name__)

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
            # RQ sets its loggers to INFO when imported; the setting decides for them too.
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
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


class ColdShutdown(SystemExit):
    """Raised in the main thread by a second SIGTERM/SIGINT while a run is in flight."""


class ResponderWorker(SimpleWorker):
    """RQ's in-process worker with responder's liveness settings, a renewal thread while a run is
    in flight, abandoned-run re-queueing and tolerance of Redis outages."""

    max_connection_wait_time = RECONNECT_MAX_SECONDS  # RQ's own backoff while dequeueing
    HEARTBEAT_MIN_INTERVAL = 1.0  # seconds: RQ's idle-loop heartbeats closer together than this are skipped

    def __init__(self, queues: Sequence[str], *, runtime: Runtime, outages: Outages) -> None:
        settings = runtime.settings
        ttl = settings.worker_ttl_seconds
        super().__init__(
            queues,
            connection=runtime.redis,
            worker_ttl=ttl,
            job_monitoring_interval=max(1, ttl // 4),
            maintenance_interval=settings.maintenance_interval_seconds,
        )
        self.runtime = runtime
        self.runs = runtime.runs
        self.outages = outages
        self.stop_requested = False
        self._starting = False
        self._renewal = RunRenewal(self)
        self._in_flight: tuple[Job, Queue, Execution] | None = None
        self._last_heartbeat_sent = -math.inf
        self._state_unwritten = False  # the state was changed here but not written to Redis yet
        self._prepared: str | None = None  # the job ``_start`` prepared for execution

    # --- running a job

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` here, with its registry entry and this worker's heartbeat renewed meanwhile."""
        execution = self._start(job, queue)
        self._in_flight = (job, queue, execution)
        self._renewal.watch(job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._in_flight = None
            self._stop_renewal()
        # "idle" is written with the next pipelined heartbeat (RQ's suspension check, before the
        # next dequeue), not in a round trip of its own.
        self._state, self._state_unwritten = WorkerStatus.IDLE, True

    def _start(self, job: Job, queue: Queue) -> Execution:
        """RQ's prepare_execution and prepare_job_execution in one round trip: the execution and its
        StartedJobRegistry entry, the worker busy with its heartbeat, the job started."""
        with self.connection.pipeline() as pipe:
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            self.heartbeat(ttl, pipeline=pipe)
            job.heartbeat(now(), ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            pipe.persist(job.key)
            if len(self.queues) == 1:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()
        self._prepared = job.id
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Done by ``_start`` already for the job it started."""
        if self._prepared == job.id:
            self._prepared = None
            return
        super().prepare_job_execution(job, remove_from_intermediate_queue)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """The run returned or raised: stop renewing before RQ records the end (a renewal after
        that would put the finished run back in the started registry)."""
        self._stop_renewal()
        if job.success_callback or job.failure_callback:  # RQ keeps the job alive while they run
            super().handle_execution_ended(job, queue, heartbeat_ttl)
        else:
            job.ended_at = now()

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution, exc_info: Any) -> None:
        if isinstance(exc_info[1], ColdShutdown):  # not a failure of the run: hand it to another worker
            self._stop_renewal()
            self._requeue_interrupted(queue, job, execution)
            raise exc_info[1]
        super()._finalize_failure(job, queue, execution, exc_info)

    def _stop_renewal(self) -> None:
        self._renewal.release()

    def _requeue_interrupted(self, queue: Queue, job: Job, execution: Execution) -> None:
        reason = f"worker {self.name} was stopped while running it"
        try:
            self._requeue_abandoned(queue, execution.composite_key, reason=reason, execution=execution)
        except Exception as exc:  # it stays in the started registry: recovered as abandoned
            log.warning("run.requeue_on_stop_failed", job_id=job.id, error=_one_line(exc))

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
        """RQ's heartbeat, in one round trip; its default one (``worker_ttl + 60``) is skipped when one
        was sent less than HEARTBEAT_MIN_INTERVAL ago (RQ sends three per run between two runs). Every
        heartbeat leaves the worker key at least ``worker_ttl`` to live, which outlasts the longest
        wait for a job (``dequeue_timeout`` <= ``worker_ttl - 15``) by far, so a skipped one is never missed."""
        sent = time.monotonic()
        if pipeline is not None and self._state_unwritten:
            self.set_state(self._state, pipeline)
        if timeout is None and sent - self._last_heartbeat_sent < self.HEARTBEAT_MIN_INTERVAL:
            return
        try:
            if pipeline is not None:
                super().heartbeat(timeout, pipeline)
            else:
                with self.connection.pipeline(transaction=False) as pipe:
                    super().heartbeat(timeout, pipe)
                    pipe.execute()
        except REDIS_DOWN:
            self.outages.seen()
            raise
        self._last_heartbeat_sent = sent

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ's, without the round trip when the state is already the one this worker last wrote."""
        if pipeline is None and state == self._state and not self._state_unwritten:
            return
        self._state_unwritten = False
        super().set_state(state, pipeline)

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

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Second signal: stop at once. A run in flight is interrupted (ColdShutdown unwinds it) and
        re-queued for another worker, as a killed worker's run would be, only sooner."""
        if self._in_flight is None:
            super().request_force_stop(signum, frame)
            return
        requested = self._shutdown_requested_date
        if requested is not None and now() - requested < timedelta(seconds=1):  # RQ: a duplicate signal
            return
        log.warning("worker.cold_shutdown", job_id=self._in_flight[0].id)
        raise ColdShutdown()

    def teardown(self) -> None:
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        finally:
            self._renewal.close()

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
                job_id = self._requeue_abandoned(queue, as_text(entry))
            except REDIS_DOWN:
                raise
            except Exception:  # one unreadable job must not stop the others from being re-queued
                log.exception("run.requeue_failed", entry=as_text(entry))
                continue
            if job_id is not None:
                requeued.append(job_id)
        return requeued

    def _requeue_abandoned(
        self, queue: Queue, composite: str, *, reason: str | None = None, execution: Execution | None = None
    ) -> str | None:
        """Re-queue the job of one StartedJobRegistry entry (``<job id>:<execution id>``), if it is ours:
        expired (its worker died; ``reason`` None), or interrupted by this worker's cold shutdown
        (``reason`` says so; its ``execution`` is deleted with it)."""
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


class RunRenewal:
    """While a run is in flight in the worker's process: renew its StartedJobRegistry entry and the
    worker's heartbeat every ``job_monitoring_interval`` (``worker_ttl / 4``), from one thread per
    worker that sleeps while no run is in flight.

    A renewal that fails (Redis down) is logged by the worker and tried again at the next tick. A run
    still going ``timeout + OVERRUN_GRACE`` seconds after it started (RQ's SIGALRM did not stop it)
    gets the worker killed, as RQ's parent would kill a work horse; the run is then recovered as abandoned.
    """

    OVERRUN_GRACE = 60.0

    def __init__(self, worker: ResponderWorker, *, kill: Callable[[], object] | None = None) -> None:
        self._worker = worker
        self._kill = kill or _kill_this_process
        self._cond = threading.Condition()  # held while renewing: release() waits for a renewal in progress
        self._run: _Watched | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, job: Job, execution: Execution) -> None:
        """Start renewing ``job``'s entry (the first renewal is one interval from now)."""
        interval = float(self._worker.job_monitoring_interval)
        started = time.monotonic()
        deadline = started + job.timeout + self.OVERRUN_GRACE if job.timeout and job.timeout > 0 else math.inf
        with self._cond:
            self._closed = False
            self._run = _Watched(job, execution, interval, started + interval, deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="run-renewal", daemon=True)
                self._thread.start()
            self._cond.notify()

    def release(self) -> None:
        """Stop renewing; no renewal starts after this returns (one in progress is waited for)."""
        with self._cond:
            self._run = None

    def close(self) -> None:
        """End the thread (the worker is done)."""
        with self._cond:
            self._run, self._closed = None, True
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                run = self._run
                if run is None:
                    self._cond.wait()
                    continue
                now_ = time.monotonic()
                if now_ > run.deadline:
                    log.error("run.overran_timeout", job_id=run.job.id, timeout=run.job.timeout)
                    self._run = None
                    self._kill()
                    continue
                if now_ < run.due:
                    self._cond.wait(min(run.due, run.deadline) - now_ + 0.001)
                    continue
                try:
                    self._worker.maintain_heartbeats(run.job, run.execution)
                except Exception as exc:  # keep renewing whatever happened: a silent stop would abandon the run
                    log.error("worker.renewal_failed", job_id=run.job.id, error=_one_line(exc))
                run.due = time.monotonic() + run.interval


@dataclass
class _Watched:
    job: Job
    execution: Execution
    interval: float
    due: float
    deadline: float


def _kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


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
    """Stop what an RQ worker leaves behind when it quits with Redis gone: its pubsub thread."""
    thread = worker.pubsub_thread
    if thread is not None and thread.is_alive():
        thread.stop()
        thread.join(timeout=5)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
