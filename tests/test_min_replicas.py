"""Acknowledged means replicated, when asked (issue 19): with RESPONDER_REDIS_MIN_REPLICAS=1 a
notification is answered 202 only once WAIT confirms its commit reached a replica; with the replica
down the receiver answers 503 with Retry-After and queues nothing, and Alertmanager's retry is
taken once the replica is back. A real redis-server master and replica of the test's own, a real
`responder serve`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis

from responder.runs import RunStore
from tests.conftest import WEBHOOK_TOKEN, load_example, wait_until
from tests.support.processes import Service, service_env, start_receiver
from tests.support.sentinel import SentinelCluster

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A master and a replica (no Sentinels: nothing fails over here)."""
    servers = SentinelCluster(tmp_path)
    servers.start_server(servers.master_port)
    servers.start_server(servers.replica_port, "--replicaof", "127.0.0.1", str(servers.master_port))
    wait_until(lambda: replicas(servers) == 1, "the replica to be online")
    yield servers
    servers.stop()


def replicas(servers: SentinelCluster) -> int:
    """The master's replicas online (past their first full copy)."""
    info = servers.client(servers.master_port).info("replication")
    return sum(1 for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)
               and value.get("state") == "online")


def master(servers: SentinelCluster) -> Redis:
    return servers.client(servers.master_port)


def receiver(services: Callable[..., Service], cli_env: dict[str, str], servers: SentinelCluster) -> str:
    env = service_env(cli_env, redis_url=f"redis://127.0.0.1:{servers.master_port}/0", redis_min_replicas="1")
    return start_receiver(services, env)[1]


def post(base: str, payload: dict[str, Any]) -> requests.Response:
    return requests.post(f"{base}/webhooks/alertmanager", json=payload, headers=AUTH, timeout=15)


def runs(client: Redis) -> list[str]:
    return [r.id for r in RunStore(client, retention_seconds=3600).recent(limit=50)]


def test_a_202_means_the_replica_holds_the_run(services, cli_env, pair):
    base = receiver(services, cli_env, pair)
    answer = post(base, load_example("bias-firing.json"))
    [job_id] = [a["job_id"] for a in answer.json()["alerts"] if a["decision"] == "queued"]
    assert answer.status_code == 202
    assert pair.client(pair.replica_port).exists(RunStore(master(pair), retention_seconds=3600).key(job_id))


def test_without_the_replica_the_answer_is_503_and_nothing_is_queued(services, cli_env, pair):
    base = receiver(services, cli_env, pair)
    pair.kill(pair.replica_port)
    wait_until(lambda: replicas(pair) == 0, "the master to see its replica gone")
    answer = post(base, load_example("bias-firing.json"))
    assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "5")
    assert "RESPONDER_REDIS_MIN_REPLICAS" in answer.json()["error"]
    assert (runs(master(pair)), master(pair).llen("rq:queue:responder-test")) == ([], 0)


def test_the_retry_is_taken_once_the_replica_is_back(services, cli_env, pair):
    base = receiver(services, cli_env, pair)
    pair.kill(pair.replica_port)
    wait_until(lambda: replicas(pair) == 0, "the master to see its replica gone")
    assert post(base, load_example("bias-firing.json")).status_code == 503
    pair.start_server(pair.replica_port, "--replicaof", "127.0.0.1", str(pair.master_port))
    wait_until(lambda: replicas(pair) == 1, "the replica to be back online")
    answer = post(base, load_example("bias-firing.json"))
    assert answer.status_code == 202
    assert [a["decision"] for a in answer.json()["alerts"]] == ["queued"]
    assert len(runs(master(pair))) == 1
