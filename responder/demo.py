"""``responder demo``: the main job, end to end, on a Redis of its own.

Starts, in a temporary directory, a redis-server on a free port (127.0.0.1, nothing
persisted), a receiver and a worker in dry-run (no credentials needed: the manifest comes
from the bundled sample), posts the bundled sample Alertmanager notifications, waits for every
run they queued and prints each run's record. The user's own Redis is never touched: the
children get none of the user's ``RESPONDER_*`` variables (their Redis, tokens, trackers),
only the playbooks directory of the settings.

Without ``--keep``, everything the demo started is stopped at the end, on errors and on
Ctrl-C too; its Redis goes, and with it every run and anything still queued. The temporary
directory goes as well unless something failed (then its logs are kept and named). With
``--keep`` the three processes are left running in sessions of their own, and the demo prints
the runs page with its password, the Redis URL for the CLI, the logs and the ``kill`` command
that stops them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from pydantic import TypeAdapter
from redis import Redis
from redis.exceptions import RedisError

from responder import output
from responder.errors import ConfigError, DemoFailed
from responder.runs import RunRecord, RunStore
from responder.settings import ENV_PREFIX, Settings

SAMPLES = Path(__file__).parent / "samples"
# Posted in this order; the last two repeat instances already sent, to show dedup.
SEQUENCE = [
    "integrity-firing.json",
    "bias-firing.json",
    "drift-two-segments-firing.json",
    "drift-one-resolved-one-firing.json",
    "integrity-firing.json",
]
START_TIMEOUT_SECONDS = 20.0  # for Redis, then the receiver, to answer
RUNS_TIMEOUT_SECONDS = 60.0  # for every queued run to finish
STOP_TIMEOUT_SECONDS = 15.0  # for each process to exit after SIGTERM, before SIGKILL
FINISHED = ("succeeded", "failed")


@dataclass
class Stack:
    """The processes the demo started, each in a session of its own, with logs in ``workdir``."""

    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only the demo, which stops the children in
        # order, and with --keep they outlive it.
        with self.log(name).open("wb") as log_file:
            proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def exited(self) -> str | None:
        """The name of a process that has exited, if one has."""
        return next((name for name, proc in self.procs.items() if proc.poll() is not None), None)

    def stop(self) -> None:
        """Receiver and worker first (the worker finishes a run in flight, which needs Redis),
        then Redis; whatever is left after that, or after a second Ctrl-C, is killed."""
        try:
            for names in (("receiver", "worker"), ("redis",)):
                group = [self.procs[name] for name in names if name in self.procs]
                for proc in group:
                    if proc.poll() is None:
                        proc.terminate()
                for proc in group:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        finally:
            for proc in self.procs.values():
                # The whole process group: the worker's RQ scheduler is a child of its own.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def discard(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass(frozen=True)
class Endpoints:
    """Where the demo's processes answer."""

    redis_url: str
    base_url: str
    token: str


def run_demo(settings: Settings, *, port: int | None = None, keep: bool = False) -> int:
    """Run the demo; 0 when every run it queued succeeded. ``port`` is the receiver's (default: a free one)."""
    server = shutil.which("redis-server")
    if server is None:
        raise ConfigError(
            "the demo runs a Redis of its own; redis-server is not installed: apt-get install redis-server"
        )
    receiver_port = _receiver_port(port)
    with _interrupt_on_termination():
        stack = Stack(Path(tempfile.mkdtemp(prefix="responder-demo-")))
        try:
            endpoints = _start(stack, server, settings, receiver_port)
            records = _post_and_wait(stack, endpoints, settings)
            ok = all(r.status == "succeeded" for r in records)
            if keep:
                _print_kept(stack, endpoints, len(records))
                return 0 if ok else 1
            stack.stop()
        except KeyboardInterrupt:
            stack.stop()
            stack.discard()
            print("demo: interrupted; stopped everything it started", file=sys.stderr)
            raise
        except BaseException:
            stack.stop()
            print(f"demo: stopped everything it started; logs kept in {stack.workdir}", file=sys.stderr)
            raise
    if ok:
        stack.discard()
    else:
        print(f"demo: logs kept in {stack.workdir}")
    print(f"demo: the demo's Redis is gone with its {len(records)} runs; run `responder demo --keep` to browse them")
    return 0 if ok else 1


