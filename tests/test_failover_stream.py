"""No acknowledged alert lost in a failover (issue 19): several senders post a steady stream of
distinct alerts, retrying a 503 or a lost answer as Alertmanager does, while the Redis master is
killed with SIGKILL. With RESPONDER_REDIS_MIN_REPLICAS=1 and two replicas, one is promoted and the
other follows it. Afterwards every alert that got a 202 has exactly one run, and every run ended.
Real `responder serve` and `responder worker` processes, a real master, two replicas and three
Sentinels."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from responder.runs import RunStore
from tests.conftest import WEBHOOK_TOKEN, free_port, load_example, wait_until
from tests.support.processes import service_env, start_receiver
from tests.support.sentinel import SERVICE, SentinelCluster

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
SENDERS = 4
RETRY_SECONDS = 0.2  # Alertmanager backs off longer; the test wants many retries through the failover


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A master, two replicas and three Sentinels."""
    workdir = tmp_path / "sentinel"
    workdir.mkdir()
    servers = SentinelCluster(workdir)
    try:
        servers.start()
        second = free_port()
        servers.start_server(second, "--replicaof", "127.0.0.1", str(servers.master_port))
        wait_until(lambda: online_replicas(servers, servers.master_port) == 2, "both replicas online", timeout=30)
        yield servers
    finally:
        servers.stop()


def online_replicas(servers: SentinelCluster, port: int) -> int:
    info = servers.client(port).info("replication")
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return sum(1 for v in replicas if v.get("state") == "online")


def events(log: Path) -> Iterator[dict[str, Any]]:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                yield event


def steps_done_twice(log: Path) -> list[tuple[str, str]]:
    """(run, step) that the worker's log shows done (ok or planned) more than once."""
    done = Counter((e.get("job_id"), e.get("step")) for e in events(log)
                   if e.get("event") == "step.finished" and e.get("status") in ("ok", "planned"))
    return [(str(job), str(step)) for (job, step), count in done.items() if count > 1]


def requeued_abandoned(log: Path) -> set[str]:
    """Runs whose worker stopped answering mid-run, taken up again (the one step in flight may run twice)."""
    return {str(e.get("job_id")) for e in events(log) if e.get("event") == "run.requeued_abandoned"}


def alert(sender: int, number: int) -> dict[str, Any]:
    """A notification with one distinct firing bias alert (a dry run: nothing to GitHub)."""
    payload = copy.deepcopy(load_example("bias-firing.json"))
    [first] = payload["alerts"][:1]
    first["labels"]["model_id"] = f"model-{sender}-{number}"
    first["fingerprint"] = f"{sender:04x}{number:012x}"
    payload["alerts"] = [first]
    return payload


class Sender(threading.Thread):
    """Posts distinct alerts one after another; each is sent again until it gets a 202, like
    Alertmanager (which retries 5xx and lost answers)."""

    def __init__(self, base: str, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.index, self.stop_sending = base, index, stop
        self.acknowledged: list[str] = []  # fingerprints answered 202
        self.retries = 0

    def run(self) -> None:
        number = 0
        while not self.stop_sending.is_set():
            payload = alert(self.index, number)
            while True:
                try:
                    answer = requests.post(f"{self.base}/webhooks/alertmanager", json=payload, headers=AUTH,
                                           timeout=10)
                    if answer.status_code == 202:
                        self.acknowledged.append(payload["alerts"][0]["fingerprint"])
                        break
                except requests.RequestException:
                    pass
                self.retries += 1
                time.sleep(RETRY_SECONDS)
            number += 1


def test_every_acknowledged_alert_has_exactly_one_run_after_the_master_is_killed(services, cli_env, cluster):
    env = service_env(cli_env, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_sentinels=cluster.sentinels,
                      redis_sentinel_master=SERVICE, redis_min_replicas="1", dry_run="true",
                      storm_max_runs="1000000", worker_ttl_seconds="4", maintenance_interval_seconds="1",
                      dispatch_lookup_seconds="3",  # a worker killed mid-dispatch: its retry looks 3 s for the run
                      job_retry_intervals="[1, 5, 15, 30, 60]")  # meeting its lost attempt's ticket lock, it waits
    _, base = start_receiver(services, env)
    worker = services(env, "worker", "worker")
    stop = threading.Event()
    senders = [Sender(base, i, stop) for i in range(SENDERS)]
    for sender in senders:
        sender.start()
    time.sleep(2)
    old = cluster.master_port
    cluster.kill(old)
    new = cluster.wait_for_failover(old)
    wait_until(lambda: sum(len(s.acknowledged) for s in senders) > 0 and online_replicas(cluster, new) == 1,
               "the new master's replica")
    time.sleep(3)  # alerts keep coming after the failover
    stop.set()
    for sender in senders:
        sender.join(timeout=30)
    acknowledged = [fingerprint for s in senders for fingerprint in s.acknowledged]
    runs = RunStore(cluster.client(new), retention_seconds=3600)

    def all_ended() -> list[Any] | None:
        records = runs.recent(limit=len(acknowledged) + 100)
        return records if len(records) >= len(acknowledged) and all(r.ended_at for r in records) else None

    records = wait_until(all_ended, "every acknowledged alert's run to end", timeout=240, logs=(worker.log,))
    by_fingerprint: dict[str, int] = {}
    for record in records:
        by_fingerprint[record.alert.fingerprint] = by_fingerprint.get(record.alert.fingerprint, 0) + 1
    assert sum(s.retries for s in senders) > 0  # the failover was felt: some answers were 503 or lost
    assert {f: by_fingerprint.get(f, 0) for f in acknowledged} == {f: 1 for f in acknowledged}
    assert {r.status for r in records} == {"succeeded"}
    repeated = steps_done_twice(worker.log)  # beyond the step in flight when its worker lost Redis: none
    assert all(count == 1 for count in Counter(job for job, _ in repeated).values()), repeated
    assert {job for job, _ in repeated} <= requeued_abandoned(worker.log), repeated
