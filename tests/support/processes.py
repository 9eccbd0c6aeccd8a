"""Real `responder` processes and a redis-server of the test's own: started, watched through their
JSON log lines, and stopped with everything they forked. The fixtures here (``services``,
``own_redis``) are registered from tests/conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from tests.conftest import ROOT, WEBHOOK_TOKEN, free_port, wait_until


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []


@dataclass
class Service:
    """A `responder` subprocess in its own session, logging JSON lines to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, *args: str) -> Service:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "responder.cli", *args],
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc, log)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in _lines(self.log):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                found.append(entry)
        return found

    def kill_tree(self) -> None:
        """SIGKILL the process and every descendant (RQ's scheduler process among them)."""
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        self.kill_tree()


def descendants(pid: int) -> list[int]:
    """The ids of every process below ``pid`` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start `responder ARGS` processes; all are stopped (and their process trees killed) at the end."""
    started: list[Service] = []

    def start(env: dict[str, str], name: str, *args: str) -> Service:
        service = Service.start(env, tmp_path / f"{name}.log", *args)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def start_receiver(start: Callable[..., Service], env: dict[str, str], name: str = "receiver") -> tuple[Service, str]:
    """`responder serve` on a free port, once /healthz answers; returns it and its base URL."""
    port = free_port()
    receiver = start(env, name, "serve", "--host", "127.0.0.1", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert receiver.alive, f"receiver exited with {receiver.proc.returncode}"
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(up, "the receiver's /healthz", logs=(receiver.log,))
    return receiver, base


def service_env(cli_env: dict[str, str], **values: str) -> dict[str, str]:
    """The CLI environment plus the webhook token and ``RESPONDER_<NAME>`` overrides."""
    overrides = {f"RESPONDER_{name.upper()}": value for name, value in values.items()}
    return {**cli_env, "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN, **overrides}


class RedisServer:
    """A redis-server of our own (appendonly, like docker-compose's) that tests stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; the Redis outage tests start and stop their own")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            *f"--port {self.port} --bind 127.0.0.1 --appendonly yes --appendfsync always".split(),
            "--dir",
            str(self.workdir),
            "--save",
            "",
        ]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT)
        client = Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except Exception:
                return False

        wait_until(answers, f"redis-server on port {self.port}", timeout=10, logs=(self.workdir / "redis.log",))
        client.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A RedisServer of the test's own, started; killed at the end."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@contextlib.contextmanager
def serving(redis_url: str, log: Path, **env: str) -> Iterator[str]:
    """A real `responder serve` on a free port, with the webhook token and ``env``; its base URL."""
    base_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RESPONDER_")}
    base_env.update({
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_QUEUE": "responder-test",
        "RESPONDER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "RESPONDER_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "RESPONDER_LOG_FORMAT": "json",
        **env,
    })
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "responder.cli", "serve", "--port", str(port)], env=base_env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"responder serve did not come up:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
