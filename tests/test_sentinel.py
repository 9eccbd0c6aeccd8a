"""Redis Sentinel (issue 19, first slice): real `responder serve`, `responder worker` and CLI
processes configured only through RESPONDER_REDIS_SENTINELS and RESPONDER_REDIS_SENTINEL_MASTER
(RESPONDER_REDIS_URL names a closed port), a real master, replica and three Sentinels; the master
is killed, or demoted, under them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection
from rq import Queue

from responder.errors import ConfigError
from responder.settings import Settings
from responder.settings_loading import load_settings
from responder.store.redisconn import async_redis_client, redis_client
from tests.conftest import WEBHOOK_TOKEN, free_port, load_example, run_cli, wait_until
from tests.support.processes import Service, service_env, start_receiver
from tests.support.runs import MANIFEST_DIGEST, finished, integrity
from tests.support.sentinel import SERVICE, SentinelCluster

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A master, a replica and three Sentinels monitoring them as ``responder-test``; all killed at the end."""
    workdir = tmp_path / "sentinel"
    workdir.mkdir()
    cluster = SentinelCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def sentinel_env(cli_env: dict[str, str], sentinel_cluster: SentinelCluster) -> dict[str, str]:
    """The processes' environment: Redis only through the Sentinels (the URL's port is closed)."""
    return service_env(
        cli_env,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        redis_sentinels=sentinel_cluster.sentinels,
        redis_sentinel_master=SERVICE,
    )


def post(base: str, name: str) -> requests.Response:
    payload = integrity(MANIFEST_DIGEST) if name == "integrity-firing.json" else load_example(name)
    return requests.post(f"{base}/webhooks/alertmanager", json=payload, headers=AUTH, timeout=15)


def queued_job(response: requests.Response) -> str:
    assert 202 == response.status_code, response.text
    [alert] = response.json()["alerts"]
    assert "queued" == alert["decision"], alert
    return str(alert["job_id"])


def run_finishes(cluster: SentinelCluster, job_id: str, *logs: Path) -> None:
    """The run of ``job_id`` succeeds, as read on the master the Sentinels name now."""

    def done() -> object:
        [port] = cluster.named_master()
        return finished(cluster.client(port), job_id)

    record = wait_until(done, f"run {job_id} to finish", timeout=60, logs=logs)
    assert "succeeded" == record.status, record.error


def readyz(base: str) -> int:
    return requests.get(f"{base}/readyz", timeout=15).status_code


def test_receiver_and_worker_find_the_master_through_sentinel(
    sentinel_env: dict[str, str], sentinel_cluster: SentinelCluster, services: Callable[..., Service]
) -> None:
    """Configured only with Sentinels, the receiver takes a notification (202) and a worker runs it;
    the idle worker then stops at once on SIGTERM (its interrupted wait for a job leaves no reply
    pending on a pooled connection)."""
    receiver, base = start_receiver(services, sentinel_env)
    worker = services(sentinel_env, "worker", "worker")
    job_id = queued_job(post(base, "integrity-firing.json"))
    run_finishes(sentinel_cluster, job_id, worker.log, receiver.log)

    worker.proc.terminate()
    assert 0 == worker.proc.wait(timeout=10)


def test_after_the_master_is_killed_the_same_processes_carry_on_with_the_promoted_replica(
    sentinel_env: dict[str, str], sentinel_cluster: SentinelCluster, services: Callable[..., Service]
) -> None:
    """The master SIGKILLed: /readyz is 503 until the Sentinels promote the replica, then 200; the
    same receiver answers 202 to a new notification and the same worker runs it."""
    receiver, base = start_receiver(services, sentinel_env)
    worker = services(sentinel_env, "worker", "worker")
    run_finishes(sentinel_cluster, queued_job(post(base, "integrity-firing.json")), worker.log)

    old = sentinel_cluster.master_port
    sentinel_cluster.kill(old)
    assert 503 == readyz(base)
    new = sentinel_cluster.wait_for_failover(old)
    assert sentinel_cluster.replica_port == new
    wait_until(lambda: readyz(base) == 200, "/readyz after the failover", logs=(receiver.log,))

    job_id = queued_job(post(base, "bias-firing.json"))
    run_finishes(sentinel_cluster, job_id, worker.log, receiver.log)
    assert receiver.alive and worker.alive


