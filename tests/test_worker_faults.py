"""Faults around the queue: a worker killed mid-run, and Redis going away under the receiver
and the workers. Real `responder serve`/`responder worker` processes, a real Redis (our own
redis-server where it has to be stopped), the GitHub fake.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import requests
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from responder.runtime import Runtime
from responder.settings import Settings
from responder.worker import MAX_ABANDONED_REQUEUES, Outages, ResponderWorker, RunRenewal
from tests.conftest import WEBHOOK_TOKEN, load_example, wait_until
from tests.fakes.github import FakeGitHub
from tests.support.github import MANIFEST_READ, in_flight
from tests.support.processes import RedisServer, Service, descendants, service_env, start_receiver
from tests.support.runs import MANIFEST_DIGEST, enqueue_example, finished, integrity, run_of

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


# --------------------------------------------------------------------------- helpers


def variable_writes(fake: FakeGitHub) -> list[str]:
    return [r.method for r in fake.requests if r.method in ("POST", "PATCH") and "/actions/variables" in r.path]


# --------------------------------------------------------------------------- worker death


def test_run_of_a_killed_worker_completes_on_another_without_repeating_steps(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """A run whose worker is SIGKILLed mid-step (runs execute in the worker's own process, so a
    run that crashes the interpreter ends the same way) completes on another worker; the steps
    done before the kill are not repeated."""
    env = service_env(cli_env, worker_ttl_seconds="4", maintenance_interval_seconds="1")
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=30)  # the digest check hangs
    first = services(env, "worker-1", "worker")
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(first.log,))
    assert ["freeze-deploys"] == [s.name for s in run_of(redis, job_id).steps]

    first.kill_tree()
    second = services(env, "worker-2", "worker")
    # Recovered within the TTL (4 s) and a maintenance interval (1 s) of the kill, plus the second
    # worker's start-up: 30 s is a wide margin, and far less than a run left to RQ would take (never).
    record = wait_until(
        lambda: finished(redis, job_id), "the run to finish on worker 2", timeout=30, logs=(second.log,)
    )
    assert "succeeded" == record.status, record.error
    assert ["ok"] * 4 + ["skipped"] * 5 == [s.status for s in record.steps]  # digests match: no rollback
    assert 2 == record.attempts
    assert ["POST"] == variable_writes(fake_github)  # DEPLOY_FREEZE written once, by the first worker
    assert "true" == fake_github.variables["DEPLOY_FREEZE"]
    assert 1 == len(fake_github.dispatches)
    assert 1 == len(fake_github.issues)
    [requeued] = second.events("run.requeued_abandoned")
    assert job_id == requeued["job_id"]
    assert JobStatus.FINISHED == Job.fetch(job_id, connection=redis).get_status()


def test_a_run_longer_than_the_worker_ttl_is_renewed_and_not_taken_for_abandoned(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """A run executes in its worker's own process (no work horse is forked) and, while it is in
    flight, its StartedJobRegistry entry is renewed: another worker looking for abandoned runs
    every second leaves it alone although the run lasts twice the TTL."""
    env = service_env(cli_env, worker_ttl_seconds="4", maintenance_interval_seconds="1")
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=8)  # a slow but normal answer
    first = services(env, "worker-1", "worker")
    before = wait_until(lambda: set(descendants(first.proc.pid)), "the worker's scheduler process")
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(first.log,))
    second = services(env, "worker-2", "worker")
    registry = Queue(settings.queue, connection=redis).started_job_registry.key

    def score() -> float:
        [(_, value)] = redis.zrange(registry, 0, -1, withscores=True)
        return float(value)

    assert set(descendants(first.proc.pid)) == before  # the run is not in a child process
    renewed_from = score()
    wait_until(lambda: score() > renewed_from, "the registry entry to be renewed", timeout=10, logs=(first.log,))
    record = wait_until(lambda: finished(redis, job_id), "the run to finish", timeout=30, logs=(first.log,))

    assert "succeeded" == record.status, record.error
    assert 1 == record.attempts
    assert [] == first.events("run.requeued_abandoned") + second.events("run.requeued_abandoned")
    assert ["POST"] == variable_writes(fake_github)
    assert first.alive and second.alive


def test_a_run_over_the_job_timeout_is_failed_and_the_worker_takes_the_next(
    cli_env: dict[str, str],
    services: Callable[..., Service],
    redis: Redis,
    settings: Settings,
    fake_github: FakeGitHub,
) -> None:
    """RESPONDER_JOB_TIMEOUT_SECONDS (given to each job when it is queued) is enforced in the worker's
    process: a run stuck in a step past it is stopped and recorded as failed ("run timed out"), and
    the same worker goes on with the next run."""
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=8)
    worker = services(service_env(cli_env), "worker", "worker")
    short = settings.model_copy(update={"job_timeout_seconds": 2})
    stuck = enqueue_example(redis, short, integrity(MANIFEST_DIGEST))
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(worker.log,))
    after = enqueue_example(redis, settings, "bias-firing.json")

    record = wait_until(lambda: finished(redis, stuck), "the stuck run to be failed", timeout=20, logs=(worker.log,))
    assert "failed" == record.status
    timed_out = record.step("verify-digest")
    assert timed_out is not None and "run timed out" == timed_out.error
    assert (record.error or "").startswith("timed out in verify-digest")
    assert "2 seconds" in (record.error or "")
    wait_until(  # RQ records the job's failure right after the run record
        lambda: Job.fetch(stuck, connection=redis).get_status() == JobStatus.FAILED, "RQ to fail the job"
    )
    following = wait_until(lambda: finished(redis, after), "the next run", timeout=20, logs=(worker.log,))
    assert "succeeded" == following.status, following.error
    assert worker.alive


def test_a_renewal_stops_before_the_run_is_recorded_and_kills_a_run_past_its_timeout(
    redis: Redis, settings: Settings
) -> None:
    """The renewal thread renews an in-process run's registry entry until released and not after;
    a run still going after its timeout plus the grace period gets the worker killed (the injected
    kill here), so the run is recovered as abandoned instead of running on unbounded."""
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    queue = Queue(settings.queue, connection=redis)
    worker = ResponderWorker([settings.queue], runtime=Runtime.build(settings), outages=Outages())
    worker.job_monitoring_interval = 0.05  # type: ignore[assignment]
    job = queue.fetch_job(job_id)
    assert job is not None
    execution = worker.prepare_execution(job)
    registry = queue.started_job_registry.key
    kills: list[bool] = []
    renewal = RunRenewal(worker, kill=lambda: kills.append(True))

    first = redis.zscore(registry, execution.composite_key)
    renewal.watch(job, execution)
    wait_until(lambda: redis.zscore(registry, execution.composite_key) != first, "a renewal")
    renewal.release()
    redis.zrem(registry, execution.composite_key)  # as RQ does when it records the end
    time.sleep(0.2)
    assert redis.zscore(registry, execution.composite_key) is None  # no renewal after release()
    assert [] == kills

    job.timeout = 1
    grace, RunRenewal.OVERRUN_GRACE = RunRenewal.OVERRUN_GRACE, -0.9
    try:
        renewal.watch(job, execution)
        wait_until(lambda: kills, "the overrunning run to be killed", timeout=5)
    finally:
        RunRenewal.OVERRUN_GRACE = grace
        renewal.release()
    assert [True] == kills


def test_a_run_abandoned_too_often_is_failed_with_the_reason(redis: Redis, settings: Settings) -> None:
    """A job whose worker died more than MAX_ABANDONED_REQUEUES times is not re-queued: its run
    is failed, saying why and how to retry it."""
    job_id = enqueue_example(redis, settings, integrity(MANIFEST_DIGEST))
    queue = Queue(settings.queue, connection=redis)
    job = queue.fetch_job(job_id)
    assert job is not None
    queue.remove(job_id)  # as if a worker had dequeued it and died running it
    job.meta["responder_abandoned"] = MAX_ABANDONED_REQUEUES
    job.save_meta()
    job.set_status(JobStatus.STARTED)
    redis.zadd(queue.started_job_registry.key, {f"{job_id}:dead-execution": time.time() - 5})
    worker = ResponderWorker([settings.queue], runtime=Runtime.build(settings), outages=Outages())

    assert [] == worker.requeue_abandoned(queue)
    worker.clean_registries()

    record = run_of(redis, job_id)
    assert "failed" == record.status
    assert f"stopped responding {MAX_ABANDONED_REQUEUES + 1} times" in (record.error or "")
    assert f"responder jobs retry {job_id}" in (record.error or "")
    assert JobStatus.FAILED == job.get_status()
    assert 0 == len(queue)


# --------------------------------------------------------------------------- Redis outage


def _post(base: str, name: str) -> requests.Response:
    payload = integrity(MANIFEST_DIGEST) if name == "integrity-firing.json" else load_example(name)
    return requests.post(f"{base}/webhooks/alertmanager", json=payload, headers=AUTH, timeout=15)


def test_receiver_answers_503_while_redis_is_down_and_202_only_once_the_job_is_stored(
    cli_env: dict[str, str], own_redis: RedisServer, services: Callable[..., Service]
) -> None:
    """With Redis down the webhook and /readyz answer 503 with Retry-After; after Redis is back the
    same notification gets 202, and its job survives Redis being killed right after."""
    env = service_env(cli_env, redis_url=own_redis.url)
    _, base = start_receiver(services, env)
    assert 200 == requests.get(f"{base}/readyz", timeout=5).status_code

    own_redis.stop()
    refused = _post(base, "integrity-firing.json")
    ready = requests.get(f"{base}/readyz", timeout=10)
    assert (503, 503) == (refused.status_code, ready.status_code)
    assert refused.headers.get("Retry-After") and ready.headers.get("Retry-After")

    own_redis.start()
    wait_until(lambda: requests.get(f"{base}/readyz", timeout=10).status_code == 200, "/readyz after the restart")
    accepted = _post(base, "integrity-firing.json")
    assert 202 == accepted.status_code, accepted.text
    [alert] = accepted.json()["alerts"]
    assert "queued" == alert["decision"]

    own_redis.stop(signal.SIGKILL)  # no chance to flush anything more: what 202 promised must be on disk
    own_redis.start()
    client = Redis.from_url(own_redis.url)
    job = Job.fetch(alert["job_id"], connection=client)
    assert JobStatus.QUEUED == job.get_status()
    assert [alert["job_id"]] == Queue("responder-test", connection=client).job_ids
    assert "queued" == run_of(client, alert["job_id"]).status


def test_a_frozen_redis_gets_503_inside_alertmanagers_timeout_and_the_run_is_queued_once(
    cli_env: dict[str, str], own_redis: RedisServer, services: Callable[..., Service]
) -> None:
    """Redis frozen (SIGSTOP) under a commit: the webhook answers 503 with Retry-After once the
    commit bound passes, before Alertmanager gives up (10 s). Redis applies the commit it had
    been sent when it resumes, so the retry finds the run queued already ("duplicate") or, had
    Redis dropped it, queues it then; either way the alert has exactly one job."""
    env = service_env(cli_env, redis_url=own_redis.url)
    _, base = start_receiver(services, env)
    assert 202 == _post(base, "bias-firing.json").status_code  # the receiver's connection is open
    assert own_redis.proc is not None

    own_redis.proc.send_signal(signal.SIGSTOP)
    try:
        frozen = requests.post(
            f"{base}/webhooks/alertmanager", json=integrity(MANIFEST_DIGEST), headers=AUTH, timeout=9.5
        )
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)
    assert 503 == frozen.status_code, frozen.text
    assert frozen.headers.get("Retry-After")

    retried = _post(base, "integrity-firing.json")
    assert 202 == retried.status_code, retried.text
    [alert] = retried.json()["alerts"]
    assert alert["decision"] in ("queued", "duplicate")
    job_ids = Queue("responder-test", connection=Redis.from_url(own_redis.url)).job_ids
    assert 1 == job_ids.count(alert["job_id"])


def test_worker_rides_out_a_redis_outage_mid_run_and_takes_new_work(
    cli_env: dict[str, str], own_redis: RedisServer, services: Callable[..., Service], fake_github: FakeGitHub
) -> None:
    """Redis stopped while a step is in flight and started again after the step ended: the run
    completes from its checkpoints, and a new alert posted afterwards runs to completion on the
    same worker process, never restarted."""
    env = service_env(cli_env, redis_url=own_redis.url, worker_ttl_seconds="6", maintenance_interval_seconds="1")
    _, base = start_receiver(services, env)
    worker = services(env, "worker", "worker")
    fake_github.fail_next("GET", MANIFEST_READ, status=None, delay=3)
    first = _post(base, "integrity-firing.json").json()["alerts"][0]["job_id"]
    wait_until(in_flight(fake_github, MANIFEST_READ), "the manifest read", logs=(worker.log,))

    own_redis.stop()  # the step ends while Redis is down: its result cannot be recorded
    time.sleep(5)
    own_redis.start()

    client = Redis.from_url(own_redis.url)
    record = wait_until(lambda: finished(client, first), "the interrupted run", timeout=60, logs=(worker.log,))
    assert "succeeded" == record.status, record.error
    assert ["POST"] == variable_writes(fake_github)  # the freeze, done before the outage, is not repeated
    second = _post(base, "bias-firing.json")
    assert 202 == second.status_code, second.text
    second_id = second.json()["alerts"][0]["job_id"]
    record = wait_until(lambda: finished(client, second_id), "the new run", timeout=30, logs=(worker.log,))
    assert "succeeded" == record.status, record.error
    assert worker.alive
    assert worker.events("worker.redis_reconnected") or worker.events("worker.heartbeat_failed")
