"""No silent waits: `run` and `jobs retry` say when no worker listens on the queue, and a wait
shows on stderr what happens to the run while stdout keeps the id and the final record."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from responder.alerts import Alert
from responder.intake import Intake
from responder.playbooks.catalog import Catalog
from responder.runs import RunRecord, RunStore, StepRecord
from responder.store.queueing import listening_workers
from responder.waiting import Progress
from tests.conftest import make_settings, run_cli, started_worker, tail, wait_until

QUEUE = "responder-test"  # cli_env's queue
NO_WORKER = f"responder: no worker is listening on queue {QUEUE!r}; start one with 'responder worker'"


class Command:
    """A `responder` process whose stderr is read line by line while it runs."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "responder.cli", *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = 30) -> str | None:
        """The next stderr line (None: stderr closed)."""
        return self._lines.get(timeout=timeout)

    def finish(self, timeout: float = 90) -> tuple[int, str, list[str]]:
        """Exit code, stdout and the stderr lines not read yet."""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        rest = []
        while (line := self._lines.get_nowait()) is not None:
            rest.append(line)
        return code, stdout, rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def responder_cli(env: dict[str, str], *args: str) -> Iterator[Command]:
    command = Command(env, *args)
    try:
        yield command
    finally:
        command.kill()


def wait_for_worker(redis: Redis, logs: tuple[Path, ...] = ()) -> None:
    wait_until(lambda: listening_workers(redis, QUEUE) > 0, f"a worker on queue {QUEUE!r}", logs=logs)


def test_wait_without_a_worker_says_so_at_once(cli_env):
    """`run --wait` with no worker says so on stderr as the wait begins, not when it ends."""
    with responder_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit",
                       "--wait", "--timeout", "120") as command:
        first = command.next_line(timeout=60)  # queue.Empty: nothing said in the first half of the wait
        waiting = command.proc.poll() is None
    assert f"{NO_WORKER} (waiting up to 120s)" == first
    assert waiting


def test_wait_without_a_worker_times_out_with_one_line(cli_env):
    """`run --wait` that times out with no worker exits 1; its last line says the run is queued and no
    worker listened, after the no-worker line that opened the wait."""
    with responder_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit",
                       "--wait", "--timeout", "3") as command:
        code, stdout, lines = command.finish()
    job_id = stdout.strip()
    assert 1 == code
    assert [
        f"{NO_WORKER} (waiting up to 3s)",
        f"responder: error: run {job_id} is still queued after 3s: no worker listened on queue {QUEUE!r} "
        f"(start one with 'responder worker'); follow it with: responder jobs show {job_id}",
    ] == lines


def test_run_without_wait_and_without_a_worker_warns(cli_env):
    """`run` with no worker warns on stderr; stdout is only the job id."""
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit")
    [job_id] = result.stdout.split()
    assert 0 == result.returncode
    assert job_id.startswith("manual-")
    assert [f"{NO_WORKER} (the run stays queued until one does)"] == result.stderr.splitlines()


def test_run_with_a_worker_listening_does_not_warn(cli_env, worker_process, redis, tmp_path):
    """`run` with a worker on the queue says nothing on stderr."""
    wait_for_worker(redis, logs=(tmp_path / "worker.log",))
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit")
    assert 0 == result.returncode
    assert "" == result.stderr


def test_a_worker_that_died_without_unregistering_is_not_counted(cli_env, redis, tmp_path):
    """A SIGKILLed worker stays in RQ's queue set; once its key expired, `run` warns again."""
    with started_worker(cli_env, tmp_path / "worker.log") as proc:
        wait_for_worker(redis, logs=(tmp_path / "worker.log",))
        [key] = redis.smembers(f"rq:workers:{QUEUE}")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert {key} == redis.smembers(f"rq:workers:{QUEUE}")  # nothing cleaned up after the dead worker
    redis.delete(key)  # what its TTL does worker_ttl + 60 s after its last heartbeat
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit")
    assert NO_WORKER in result.stderr


def test_a_worker_started_during_the_wait_takes_the_run(cli_env, redis, tmp_path):
    """A worker started after `run --wait` said there was none takes the run, and the wait succeeds."""
    log = tmp_path / "worker.log"
    with responder_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer",
                       "--wait", "--timeout", "60") as command:
        assert f"{NO_WORKER} (waiting up to 60s)" == command.next_line()
        with started_worker(cli_env, log):
            code, stdout, rest = command.finish()
    assert 0 == code, "\n".join(rest) + "\n" + tail(log)
    job_id, headline = stdout.splitlines()[:2]
    assert f"run {job_id}: SUCCEEDED" == headline