def test_a_commit_refused_by_a_demoted_master_is_retried_on_the_new_one(
    sentinel_env: dict[str, str], sentinel_cluster: SentinelCluster, services: Callable[..., Service]
) -> None:
    """After a switchover the receiver's kept connections still reach the old master, now a
    replica: its commit gets READONLY there, is sent again to the new master, and answers 202;
    the worker runs it once."""
    receiver, base = start_receiver(services, sentinel_env)
    worker = services(sentinel_env, "worker", "worker")
    run_finishes(sentinel_cluster, queued_job(post(base, "integrity-firing.json")), worker.log)

    old = sentinel_cluster.master_port
    demoted = sentinel_cluster.client(old)
    sentinel_cluster.client(sentinel_cluster.sentinel_ports[0]).execute_command("SENTINEL", "FAILOVER", SERVICE)
    new = sentinel_cluster.wait_for_failover(old)
    demoted.replicaof("127.0.0.1", str(new))  # what the Sentinels do to it too, a few seconds later

    job_id = queued_job(post(base, "bias-firing.json"))
    refused = demoted.info("errorstats").get("errorstat_READONLY", {}).get("count", 0)
    assert refused >= 1, "no write reached the demoted master: the test did not test READONLY"
    run_finishes(sentinel_cluster, job_id, worker.log, receiver.log)
    assert [] == Queue("responder-test", connection=sentinel_cluster.client(new)).job_ids  # no second copy


def test_the_cli_lists_jobs_through_sentinel(
    sentinel_env: dict[str, str], services: Callable[..., Service]
) -> None:
    """`responder jobs list` reads the master the Sentinels name."""
    _, base = start_receiver(services, sentinel_env)
    job_id = queued_job(post(base, "integrity-firing.json"))
    listed = run_cli(sentinel_env, "jobs", "list")
    assert 0 == listed.returncode, listed.stderr
    assert job_id in listed.stdout


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:26379,sentinel-b", "127.0.0.1:http"])
def test_a_bad_sentinel_list_stops_the_cli_with_one_line(cli_env: dict[str, str], value: str) -> None:
    """A RESPONDER_REDIS_SENTINELS entry that is not host:port: one line naming it, exit 2."""
    env = {**cli_env, "RESPONDER_REDIS_SENTINELS": value, "RESPONDER_REDIS_SENTINEL_MASTER": SERVICE}
    result: subprocess.CompletedProcess[str] = run_cli(env, "jobs", "list")
    assert 2 == result.returncode
    [line] = result.stderr.strip().splitlines()
    assert "RESPONDER_REDIS_SENTINELS" in line


@pytest.mark.parametrize(
    "env", [{"RESPONDER_REDIS_SENTINELS": "s:26379"}, {"RESPONDER_REDIS_SENTINEL_MASTER": SERVICE}]
)
def test_sentinels_and_master_name_are_set_together(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """One of the two without the other is refused, naming both."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="RESPONDER_REDIS_SENTINELS and RESPONDER_REDIS_SENTINEL_MASTER"):
        load_settings()


def test_the_sentinel_list_is_comma_separated_and_its_password_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """host:port,host:port in the environment; the Sentinels' password is among the values logs redact."""
    monkeypatch.setenv("RESPONDER_REDIS_SENTINELS", "sentinel-a:26379, 10.0.0.2:26380")
    monkeypatch.setenv("RESPONDER_REDIS_SENTINEL_MASTER", SERVICE)
    monkeypatch.setenv("RESPONDER_REDIS_SENTINEL_PASSWORD", "sentinel-secret-1")
    settings = load_settings()
    assert ["sentinel-a:26379", "10.0.0.2:26380"] == settings.redis_sentinels
    assert "sentinel-secret-1" in settings.secret_values()


async def test_with_sentinels_both_clients_take_the_master_from_them_with_the_urls_db_and_password() -> None:
    """The clients' pools are Sentinel's (the async one keeping hiredis packing); the URL gives db
    and password, not the address. Without Sentinels the clients are the plain ones."""
    settings = Settings(redis_url="redis://:pw@ignored:1/7", redis_sentinels=["127.0.0.1:1"],
                        redis_sentinel_master=SERVICE)
    sync, loop = redis_client(settings), async_redis_client(settings)
    assert isinstance(sync.connection_pool, SentinelConnectionPool)
    assert isinstance(loop.connection_pool, AsyncSentinelConnectionPool)
    assert issubclass(sync.connection_pool.connection_class, SentinelManagedConnection)
    assert issubclass(loop.connection_pool.connection_class, AsyncSentinelManagedConnection)
    assert "_HiredisPackingConnection" in [c.__name__ for c in loop.connection_pool.connection_class.__mro__]
    for pool in (sync.connection_pool, loop.connection_pool):
        kwargs = pool.connection_kwargs
        assert (7, "pw", None, None) == (kwargs["db"], kwargs["password"], kwargs.get("host"), kwargs.get("port"))
    plain = Settings(redis_url="redis://127.0.0.1:1/7")
    assert "Connection" == type(redis_client(plain).connection_pool.make_connection()).__name__
    await loop.aclose()
