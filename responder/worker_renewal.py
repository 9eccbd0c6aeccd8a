"""The renewal thread of a worker that runs its jobs in its own process (``RunRenewal``).

While a run is in flight the worker's renewal thread does what RQ's parent process did while it
waited for its horse: every quarter of ``worker_ttl_seconds`` (``RESPONDER_WORKER_TTL_SECONDS``,
default 60) it renews the run's StartedJobRegistry entry and the worker's heartbeat in one
pipeline. A renewal that cannot reach Redis is logged and tried again at the next tick; the run
keeps going. The renewal stops before RQ records the run's end, so a late renewal can never put a
finished run back in the registry. The job timeout (``RESPONDER_JOB_TIMEOUT_SECONDS``) is enforced
by RQ's SIGALRM death penalty in the worker's process; should a run still be going
``job_timeout + 60`` seconds after it started (something swallowed the timeout), the renewal
thread kills the worker with SIGKILL, as RQ's parent used to kill a horse, and the run is
recovered as abandoned (``responder.worker_recovery``).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rq.executions import Execution
from rq.job import Job

from responder.log import get_logger
from responder.text import one_line

if TYPE_CHECKING:
    from responder.worker_rq import ResponderWorker

log = get_logger(__name__)


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
                    log.error("worker.renewal_failed", job_id=run.job.id, error=one_line(exc, 200))
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
