"""Several receivers behind one address behave as one (issue 19): two real `responder serve`
processes on one Redis, fed the same notifications at the same time as an HA Alertmanager pair
does, queue one run per firing instance, and share the storm guard's counter. Real Redis, real
receiver processes, no worker (what is queued is the question)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from redis import Redis

from responder.runs import RunStore
from tests.conftest import WEBHOOK_TOKEN
from tests.support.processes import Service, service_env, start_receiver
from tests.support.runs import drift_for

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def two_receivers(services: Callable[..., Service], cli_env: dict[str, str], **settings: str) -> list[str]:
    env = service_env(cli_env, **settings)
    return [start_receiver(services, env, name)[1] for name in ("receiver-a", "receiver-b")]


def post_all(deliveries: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Post every (receiver, notification) at once, as two Alertmanagers do; each answer's body."""
    def post(delivery: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        base, payload = delivery
        answer = requests.post(f"{base}/webhooks/alertmanager", json=payload, headers=AUTH, timeout=15)
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        return body

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(post, deliveries))


def queued_runs(redis: Redis) -> list[str]:
    return sorted(r.alert.labels["model_id"] for r in RunStore(redis, retention_seconds=3600).recent(limit=500))


def test_two_receivers_fed_the_same_notifications_queue_one_run_per_instance(services, cli_env, redis):
    bases = two_receivers(services, cli_env)
    models = [f"model-{i}" for i in range(10)]
    notifications = [drift_for(models[i : i + 2], offset=i) for i in range(0, 10, 2)]
    post_all([(base, n) for n in notifications for base in bases for _ in range(3)])  # each sent 3 times to each
    assert queued_runs(redis) == models


def test_two_receivers_share_the_storm_guards_counter(services, cli_env, redis):
    """With a limit of 4 runs a window, 8 distinct alerts split across the two receivers run 4 times in all."""
    bases = two_receivers(services, cli_env, storm_max_runs="4")
    answers = post_all([(bases[i % 2], drift_for([f"model-{i}"], offset=i)) for i in range(8)])
    decisions = [a["decision"] for answer in answers for a in answer["alerts"]]
    assert sorted(decisions) == ["queued"] * 4 + ["suppressed"] * 4
