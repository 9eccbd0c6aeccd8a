"""Processes the bench starts: its own redis-server, `responder serve`, `responder worker`s, the
bare aiohttp server, the naive one and plain RQ `SimpleWorker`s (the workers' reference). Each
runs in its own session (process group) so that stopping it also stops what it forked (a worker's
RQ scheduler); everything started is stopped on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
STOP_SECONDS = 15.0

_started: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], *, timeout: float = STOP_SECONDS) -> None:
    """SIGTERM the process (a worker finishes its run in flight), then SIGKILL its whole group."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it forked and left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(_started)):
        stop(proc, timeout=5)


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_cleanup() -> None:
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (`cmd &`)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def wait_until(condition: Callable[[], Any], what: str, *, timeout: float = 30.0, interval: float = 0.02,
               proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} while waiting for {what}{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"\n--- {log} (last {len(text)} lines)\n" + "\n".join(text)


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A private redis-server on a free port, data in ``workdir``; persistence like docker-compose.yml
    (appendonly, ``appendfsync`` as given: ``always`` there)."""

    def __init__(self, workdir: Path, *, fsync: str = "always") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.fsync = fsync
        self.log = workdir / "redis.log"
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--save", "", "--logfile", str(self.log)]
        argv += ["--appendonly", "no"] if fsync == "off" else ["--appendonly", "yes", "--appendfsync", fsync]
        self.proc = start(argv, workdir / "redis.stdout")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = Redis.from_url(self.url)
        wait_until(self._ping, "redis-server", proc=self.proc, log=self.log, timeout=10)

    def _ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def version(self) -> str:
        return str(self.client.info("server").get("redis_version", "?"))

    def flush(self) -> None:
        self.client.flushdb()

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])


def start_replica(workdir: Path, master: RedisServer) -> subprocess.Popen[bytes]:
    """A redis-server replicating ``master`` (persistence like it), once it is online (its first copy taken)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    workdir.mkdir(exist_ok=True)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
            "--logfile", str(workdir / "redis.log"), "--replicaof", "127.0.0.1", str(master.port),
            "--appendonly", "yes", "--appendfsync", master.fsync if master.fsync != "off" else "everysec"]
    proc = start(argv, workdir / "redis.stdout")

    def online() -> bool:
        info = master.client.info("replication")
        return any(isinstance(v, dict) and v.get("state") == "online" for k, v in info.items() if k.startswith("slave"))

    wait_until(online, "the replica to be online", proc=proc, log=workdir / "redis.log", timeout=30)
    return proc


# --------------------------------------------------------------------------- responder


def responder_env(redis_url: str, github: Any, token: str, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_QUEUE": queue,
        "RESPONDER_WEBHOOK_TOKEN": token,
        "RESPONDER_GITHUB_API_URL": github.url,
        "RESPONDER_GITHUB_TOKEN": github.token,
        "RESPONDER_GITHUB_REPO": github.full_name,
        "RESPONDER_GITHUB_WRITES_PER_SECOND": "0",
        "RESPONDER_STORM_MAX_RUNS": "1000000",
        "RESPONDER_JOB_RETRY_INTERVALS": "[]",
        "RESPONDER_LOG_LEVEL": "warning",
        "RESPONDER_LOG_FORMAT": "json",
        "RESPONDER_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "RESPONDER_DRY_RUN": "false",
    })
    return env


CLI = [sys.executable, "-m", "responder.cli"]


def _start_server(argv: list[str], log: Path, ready: str, env: dict[str, str] | None = None, *,
                  timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start an HTTP server on a free port (``argv`` gets ``--port``) and wait until GET ``ready``
    answers 200; returns it and its base URL."""
    port = free_port()
    proc = start([*argv, "--port", str(port)], log, env)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_status(f"{base}{ready}") == 200, f"{log.stem} {ready}", proc=proc, log=log,
               timeout=timeout, interval=0.1)
    return proc, base


def start_receiver(env: dict[str, str], workdir: Path, *, http_only: bool = False, under: list[str] | None = None,
                   timeout: float = 30, name: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`responder serve`, or with ``http_only`` the same with canned decisions (bench/http_only.py);
    ``under``: a command it runs under (valgrind); ``name``: of its log."""
    log = workdir / (f"{name}.log" if name else "http-only.log" if http_only else "receiver.log")
    program = [sys.executable, str(ROOT / "bench" / "http_only.py")] if http_only else CLI
    return _start_server([*(under or []), *program, "serve", "--host", "127.0.0.1"], log, "/readyz", env,
                         timeout=timeout)


def start_workers(env: dict[str, str], workdir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        log = workdir / f"worker-{i}.log"
        procs.append(start([*CLI, "worker"], log, env))
    return procs


def start_rq_workers(redis_url: str, queue: str, workdir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """The reference of the worker-throughput ratio: ``count`` plain RQ ``SimpleWorker``s (`rq worker
    --worker-class rq.worker.SimpleWorker`, RQ's own CLI) on ``queue``, jobs run in the worker's
    process as in `responder worker`, at log level WARNING as the bench runs responder's (RQ logs
    two INFO lines per job otherwise); no scheduler, no responder code. Stopped like the others."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.worker.SimpleWorker",
            "--url", redis_url, "--logging_level", "WARNING", "--path", str(ROOT), queue]
    return [start(argv, workdir / f"rq-worker-{i}.log", env) for i in range(count)]


def start_bare(workdir: Path, *, under: list[str] | None = None, timeout: float = 20
               ) -> tuple[subprocess.Popen[bytes], str]:
    return _start_server([*(under or []), sys.executable, str(ROOT / "bench" / "bare_server.py")],
                         workdir / "bare.log", "/healthz", timeout=timeout)


def start_naive(workdir: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """bench/naive_server.py: the issue's reference, RQ's enqueue called synchronously per alert."""
    return _start_server([sys.executable, str(ROOT / "bench" / "naive_server.py"), "--redis-url", redis_url],
                         workdir / "naive.log", "/healthz", timeout=20)


# --------------------------------------------------------------------------- memory


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB from /proc/<pid>/status, Pss from smaps_rollup."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "Pss":
                values["Pss"] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children(current)
    return tree


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


# --------------------------------------------------------------------------- CPU


def cpu_seconds(pid: int, *, with_reaped_children: bool = True) -> float:
    """User + system CPU of a process from /proc/<pid>/stat (plus the children it has waited for:
    a worker's RQ scheduler, Redis's AOF rewrites)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick
