"""`responder demo` leaves no trace: it runs on a Redis of its own, never the user's, stops all it
started, and with --keep leaves a runs page and a Redis URL that work, and a kill line that ends it.

The demo runs twice in this file, once plain and once with --keep, each shared by the tests after
it; the user's Redis is played by db 11 of the test Redis, which RESPONDER_REDIS_URL names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter
from redis import Redis

from responder.demo import SAMPLES, SEQUENCE, restamped
from tests.conftest import ROOT, run_cli, wait_until

USERS_DB = 11


@dataclass(frozen=True)
class Demo:
    """What one `responder demo` printed."""

    result: subprocess.CompletedProcess[str]
    redis_port: int

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(run id, status) of each run printed."""
        return re.findall(r"^run (\S+): (\w+)", self.result.stdout, re.MULTILINE)

    def line(self, pattern: str) -> re.Match[str]:
        match = re.search(pattern, self.result.stdout, re.MULTILINE)
        assert match is not None, f"no line matching {pattern!r} in:\n{self.result.stdout}"
        return match


@pytest.fixture(scope="module")
def users_redis_url(redis_url: str) -> str:
    """The user's Redis, as RESPONDER_REDIS_URL names it for the demo."""
    return f"{redis_url.rsplit('/', 1)[0]}/{USERS_DB}"


@pytest.fixture(scope="module")
def users_redis(users_redis_url: str) -> Iterator[Redis]:
    """The user's Redis, empty before the demos run."""
    client = Redis.from_url(users_redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="module")
def users_env(users_redis: Redis, users_redis_url: str) -> dict[str, str]:
    return {**os.environ, "RESPONDER_REDIS_URL": users_redis_url, "NO_COLOR": "1"}


