"""A Redis Sentinel setup of the test's own: a master, a replica and three Sentinels, real
`redis-server` and `redis-sentinel` processes on free ports, with timeouts short enough that a
failover takes seconds (tests/test_sentinel.py's ``sentinel_cluster`` fixture starts one)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import free_port, wait_until

SERVICE = "responder-test"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def _answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class SentinelCluster:
    """The processes, and what the Sentinels say about them."""

    def __init__(self, workdir: Path) -> None:
        server, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
        if server is None or sentinel is None:
            pytest.fail("redis-server and redis-sentinel must be installed (scripts/test installs them)")
        self.server, self.sentinel, self.workdir = server, sentinel, workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.servers: dict[int, subprocess.Popen[bytes]] = {}  # by port
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def sentinels(self) -> str:
        """The RESPONDER_REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_server(self, port: int, *extra: str) -> None:
        workdir = self.workdir / f"redis-{port}"
        workdir.mkdir(exist_ok=True)
        args = [self.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", *extra]
        self.servers[port] = self._spawn(f"redis-{port}", args)
        client = self.client(port)
        wait_until(lambda: _answers(client), f"redis-server on {port}", timeout=10,
                   logs=(self.workdir / f"redis-{port}.log",))
        client.close()

    def start(self) -> None:
        self.start_server(self.master_port)
        self.start_server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"  # each its own: a Sentinel rewrites its file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._spawn(f"sentinel-{port}", [self.sentinel, str(conf)])
        wait_until(self._agreed, "the Sentinels to see each other and the replica", timeout=30, logs=self._logs())

    def _logs(self) -> tuple[Path, ...]:
        return tuple(sorted(self.workdir.glob("*.log")))

    def _agreed(self) -> bool:
        """Every Sentinel knows the two others, names the master and sees a replica in sync."""
        for port in self.sentinel_ports:
            try:
                state = self.client(port).sentinel_master(SERVICE)
            except Exception:
                return False
            if (state["num-other-sentinels"], state["num-slaves"]) < (2, 1) or state["port"] != self.master_port:
                return False
        replica = self.client(self.replica_port).info("replication")
        return bool(replica.get("master_link_status") == "up")

    def client(self, port: int) -> Redis:
        return Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=1)

    def named_master(self) -> set[int]:
        """The master port each answering Sentinel names."""
        named = set()
        for port in self.sentinel_ports:
            with contextlib.suppress(Exception):
                _, master_port = self.client(port).sentinel_get_master_addr_by_name(SERVICE)
                named.add(int(master_port))
        return named

    def wait_for_failover(self, old: int, timeout: float = 60) -> int:
        """Wait until every Sentinel names a master other than ``old`` and it answers; its port."""

        def promoted() -> int | None:
            named = self.named_master()
            if len(named) != 1 or old in named:
                return None
            [port] = named
            role = self.client(port).info("replication").get("role")
            return port if role == "master" else None

        return int(wait_until(promoted, "the Sentinels to promote the replica", timeout=timeout, logs=self._logs()))

    def kill(self, port: int) -> None:
        proc = self.servers.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

