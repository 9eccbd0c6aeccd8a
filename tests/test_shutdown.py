"""Graceful shutdown: SIGTERM lets the receiver finish the requests in flight and the worker
finish the run in flight, then each exits 0. Real processes, real Redis, the GitHub fake."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from redis import Redis
from rq.job import Job, JobStatus

from responder.settings import Settings
from tests.conftest import WEBHOOK_TOKEN, wait_until
from tests.fakes.github import FakeGitHub
from tests.support.github import MANIFEST_READ, in_flight
from tests.support.processes import RedisServer, Service, service_env, start_receiver
from tests.support.runs import MANIFEST_DIGEST, enqueue_example, finished, integrity, run_of

PAUSE_MS = 3000


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_receiver_finishes_a_request_in_flight_on_sigterm_then_exits_0(
    cli_env: dict[str, str], own_redis: RedisServer, services: Callable[..., Service]
) -> None:
    """A webhook POST still being handled when SIGTERM comes (its Redis transaction is held up)
    gets its 202 and its job is stored; new connections are refused meanwhile; exit code 0."""
    receiver, base = start_receiver(services, service_env(cli_env, redis_url=own_redis.url))
    port = int(base.rsplit(":", 1)[1])
    admin = Redis.from_url(own_redis.url)
    admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")  # the intake's EXEC waits for it
    with ThreadPoolExecutor(max_workers=1) as pool:
        post = pool.submit(
            requests.post,
            f"{base}/webhooks/alertmanager",
            json=integrity(MANIFEST_DIGEST),
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            timeout=20,
        )
        wait_until(lambda: admin.info("clients")["blocked_clients"], "the webhook's transaction to be held up")
        receiver.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: _refuses(port), "the receiver to stop accepting connections", logs=(receiver.log,))
        assert not post.done() and receiver.alive  # still finishing the request in flight
        response = post.result()

    assert 202 == response.status_code, response.text
    [alert] = response.json()["alerts"]
    assert "queued" == alert["decision"]
    assert JobStatus.QUEUED == Job.fetch(alert["job_id"], connection=admin).get_status()
    assert 0 == receiver.proc.wait(timeout=15)
    assert _refuses(port)


def test_worker_finishes_the_run_in_flight_on_sigterm_then_exits_0(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """SIGTERM while a step is in flight: the run completes and succeeds, the worker takes no
    further work and exits 0."""
    worker = services(service_env(cli_env), "worker", "worker")
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=3)  # the digest check is slow
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(worker.log,))
    waiting = enqueue_example(redis, settings, "bias-firing.json")

    worker.proc.send_signal(signal.SIGTERM)

    assert 0 == worker.proc.wait(timeout=30)
    record = finished(redis, job_id)
    assert record is not None and "succeeded" == record.status, record
    assert ["ok"] * 4 + ["skipped"] * 5 == [s.status for s in record.steps]  # digests match: no rollback
    assert "queued" == run_of(redis, waiting).status  # left for another worker
    assert JobStatus.QUEUED == Job.fetch(waiting, connection=redis).get_status()


def test_a_second_sigterm_stops_the_worker_at_once_and_hands_its_run_to_another(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """A second SIGTERM while a step hangs stops the worker without waiting for the step; the run
    is put back at the front of the queue at once and another worker completes it without
    repeating the steps done before."""
    worker = services(service_env(cli_env), "worker", "worker")
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=30)  # the digest check hangs
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(worker.log,))

    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # RQ ignores a second signal within a second of the first
    worker.proc.send_signal(signal.SIGTERM)

    assert 0 == worker.proc.wait(timeout=10)
    requeued = run_of(redis, job_id)
    assert "queued" == requeued.status
    assert "stopped while running it" in (requeued.error or "")
    assert JobStatus.QUEUED == Job.fetch(job_id, connection=redis).get_status()
    other = services(service_env(cli_env), "worker-2", "worker")
    record = wait_until(lambda: finished(redis, job_id), "the run on the other worker", timeout=30, logs=(other.log,))
    assert "succeeded" == record.status, record.error
    assert ["ok"] * 4 + ["skipped"] * 5 == [s.status for s in record.steps]  # digests match: no rollback
    assert ["POST"] == [r.method for r in fake_github.requests if r.method in ("POST", "PATCH")
                        and "/actions/variables" in r.path]  # the freeze is not written again
