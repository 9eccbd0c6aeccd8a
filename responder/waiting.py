"""Waiting for a run from the command line (``run --wait``, ``jobs retry --wait``).

A wait never passes in silence. It says at once when no worker is listening on the run's queue
(the run stays queued until one starts), then reports on stderr what changes while it waits:
the run's status, each step as it finishes, a worker appearing or going away. stdout keeps
only the job id and the final record. On a terminal a run still queued gets a reminder after
``REMIND_AFTER`` seconds without news; a pipe or a log file gets one line per change, no more.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TextIO

from redis import Redis

from responder.errors import WaitTimedOut
from responder.runs import RunRecord, RunStore, StepRecord
from responder.store.queueing import listening_workers
from responder.text import one_line

ENDED = ("succeeded", "failed", "expired")
POLL_SECONDS = 0.2  # between two reads of the run record
LOOK_EVERY = 1.0  # between two looks at the queue's workers while the run is queued
REMIND_AFTER = 10.0  # seconds without news before a terminal is reminded that the run is still queued


def no_worker(queue: str, *, waiting: float | None = None) -> str:
    """The line that says so, for a wait of ``waiting`` seconds or for a run left queued."""
    then = f"waiting up to {waiting:g}s" if waiting is not None else "the run stays queued until one does"
    return f"responder: no worker is listening on queue {queue!r}; start one with 'responder worker' ({then})"


def warn_without_worker(redis: Redis, queue: str, *, err: TextIO) -> None:
    """A run queued without --wait: say so when no worker listens to take it."""
    if listening_workers(redis, queue) == 0:
        print(no_worker(queue), file=err)


class Progress:
    """What a wait has said so far: each observation of the run returns the lines that are news."""

    def __init__(self, queue: str, record: RunRecord, *, timeout: float, now: float, remind: bool) -> None:
        self.queue = queue
        self.timeout = timeout
        self.remind = remind
        self.status = record.status
        self.workers: int | None = None  # at the last look; None before the first
        self.worker_seen = record.status != "queued"
        self._steps = {_step_key(s) for s in record.steps}  # finished before the wait began: not news
        self._queued_since = self._said_at = now

    def observe(self, record: RunRecord, workers: int | None, now: float) -> list[str]:
        """The lines ``record`` is news for; ``workers`` is how many listen on the queue, or None
        when they were not looked at this time."""
        lines = [_step_line(step) for step in record.steps if _step_key(step) not in self._steps]
        self._steps.update(_step_key(step) for step in record.steps)
        if record.status != self.status:
            if record.status == "queued":
                self._queued_since = now
            if record.status not in ENDED:  # the record on stdout says how it ended
                lines.append(f"  {record.status}" + (f": {one_line(record.error, 200)}" if record.error else ""))
            self.status = record.status
        if record.status != "queued":
            self.worker_seen = True
        if workers is not None:
            lines += self._workers_news(workers)
            self.worker_seen = self.worker_seen or workers > 0
            self.workers = workers
        if lines:
            self._said_at = now
        elif self.remind and record.status == "queued" and now - self._said_at >= REMIND_AFTER:
            self._said_at = now
            lines.append(f"  still queued after {now - self._queued_since:.0f}s; {self._workers_text()}")
        return lines

    def _workers_news(self, workers: int) -> list[str]:
        if workers == 0 and self.workers is None:
            return [no_worker(self.queue, waiting=self.timeout)]
        if workers > 0 and self.workers == 0:
            return [f"  a worker is listening on queue {self.queue!r} now"]
        if workers == 0 and self.workers:
            return [f"  no worker is listening on queue {self.queue!r} any more"]
        return []

    def _workers_text(self) -> str:
        if not self.workers:
            return f"no worker on queue {self.queue!r}"
        return f"{self.workers} worker{'s' if self.workers > 1 else ''} on queue {self.queue!r}"

    def timed_out(self, record: RunRecord) -> str:
        """One line for a wait that ended before the run did: where the run is, and why."""
        if record.status == "running":
            why = "a worker is running it"
        elif record.status == "retrying":
            why = "it is waiting for its next attempt"
        elif not self.worker_seen:
            why = f"no worker listened on queue {self.queue!r} (start one with 'responder worker')"
        elif not self.workers:
            why = f"no worker is listening on queue {self.queue!r} now (one was earlier)"
        else:
            why = f"{self._workers_text()} did not take it yet (busy with earlier runs?)"
        return (
            f"run {record.id} is still {record.status} after {self.timeout:g}s: {why}; "
            f"follow it with: responder jobs show {record.id}"
        )


class RunWait:
    """Polls a run until it ends or ``timeout`` seconds pass, telling ``err`` what changes."""

    def __init__(self, runs: RunStore, redis: Redis, queue: str, *, timeout: float, err: TextIO) -> None:
        self._runs, self._redis, self._queue = runs, redis, queue
        self._timeout, self._err = timeout, err

    def follow(self, job_id: str) -> RunRecord:
        """The run's record once it ended; WaitTimedOut if it did not within the timeout."""
        started = time.monotonic()
        deadline, look_at = started + self._timeout, started
        record = self._runs.get(job_id)
        progress = Progress(self._queue, record, timeout=self._timeout, now=started, remind=self._err.isatty())
        while True:
            now = time.monotonic()
            workers = None
            if record.status == "queued" and now >= look_at:
                workers, look_at = listening_workers(self._redis, self._queue), now + LOOK_EVERY
            for line in progress.observe(record, workers, now):
                print(line, file=self._err, flush=True)
            if record.status in ENDED:
                return record
            if now > deadline:
                raise WaitTimedOut(progress.timed_out(record))
            time.sleep(POLL_SECONDS)
            record = self._runs.get(job_id)


def _step_key(step: StepRecord) -> tuple[str, datetime | None]:
    return step.name, step.ended_at  # a step run again (a retry) is recorded anew, with a later end


def _step_line(step: StepRecord) -> str:
    """A finished step, as ``  running: freeze-deploys ok`` (a check's finding instead of ok)."""
    error = f": {one_line(step.error, 200)}" if step.error else ""
    shown = f"FINDING: {step.finding}" if step.finding else step.status
    return f"  running: {step.name} {shown}{error}"


