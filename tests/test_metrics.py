"""GET /metrics: the receiver's counters and what workers recorded in Redis, in one exposition."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from responder.metrics import WorkerMetrics
from responder.playbooks.catalog import load_catalog
from responder.receiver import create_app
from responder.store.redis_keys import metrics_key
from tests.conftest import ROOT, WEBHOOK_TOKEN, Worker, load_example, make_settings
from tests.support.runs import MANIFEST_DIGEST, integrity

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@pytest.fixture
def live(redis, redis_url, fake_github):
    return make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                         github_repo=fake_github.full_name)


@pytest.fixture
async def client(aiohttp_client, live):
    return await aiohttp_client(create_app(live, load_catalog(ROOT / "playbooks"), token=SecretStr(WEBHOOK_TOKEN)))


async def scrape(client) -> dict[str, list[Any]]:
    response = await client.get("/metrics")
    assert response.status == 200
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def test_received_alerts_and_decisions_are_counted(client):
    """Each alert counts once by alertname and its own status, and once by decision."""
    await client.post("/webhooks/alertmanager", json=load_example("drift-one-resolved-one-firing.json"), headers=AUTH)
    await client.post("/webhooks/alertmanager", json=load_example("drift-one-resolved-one-firing.json"), headers=AUTH)
    samples = await scrape(client)
    assert value(samples, "responder_alerts_received_total", alertname="model_drift_detected", status="firing") == 2
    assert value(samples, "responder_alerts_received_total", alertname="model_drift_detected", status="resolved") == 2
    assert value(samples, "responder_alert_decisions_total", decision="queued") == 2
    assert value(samples, "responder_alert_decisions_total", decision="duplicate") == 2


async def test_each_series_says_when_it_was_first_counted(client):
    """The counters' _created samples: when the receiver first counted that series, not when scraped."""
    before = time.time()
    await client.post("/webhooks/alertmanager", json=load_example("drift-one-resolved-one-firing.json"), headers=AUTH)
    after = time.time()
    await asyncio.sleep(0.05)
    await client.post("/webhooks/alertmanager", json=load_example("drift-one-resolved-one-firing.json"), headers=AUTH)
    samples = await scrape(client)
    created = [
        value(samples, "responder_alerts_received_created", alertname="model_drift_detected", status="firing"),
        value(samples, "responder_alerts_received_created", alertname="model_drift_detected", status="resolved"),
        value(samples, "responder_alert_decisions_created", decision="queued"),
    ]
    assert all(before <= at <= after for at in created), (before, created, after)


async def test_unknown_alertnames_share_one_label_value(client):
    """Untrusted alertnames cannot grow the label set: unknown ones count as "other"."""
    payload = load_example("bias-firing.json")
    payload["alerts"][0]["labels"]["alertname"] = "x" * 50
    await client.post("/webhooks/alertmanager", json=payload, headers=AUTH)
    samples = await scrape(client)
    assert value(samples, "responder_alerts_received_total", alertname="other") == 1


async def test_queue_depth_is_reported(client):
    """responder_queue_depth is the number of runs waiting."""
    await client.post("/webhooks/alertmanager", json=load_example("drift-two-segments-firing.json"), headers=AUTH)
    assert value(await scrape(client), "responder_queue_depth") == 2


async def test_worker_counts_reach_the_receivers_endpoint(client, live, fake_github):
    """Runs, step durations, external calls and GitHub's rate limit, counted by a worker, show on /metrics."""
    await client.post("/webhooks/alertmanager", json=integrity(MANIFEST_DIGEST), headers=AUTH)
    Worker(live).drain()
    samples = await scrape(client)
    assert value(samples, "responder_runs_total", playbook="model_integrity_failed", outcome="succeeded") == 1
    assert value(samples, "responder_step_duration_seconds_count", playbook="model_integrity_failed",
                 step="dispatch-governance", kind="dispatch_workflow") == 1
    assert value(samples, "responder_external_calls_total", system="github", outcome="ok") >= 4
    assert value(samples, "responder_github_ratelimit_remaining") > 0
    assert value(samples, "responder_queue_depth") == 0


async def test_failed_external_calls_are_counted_by_outcome(client, live, fake_github):
    """A 422 from GitHub counts as a failed call, a 502 as a transient one."""
    fake_github.fail_next("POST", r"/dispatches", status=422, body={"message": "Unexpected inputs"})
    fake_github.fail_next("POST", r"/issues$", status=502)
    await client.post("/webhooks/alertmanager", json=integrity(MANIFEST_DIGEST), headers=AUTH)
    Worker(live).drain()
    samples = await scrape(client)
    assert value(samples, "responder_external_calls_total", system="github", outcome="failed") == 1
    assert value(samples, "responder_external_calls_total", system="github", outcome="transient") == 1


def test_a_runs_counts_are_written_with_its_checkpoints_not_one_call_each(redis):
    """During a run (batching) observations wait in memory and are written in the round trip of the
    run record's next checkpoint; outside a run each is written at once."""
    recorder = WorkerMetrics(redis)
    recorder.external_call("github", "ok")
    assert {b"github|ok": b"1"} == redis.hgetall(metrics_key("calls"))

    with recorder.batching():
        recorder.external_call("github", "ok")
        recorder.external_call("github", "ok")
        recorder.github_ratelimit(4990)
        recorder.step_finished("drift", "open-incident", "open_incident", 0.2)
        assert {b"github|ok": b"1"} == redis.hgetall(metrics_key("calls"))  # not yet
        with redis.pipeline(transaction=False) as pipe:
            pipe.set("checkpoint", "1")
            with recorder.write_into(pipe):
                pipe.execute()
        assert {b"github|ok": b"3"} == redis.hgetall(metrics_key("calls"))
        assert b"4990" == redis.get(metrics_key("github_ratelimit_remaining"))
        assert {b"drift|open-incident|open_incident|0.25": b"1"} == redis.hgetall(metrics_key("steps"))
        recorder.run_finished("drift", "succeeded")
    assert {b"drift|succeeded": b"1"} == redis.hgetall(metrics_key("runs"))  # what was left, at the end


def test_counts_of_a_checkpoint_that_failed_are_kept_for_the_next(redis):
    """When the checkpoint's round trip fails (Redis down), the counts it carried are written with the next one."""
    recorder = WorkerMetrics(redis)
    with recorder.batching():
        recorder.external_call("github", "ok")
        with pytest.raises(RuntimeError), redis.pipeline(transaction=False) as pipe, recorder.write_into(pipe):
            raise RuntimeError("Redis went away")
        recorder.external_call("github", "ok")
    assert {b"github|ok": b"2"} == redis.hgetall(metrics_key("calls"))