def _run_demo(env: dict[str, str], *args: str) -> Demo:
    result = subprocess.run(
        [sys.executable, "-m", "responder.cli", "demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    match = re.search(r"Redis of its own \(redis://127\.0\.0\.1:(\d+)/0\)", result.stdout)
    assert match is not None, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return Demo(result, int(match.group(1)))


@pytest.fixture(scope="module")
def demo(users_env: dict[str, str]) -> Demo:
    """One plain `responder demo`, finished."""
    return _run_demo(users_env)


@pytest.fixture(scope="module")
def kept(users_env: dict[str, str]) -> Iterator[Demo]:
    """One `responder demo --keep`; whatever it left running, and its logs, go at the end of the module."""
    kept = _run_demo(users_env, "--keep")
    try:
        yield kept
    finally:
        for pid in _processes_of(kept.redis_port):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if logs := re.search(r"; logs in (\S+)$", kept.result.stdout, re.MULTILINE):
            shutil.rmtree(logs.group(1), ignore_errors=True)


def _processes_of(redis_port: int) -> set[int]:
    """Live processes of a demo: its redis-server, and those pointed at it (receiver, worker and
    the worker's scheduler, which inherit its environment)."""
    env_entry = f"RESPONDER_REDIS_URL=redis://127.0.0.1:{redis_port}/0".encode()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        is_server = b"redis-server" in cmdline and f"127.0.0.1:{redis_port}".encode() in cmdline
        if (env_entry in environ or is_server) and _alive(int(proc.name)):
            found.add(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    """Running: a zombie has exited (the demo's orphans wait for init to reap them)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _times(block: str) -> tuple[datetime, datetime | None, datetime]:
    """fired at, resolved at (None while firing) and ended of one printed run."""
    match = re.search(r"fired at\s+(\S+?)(?:, resolved at (\S+))?\n.*ended (\S+ \S+Z)", block)
    assert match is not None, block
    fired, resolved, ended = match.groups()
    return (
        datetime.fromisoformat(fired),
        datetime.fromisoformat(resolved) if resolved else None,
        datetime.strptime(ended, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC),
    )


# --- the plain demo


def test_demo_prints_every_run_it_queued_and_exits_0(demo: Demo) -> None:
    """Every queued alert's run is printed, finished, and the demo exits 0."""
    queued = re.findall(r": queued$", demo.result.stdout, re.MULTILINE)
    assert demo.result.returncode == 0, demo.result.stderr
    assert len(queued) == 5
    assert [status for _, status in demo.runs] == ["SUCCEEDED"] * 5


def test_demo_says_its_runs_went_with_its_redis(demo: Demo) -> None:
    """The last line says the runs are gone and how to keep them."""
    assert demo.result.stdout.splitlines()[-1] == (
        "demo: the demo's Redis is gone with its 5 runs; run `responder demo --keep` to browse them"
    )


def test_demo_leaves_the_users_redis_untouched(demo: Demo, users_redis: Redis) -> None:
    """Nothing is written to the Redis RESPONDER_REDIS_URL names."""
    assert users_redis.dbsize() == 0


def test_demo_leaves_nothing_running(demo: Demo) -> None:
    """Its redis-server, receiver and worker are gone when it exits."""
    assert _processes_of(demo.redis_port) == set()
    assert not _answers(demo.redis_port)


def test_demo_resolves_before_the_run_ends(demo: Demo) -> None:
    """A printed resolve time is after its firing and not after the end of its run."""
    resolves = []
    for block in demo.result.stdout.split("\nrun ")[1:]:
        fired, resolved, ended = _times(block)
        if resolved is not None:
            resolves.append((fired, resolved, ended))
    assert resolves, "no resolved run printed"
    for fired, resolved, ended in resolves:
        assert fired <= resolved
        assert resolved.replace(microsecond=0) <= ended  # `ended` is printed to the second


def test_restamped_samples_end_now_in_their_own_order() -> None:
    """Re-stamped, the latest startsAt/endsAt is now, none later, and every gap between them is kept."""

    def times(payloads: list[dict[str, Any]]) -> list[datetime]:
        stamps = [a[k] for p in payloads for a in p["alerts"] for k in ("startsAt", "endsAt")]
        return [TypeAdapter(datetime).validate_python(s) for s in stamps if not s.startswith("0001-")]

    samples = [json.loads((SAMPLES / name).read_text()) for name in SEQUENCE]
    before = datetime.now(UTC)
    stamped = restamped(samples)
    after = datetime.now(UTC)
    original, new = times(samples), times(stamped)
    assert before <= max(new) <= after
    assert len({t - o for o, t in zip(original, new, strict=True)}) == 1


def test_without_redis_server_the_demo_exits_2_in_one_line(tmp_path: Path, users_env: dict[str, str]) -> None:
    """No redis-server on PATH: one error line naming it, exit 2, nothing started."""
    result = run_cli({**users_env, "PATH": str(tmp_path)}, "demo")
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert "redis-server is not installed" in result.stderr


def test_a_port_in_use_is_refused_naming_the_option(users_env: dict[str, str]) -> None:
    """--port on a port something listens on: one error line naming --port, exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli(users_env, "demo", "--port", str(taken.getsockname()[1]))
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert "--port" in result.stderr


# --- the demo with --keep (the last test stops it)


def test_kept_runs_page_lists_the_runs_with_the_printed_password(kept: Demo) -> None:
    """The printed runs page answers the printed password (any user name) and lists every run."""
    url = kept.line(r"see the 5 runs at (http://\S+/runs) ").group(1)
    token = kept.line(r"asks for a password: (\S+) \(any user name\)").group(1)
    response = requests.get(url, auth=("anyone", token), timeout=10)
    assert response.status_code == 200
    assert sorted(re.findall(r'href="/runs/([^"]+)"', response.text)) == sorted(run_id for run_id, _ in kept.runs)


def test_kept_redis_url_lists_the_runs_in_the_cli(kept: Demo) -> None:
    """The printed `RESPONDER_REDIS_URL=… responder jobs list`, run where the demo ran, lists every run."""
    printed = kept.line(r"or with: RESPONDER_REDIS_URL=(\S+) (\S*responder) jobs list$")
    env = {**os.environ, "RESPONDER_REDIS_URL": printed.group(1)}
    # A relative path is found from the demo's folder, as the user's shell would.
    result = subprocess.run([printed.group(2), "jobs", "list", "--json"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(r["id"] for r in json.loads(result.stdout)) == sorted(run_id for run_id, _ in kept.runs)


def test_kept_demo_stops_with_the_printed_kill_command(kept: Demo) -> None:
    """The printed `kill` line names the demo's processes, and after it none is left running."""
    command = kept.line(r"stop them with: (kill \d+ \d+; sleep \d+; kill \d+)$").group(1)
    pids = {int(pid) for kill in re.findall(r"kill ([\d ]+)", command) for pid in kill.split()}
    assert len(pids) == 3
    assert pids <= _processes_of(kept.redis_port)
    subprocess.run(command, shell=True, check=True)
    wait_until(lambda: not _processes_of(kept.redis_port), "the kept demo's processes to exit", timeout=30)
    assert not _answers(kept.redis_port)
