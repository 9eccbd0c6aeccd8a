"""`responder worker`: an RQ worker on the configured queue, with the project's runtime.

This module holds the process loop (``run_worker``): the runtime (clients built once from the
settings) is installed before work starts, then an RQ worker works the queue, and a fresh one
takes over in the same process should RQ give up. The worker itself is spread over:

- ``responder.worker_rq``: ``ResponderWorker``, RQ's in-process worker as responder runs it
  (runs executed in this process, warm and cold shutdown), and ``RQ_OVERRIDES``, everything it
  overrides in RQ and why;
- ``responder.worker_renewal``: ``RunRenewal``, the thread that renews a run in flight;
- ``responder.worker_recovery``: ``AbandonedJobs``, re-queueing runs and follow polls whose worker
  died (``MAX_ABANDONED_REQUEUES``);
- ``responder.worker_outages``: ``Outages``, when this process last failed to reach Redis.

The names tests and other modules use are importable from here too.

A worker that cannot reach Redis keeps running: it retries with a backoff of 1 s doubling
up to ``RECONNECT_MAX_SECONDS``, logging each attempt, and carries on where it was (a run
in flight keeps running; missed renewals are logged). If RQ gives up on Redis anyway,
the same process starts a fresh RQ worker once Redis answers again. After this worker
itself lost Redis it judges no other worker dead for ``worker_ttl_seconds``: live workers
get to renew their entries before their runs could be taken for abandoned.

SIGTERM (or SIGINT) is a warm shutdown: the run in flight finishes, then the worker exits 0.
A second signal stops it at once (cold shutdown; the run in flight is handed to another worker).
Between two RQ workers (``StopSignal``) a signal stops the process without starting another.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from redis import Redis

from responder.jobs import install_runtime
from responder.log import get_logger
from responder.runtime import Runtime
from responder.settings import Settings
from responder.store.redisconn import REDIS_DOWN
from responder.text import one_line
from responder.worker_outages import RECONNECT_MAX_SECONDS, Outages
from responder.worker_recovery import ABANDONED_META, MAX_ABANDONED_REQUEUES, AbandonedJobs
from responder.worker_renewal import RunRenewal
from responder.worker_rq import RQ_OVERRIDES, ColdShutdown, ResponderWorker

__all__ = [
    "ABANDONED_META",
    "MAX_ABANDONED_REQUEUES",
    "RECONNECT_MAX_SECONDS",
    "RQ_OVERRIDES",
    "STABLE_SECONDS",
    "AbandonedJobs",
    "ColdShutdown",
    "Outages",
    "ResponderWorker",
    "RunRenewal",
    "StopSignal",
    "run_worker",
    "wait_for_redis",
]

log = get_logger(__name__)

STABLE_SECONDS = 60.0  # an RQ worker that ran this long resets the restart backoff


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
            log.warning("worker.redis_lost", error=one_line(exc, 200))
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
            log.warning("worker.redis_unavailable", error=one_line(exc, 200), retry_in_seconds=delay)
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
