"""GitHub's webhook (issue 18, "GitHub webhooks", first slice): `POST /webhooks/github` takes only
deliveries signed with RESPONDER_GITHUB_WEBHOOK_SECRET as GitHub signs them (X-Hub-Signature-256),
ignores a repeated X-GitHub-Delivery, and settles a followed workflow run at once on
`workflow_run` `completed`. Real Redis, the receiver app over HTTP, an RQ worker in this process,
the GitHub fake over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis import Redis
from rq import Queue

from responder.github_events import signature
from responder.playbooks.catalog import Catalog
from responder.receiver import create_app
from responder.runs import RunStore
from responder.settings import Settings
from tests.conftest import WEBHOOK_TOKEN, Worker, following_settings, load_example
from tests.fakes.github import FakeGitHub
from tests.support.github import workflow_comments
from tests.support.runs import queue_runs

SECRET = "webhook-secret-0123456789"
ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    """Following as in production but polled only every 10 minutes: only the webhook can settle a run here."""
    base = following_settings(redis_url, fake_github)
    return base.model_copy(update={"follow_poll_seconds": 600.0, "github_webhook_secret": SecretStr(SECRET)})


@pytest.fixture
async def github(aiohttp_client: ClientFactory, settings: Settings, catalog: Catalog) -> TestClient:
    return await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))


def delivery(event: str, payload: dict[str, Any], *, secret: str | None = SECRET,
             delivery_id: str | None = None) -> dict[str, Any]:
    """The body and headers GitHub posts for ``event`` (signed with ``secret``; None: unsigned)."""
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
               "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return {"data": body, "headers": headers}


def completed(run_id: int) -> dict[str, Any]:
    return {"action": "completed", "workflow_run": {"id": run_id, "status": "completed", "conclusion": "success"}}


def dispatched_run(settings: Settings, redis: Redis, fake_github: FakeGitHub) -> tuple[str, int]:
    """A drift run that dispatched retraining, run to its end; its job id and the workflow run's id."""
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    [job_id] = queue_runs(settings, redis, payload)
    Worker(settings).drain()
    [followed] = RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(job_id).workflow_runs
    return job_id, int(followed.run_id)


def queued_jobs(settings: Settings, redis: Redis) -> list[str]:
    return Queue(settings.queue, connection=redis).job_ids


async def test_a_completed_workflow_run_is_settled_at_once(github, settings, redis, fake_github):
    """GitHub says the retraining run completed: the ticket hears how it ended now, not at the next
    scheduled poll 10 minutes away (which stays scheduled as the fallback)."""
    job_id, run_id = dispatched_run(settings, redis, fake_github)
    time.sleep(fake_github.queued_seconds + fake_github.running_seconds + 0.2)  # the fake's run completes
    response = await github.post("/webhooks/github", **delivery("workflow_run", completed(run_id)))
    assert (response.status, (await response.json())["status"]) == (202, "settling")
    Worker(settings).drain()
    record = RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(job_id)
    assert record.workflow_runs[0].reported and record.workflow_runs[0].conclusion == "success"
    [comment] = workflow_comments(fake_github)
    assert str(run_id) in comment
    scheduled = Queue(settings.queue, connection=redis).scheduled_job_registry.get_job_ids()
    assert f"{job_id}-follow-dispatch-retraining-1" in scheduled


@pytest.mark.parametrize(
    ("secret", "why"),
    [("not-the-secret", "X-Hub-Signature-256 does not match the body"), (None, "missing X-Hub-Signature-256")],
)
async def test_a_forged_or_unsigned_delivery_is_refused_and_changes_nothing(github, settings, redis, fake_github,
                                                                            secret, why):
    _, run_id = dispatched_run(settings, redis, fake_github)
    response = await github.post("/webhooks/github", **delivery("workflow_run", completed(run_id), secret=secret))
    assert (response.status, (await response.json())["error"]) == (401, why)
    assert queued_jobs(settings, redis) == []


async def test_without_a_secret_every_delivery_is_refused(aiohttp_client, settings, catalog, redis):
    app = create_app(settings.model_copy(update={"github_webhook_secret": None}), catalog,
                     token=SecretStr(WEBHOOK_TOKEN))
    client = await aiohttp_client(app)
    response = await client.post("/webhooks/github", **delivery("workflow_run", completed(1)))
    assert response.status == 401
    assert "RESPONDER_GITHUB_WEBHOOK_SECRET is not set" in (await response.json())["error"]


async def test_a_repeated_delivery_is_ignored(github, settings, redis, fake_github):
    """GitHub re-sends a delivery it thinks failed: the repeat queues nothing more."""
    _, run_id = dispatched_run(settings, redis, fake_github)
    sent = delivery("workflow_run", completed(run_id), delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = await github.post("/webhooks/github", **sent)
    again = await github.post("/webhooks/github", **sent)
    assert [first.status, again.status] == [202, 202]
    assert (await again.json())["status"] == "duplicate"
    assert len([j for j in queued_jobs(settings, redis) if "-follow-" in j]) == 1


@pytest.mark.parametrize(
    ("event", "payload", "status"),
    [
        ("push", {"ref": "refs/heads/main"}, "ignored"),
        ("workflow_run", {"action": "requested", "workflow_run": {"id": 5}}, "ignored"),
        ("workflow_run", completed(424242), "not followed"),
    ],
)
async def test_events_responder_does_not_act_on_are_accepted_and_ignored(github, settings, redis, event, payload,
                                                                        status):
    response = await github.post("/webhooks/github", **delivery(event, payload))
    assert (response.status, (await response.json())["status"]) == (202, status)
    assert queued_jobs(settings, redis) == []
