"""The RQ worker of ``responder worker`` (``ResponderWorker``), and what it overrides in RQ (``RQ_OVERRIDES``).

Runs are executed in this process, one after the other (RQ's SimpleWorker pattern): no work horse
is forked per run. A fork per run cost more CPU than the run itself (copying the page tables, then
copy-on-write faults as the horse touched its inherited objects; bench/ has the figures) and threw
away every warm connection: the horse's GitHub
and Redis connections died with it. In-process, the runtime's GitHub session keeps its connections
alive across runs. The price is isolation: a run that crashes the interpreter takes the worker down
with it, and the run is then recovered like the run of any dead worker (``responder.worker_recovery``).
There is no setting to fork again: nothing a playbook runs needs the isolation (pure-Python clients,
each run's state is its run record), and every liveness guarantee holds without it: the renewal
thread (``responder.worker_renewal``) keeps a run in flight alive, as RQ's parent process did.

SIGTERM (or SIGINT) is a warm shutdown: the run in flight finishes, then the worker stops. A second
signal stops it at once (cold shutdown): the run in flight is interrupted where it is and put back
at the front of the queue for another worker, which resumes it from its checkpoints (if Redis cannot
be reached for that, it is recovered as abandoned instead).

RQ offers constructor arguments, class attributes and methods meant for subclasses (``execute_job``,
``handle_warm_shutdown_request``); responder uses them where they exist. Everything
``ResponderWorker`` overrides in RQ is listed in ``RQ_OVERRIDES`` with the reason, whether RQ marks it
private, the RQ state it touches directly and the RQ code it copies or relies on;
tests/test_rq_contract.py fails when RQ changes any of that.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.utils import now
from rq.worker import WorkerStatus

from responder.log import get_logger
from responder.runtime import Runtime
from responder.store.redisconn import REDIS_DOWN
from responder.text import one_line
from responder.worker_outages import RECONNECT_MAX_SECONDS, Outages
from responder.worker_recovery import AbandonedJobs
from responder.worker_renewal import RunRenewal

if TYPE_CHECKING:
    from redis.client import Pipeline

log = get_logger(__name__)


@dataclass(frozen=True)
class Override:
    """Why ``ResponderWorker`` overrides one RQ method or attribute."""

    why: str
    private: bool = False  # RQ's name has a leading underscore: RQ internals, not meant to be overridden
    internals: tuple[str, ...] = ()  # RQ worker attributes it reads or writes itself, not through RQ's methods
    depends_on: tuple[str, ...] = ()  # RQ code it copies, or whose order of calls it relies on


_BASE = "rq.worker.BaseWorker."

RQ_OVERRIDES: dict[str, Override] = {
    "__init__": Override(
        "RQ's constructor arguments set the liveness settings (worker_ttl, job_monitoring_interval = "
        "worker_ttl / 4, maintenance_interval); the override only adds the runtime and the outage clock."
    ),
    "max_connection_wait_time": Override(
        "Class attribute: RQ's backoff cap while dequeueing fails on Redis errors (60 s), made "
        "RECONNECT_MAX_SECONDS like the process loop's own."
    ),
    "execute_job": Override(
        "RQ's hook for how a worker runs a job (BaseWorker leaves it to subclasses): SimpleWorker's, with "
        "the renewal thread around perform_job and RQ's prepare_execution and prepare_job_execution "
        "merged into one round trip (_start), whose code it copies.",
        internals=("executions", "_state"),
        depends_on=(
            "rq.worker.SimpleWorker.execute_job",
            "rq.executions.prepare_execution",
            _BASE + "prepare_job_execution",
        ),
    ),
    "prepare_job_execution": Override(
        "perform_job calls it first: a no-op for the job _start prepared (RQ's would pay a second round trip).",
        depends_on=(_BASE + "perform_job",),
    ),
    "handle_execution_ended": Override(
        "RQ calls it before recording a run's end: the renewal stops here, so no late renewal puts a finished "
        "run back in the started registry. The job's heartbeat (a round trip) only when a callback runs.",
        depends_on=(_BASE + "handle_execution_ended", _BASE + "_finalize_success", _BASE + "_finalize_failure"),
    ),
    "_finalize_failure": Override(
        "The one place between a run raising and RQ recording the failure: a cold shutdown (ColdShutdown) is "
        "no failure, the run is re-queued for another worker. RQ's exception handlers (its public hook) run "
        "only after RQ logged the error and ran the failure callback, and cannot stop the failure being recorded.",
        private=True,
        depends_on=(_BASE + "perform_job", _BASE + "_finalize_failure"),
    ),
    "dequeue_timeout": Override(
        "Property: RQ's (worker_ttl - 15, copied) capped at the maintenance interval: an idle worker only "
        "runs maintenance between two waits for a job.",
        depends_on=(_BASE + "dequeue_timeout",),
    ),
    "get_heartbeat_ttl": Override(
        "SimpleWorker's gives a run job_timeout + 60 s before it counts as abandoned; responder's is "
        "worker_ttl, so the run of a dead worker resumes within worker_ttl + maintenance interval."
    ),
    "heartbeat": Override(
        "One round trip (a pipeline) instead of RQ's three; RQ's default heartbeat skipped when one went "
        "out less than HEARTBEAT_MIN_INTERVAL ago; a pending state written with it; an outage noted.",
        internals=("_state",),
        depends_on=(_BASE + "heartbeat",),
    ),
    "set_state": Override(
        "No round trip when the state is the one this worker last wrote (RQ writes it every loop).",
        internals=("_state",),
        depends_on=(_BASE + "set_state",),
    ),
    "maintain_heartbeats": Override(
        "Called by the renewal thread: a Redis error is logged and the run goes on (RQ's raises)."
    ),
    "bootstrap": Override(
        "RQ installs its signal handlers only after starting the scheduler process; a SIGTERM before that "
        "would kill this process and orphan the scheduler. Handlers of ours catch it until RQ's replace them.",
        internals=("_stop_requested",),
        depends_on=(_BASE + "work",),
    ),
    "handle_warm_shutdown_request": Override(
        "RQ's hook in its warm shutdown (request_stop; HerokuWorker overrides it too): remembers the stop "
        "for the process loop, which then starts no fresh worker.",
        depends_on=(_BASE + "request_stop",),
    ),
    "request_force_stop": Override(
        "Second signal with a run in flight: ColdShutdown unwinds the run, which is re-queued at once "
        "(RQ's raises SystemExit: the run would wait to be found abandoned). RQ's duplicate-signal check is copied.",
        internals=("_shutdown_requested_date",),
        depends_on=(_BASE + "request_force_stop",),
    ),
    "teardown": Override("Also ends the renewal thread."),
    "set_shutdown_requested_date": Override(
        "Only shown by `rq info`: a Redis error must not stop the warm shutdown."
    ),
    "clean_registries": Override(
        "Re-queues abandoned runs and polls before RQ's cleanup fails what is left; skipped for worker_ttl "
        "after this worker lost Redis. Takes the queue's maintenance lock itself, then RQ's takes it again.",
        internals=("last_cleaned_at",),
        depends_on=(_BASE + "clean_registries",),
    ),
}


class ColdShutdown(SystemExit):
    """Raised in the main thread by a second SIGTERM/SIGINT while a run is in flight."""


class ResponderWorker(SimpleWorker):
    """RQ's in-process worker with responder's liveness settings, a renewal thread while a run is in
    flight (``RunRenewal``), abandoned-run re-queueing (``AbandonedJobs``) and tolerance of Redis
    outages. What it overrides in RQ, and why: ``RQ_OVERRIDES``."""

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
        self._recovery = AbandonedJobs(runtime, self.connection)
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
            self._renewal.release()
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
        self._renewal.release()
        if job.success_callback or job.failure_callback:  # RQ keeps the job alive while they run
            super().handle_execution_ended(job, queue, heartbeat_ttl)
        else:
            job.ended_at = now()

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution, exc_info: Any) -> None:
        if isinstance(exc_info[1], ColdShutdown):  # not a failure of the run: hand it to another worker
            self._renewal.release()
            self._recovery.requeue_interrupted(queue, job, execution, worker_name=self.name)
            raise exc_info[1]
        super()._finalize_failure(job, queue, execution, exc_info)

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
            log.warning("worker.heartbeat_failed", job_id=job.id, error=one_line(exc, 200))

    # --- shutdown

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """RQ installs its signal handlers only after starting the scheduler process: a SIGTERM
        before that would kill this process and orphan the scheduler. Catch it from here on."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop_while_starting)
        super().bootstrap(*args, **kwargs)

    def _stop_while_starting(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT before RQ's handlers are in: RQ's loop stops before taking a job, cleanly."""
        self.stop_requested = True
        self._stop_requested = True

    def handle_warm_shutdown_request(self) -> None:
        """Called by RQ's ``request_stop`` (first SIGTERM/SIGINT): the process loop is to stop too."""
        self.stop_requested = True
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]

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
        """Put jobs whose worker stopped renewing them back at the front of ``queue`` (``AbandonedJobs``);
        returns their job ids. Call it holding the queue's maintenance lock."""
        return self._recovery.requeue_all(queue)