def _start(stack: Stack, server: str, settings: Settings, receiver_port: int) -> Endpoints:
    redis_url = _start_redis(stack, server)
    endpoints = Endpoints(redis_url, f"http://127.0.0.1:{receiver_port}", secrets.token_urlsafe(24))
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env.update(
        RESPONDER_REDIS_URL=redis_url,
        RESPONDER_DRY_RUN="true",
        RESPONDER_WEBHOOK_TOKEN=endpoints.token,
        RESPONDER_PLAYBOOKS_DIR=str(settings.playbooks_dir.resolve()),
        RESPONDER_OFFLINE_MANIFEST_FILE=str(SAMPLES / "model-manifest.json"),
        RESPONDER_LOG_FORMAT="json",
    )
    print(f"demo: dry-run on a Redis of its own ({redis_url}), receiver on {endpoints.base_url}")
    command = [sys.executable, "-m", "responder.cli"]
    stack.spawn("receiver", [*command, "serve", "--port", str(receiver_port)], env)
    stack.spawn("worker", [*command, "worker"], env)
    _wait_ready(stack, endpoints.base_url)
    return endpoints


def _post_and_wait(stack: Stack, endpoints: Endpoints, settings: Settings) -> list[RunRecord]:
    job_ids = _post_samples(endpoints.base_url, endpoints.token)
    with Redis.from_url(endpoints.redis_url) as redis:
        records = _wait_done(stack, RunStore(redis, retention_seconds=settings.dedup_retention_seconds), job_ids)
    for record in records:
        print()
        print(output.run_text(record))
    print()
    unfinished = [r for r in records if r.status not in FINISHED]
    for record in unfinished:
        print(f"demo: run {record.id} is still {record.status} after {RUNS_TIMEOUT_SECONDS:.0f}s")
    counts = {status: sum(r.status == status for r in records) for status in FINISHED}
    summary = f"demo: {len(records)} runs queued: {counts['succeeded']} succeeded, {counts['failed']} failed"
    print(summary + (f", {len(unfinished)} unfinished" if unfinished else ""))
    return records


def _print_kept(stack: Stack, endpoints: Endpoints, runs: int) -> None:
    pid = {name: proc.pid for name, proc in stack.procs.items()}
    print(
        f"demo: left running: receiver (pid {pid['receiver']}), worker (pid {pid['worker']}), "
        f"redis-server (pid {pid['redis']}); logs in {stack.workdir}"
    )
    # Redis last: the worker's warm shutdown still writes to it.
    print(f"demo: stop them with: kill {pid['receiver']} {pid['worker']}; sleep 2; kill {pid['redis']}")
    print(
        f"demo: the runs page asks for a password: {endpoints.token} (any user name), or send "
        f"'Authorization: Bearer {endpoints.token}'"
    )
    print(
        f"demo: see the {runs} runs at {endpoints.base_url}/runs "
        f"or with: RESPONDER_REDIS_URL={endpoints.redis_url} {_cli()} jobs list"
    )


def _cli() -> str:
    """How to call this installation's `responder`: by name when that is the one on PATH, else by
    its path (scripts/demo installs it in .venv/bin, which is not on PATH)."""
    installed = Path(sys.executable).with_name("responder")
    on_path = shutil.which("responder")
    if on_path is not None and Path(on_path).resolve() == installed.resolve():
        return "responder"
    if not installed.exists():
        return "responder"
    with contextlib.suppress(ValueError):
        return str(installed.relative_to(Path.cwd()))
    return str(installed)