def test_wait_progress_names_each_step_on_stderr(cli_env, worker_process, redis, tmp_path):
    """While `run --wait` waits, each finished step is a line on stderr; stdout has the id and the record only."""
    wait_for_worker(redis, logs=(tmp_path / "worker.log",))
    result = run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer", "--wait")
    assert 0 == result.returncode, result.stderr
    steps = [line for line in result.stderr.splitlines() if line.startswith("  running: ")]
    assert ["  running: dispatch-retraining ok", "  running: open-incident ok"] == steps
    job_id, headline = result.stdout.splitlines()[:2]
    assert f"run {job_id}: SUCCEEDED" == headline
    assert [] == [line for line in result.stdout.splitlines() if line.startswith("  running: ")]


def failed_run(redis: Redis, redis_url: str, catalog: Catalog) -> str:
    """A run recorded as failed (never queued), as `jobs retry` finds one."""
    settings = make_settings(redis_url)
    alert = Alert(status="firing", labels={"alertname": "model_bias_alert", "model_id": "credit-limit"},
                  startsAt=datetime.now(UTC), fingerprint="0123456789abcdef")
    record = Intake(redis, settings, catalog).enqueue_manual("model_bias_alert", alert, dry_run=True, queue=False)
    record.status, record.error = "failed", "failed steps: open-incident"
    RunStore(redis, retention_seconds=settings.dedup_retention_seconds).save(record)
    return record.id


def test_jobs_retry_wait_without_a_worker_says_so(cli_env, redis, redis_url, catalog):
    """`jobs retry --wait` with no worker says so first, then times out with exit 1."""
    job_id = failed_run(redis, redis_url, catalog)
    result = run_cli(cli_env, "jobs", "retry", job_id, "--wait", "--timeout", "2")
    lines = result.stderr.splitlines()
    assert 1 == result.returncode
    assert f"{NO_WORKER} (waiting up to 2s)" == lines[0]
    assert lines[-1].startswith(f"responder: error: run {job_id} is still queued after 2s: no worker listened")


# --- what a wait says, observation by observation (no processes)


def queued_run() -> RunRecord:
    alert = Alert(status="firing", labels={"alertname": "a"}, startsAt=datetime.now(UTC), fingerprint="f")
    return RunRecord(id="r1", playbook="p", alert=alert)


REMINDERS = [[], ["  still queued after 10s; no worker on queue 'q'"], [],
             ["  still queued after 20s; no worker on queue 'q'"]]


@pytest.mark.parametrize(("terminal", "expected"), [(True, REMINDERS), (False, [[], [], [], []])])
def test_a_terminal_is_reminded_that_the_run_is_still_queued(terminal, expected):
    """On a terminal a run queued with no worker gets a reminder every 10 s; a pipe only gets news."""
    record = queued_run()
    progress = Progress("q", record, timeout=300, now=0.0, remind=terminal)
    assert [
        "responder: no worker is listening on queue 'q'; start one with 'responder worker' (waiting up to 300s)"
    ] == progress.observe(record, 0, 0.0)
    assert expected == [progress.observe(record, 0, t) for t in (5.0, 10.0, 15.0, 20.0)]


def test_each_change_is_one_line():
    """A worker appearing, the run starting and each step finishing are one line each, said once."""
    record = queued_run()
    progress = Progress("q", record, timeout=300, now=0.0, remind=False)
    progress.observe(record, 0, 0.0)
    assert ["  a worker is listening on queue 'q' now"] == progress.observe(record, 1, 1.0)
    record.status = "running"
    assert ["  running"] == progress.observe(record, None, 1.2)
    record.put_step(StepRecord(name="freeze-deploys", kind="set_variable", status="ok", ended_at=datetime.now(UTC)))
    assert ["  running: freeze-deploys ok"] == progress.observe(record, None, 1.4)
    assert [] == progress.observe(record, None, 1.6)


def test_a_step_that_found_a_problem_reads_as_a_finding_in_the_progress():
    """A check step's progress line shows its finding, not ok."""
    record = queued_run()
    progress = Progress("q", record, timeout=300, now=0.0, remind=False)
    step = StepRecord(name="verify-digest", kind="verify_manifest_digest", status="ok", finding="mismatch",
                      ended_at=datetime.now(UTC))
    record.put_step(step)
    assert ["  running: verify-digest FINDING: mismatch"] == progress.observe(record, None, 1.0)


@pytest.mark.parametrize(("workers", "status", "why"), [
    ([0], "queued", "no worker listened on queue 'q' (start one with 'responder worker')"),
    ([0, 2], "queued", "2 workers on queue 'q' did not take it yet (busy with earlier runs?)"),
    ([1, 0], "queued", "no worker is listening on queue 'q' now (one was earlier)"),
    ([0], "running", "a worker is running it"),
])
def test_a_timed_out_wait_says_where_the_run_is_and_whether_a_worker_was_seen(workers, status, why):
    """The timeout line names the run's status and what the wait saw of workers."""
    record = queued_run()
    progress = Progress("q", record, timeout=300, now=0.0, remind=False)
    for seen in workers:
        progress.observe(record, seen, 0.0)
    record.status = status
    progress.observe(record, None, 300.0)
    expected = f"run r1 is still {status} after 300s: {why}; follow it with: responder jobs show r1"
    assert expected == progress.timed_out(record)