def _receiver_port(port: int | None) -> int:
    """``port`` if it is free to listen on, else a one-line error naming --port; None: a free port."""
    if port is None:
        return _free_port()
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port: give 1-65535, or leave --port out to use a free one")
    with socket.socket() as probe:
        # As aiohttp listens: a port only in TIME_WAIT is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(
                f"port {port} cannot be used ({exc.strerror}): give another with --port, or leave --port out"
            ) from None
    return port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_redis(stack: Stack, server: str) -> str:
    """A redis-server of the demo's own on a free port, persisting nothing; its URL."""
    port = _free_port()
    options = {"port": str(port), "bind": "127.0.0.1", "dir": str(stack.workdir), "save": "", "appendonly": "no"}
    proc = stack.spawn("redis", [server, *(arg for name, value in options.items() for arg in (f"--{name}", value))])
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoFailed(f"redis-server exited at start; see {stack.log('redis')}")
        try:
            with Redis.from_url(url, socket_connect_timeout=1) as redis:
                answering = redis.info("server")["process_id"]
        except RedisError:
            time.sleep(0.05)
            continue
        # Someone else's Redis may have taken the port between the probe and the start.
        if answering != proc.pid:
            raise DemoFailed(f"another Redis (pid {answering}) answers on port {port}; run the demo again")
        return url
    raise DemoFailed(f"redis-server did not answer on port {port}; see {stack.log('redis')}")


def _wait_ready(stack: Stack, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if (name := stack.exited()) is not None:
            raise DemoFailed(f"the {name} exited at start; see {stack.log(name)}")
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise DemoFailed(f"the receiver did not become ready; see {stack.log('receiver')}")


def restamped(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shift every startsAt/endsAt by one offset so that the latest of them is now: the samples
    fire (and resolve) just before they are posted, each demo run a new instance, with the
    samples' order and spacing kept and no time in the future."""
    times = [
        _parse(alert[key])
        for payload in payloads
        for alert in payload["alerts"]
        for key in ("startsAt", "endsAt")
        if not _unset(alert[key])
    ]
    offset = datetime.now(UTC) - max(times)
    out: list[dict[str, Any]] = json.loads(json.dumps(payloads))
    for payload in out:
        for alert in payload["alerts"]:
            for key in ("startsAt", "endsAt"):
                if not _unset(alert[key]):
                    alert[key] = (_parse(alert[key]) + offset).isoformat()
    return out


def _unset(timestamp: str) -> bool:
    """Alertmanager's zero time, the endsAt of an alert still firing."""
    return timestamp.startswith("0001-")


_TIMESTAMP = TypeAdapter(datetime)


def _parse(text: str) -> datetime:
    """Alertmanager's RFC 3339 times have nanoseconds, which datetime.fromisoformat refuses."""
    return _TIMESTAMP.validate_python(text)


def _post_samples(base: str, token: str) -> list[str]:
    payloads = restamped([json.loads((SAMPLES / name).read_text()) for name in SEQUENCE])
    job_ids: list[str] = []
    for name, payload in zip(SEQUENCE, payloads, strict=True):
        response = requests.post(
            f"{base}/webhooks/alertmanager", json=payload, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        print(f"\nPOST {name} -> {response.status_code}")
        for decision in response.json().get("alerts", []):
            print(
                f"  {decision['alertname']} {decision['status']} {decision['fingerprint']}: "
                f"{decision['decision']}" + (f" ({decision['reason']})" if decision.get("reason") else "")
            )
            if decision["decision"] == "queued":
                job_ids.append(decision["job_id"])
    return job_ids


def _wait_done(stack: Stack, runs: RunStore, job_ids: list[str]) -> list[RunRecord]:
    """The runs' records once all have finished, or as they are after RUNS_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + RUNS_TIMEOUT_SECONDS
    while True:
        records = [runs.get(job_id) for job_id in job_ids]
        if all(r.status in FINISHED for r in records) or time.monotonic() > deadline:
            return records
        if (name := stack.exited()) is not None:
            raise DemoFailed(f"the {name} exited before the runs finished; see {stack.log(name)}")
        time.sleep(0.2)


@contextlib.contextmanager
def _interrupt_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) stop the demo as Ctrl-C does, so that what it
    started is stopped too: the children run in sessions of their own and would outlive it."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
