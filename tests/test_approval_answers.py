"""Answering an approval on the incident ticket (`/approve`, `/reject <reason>` comments, through the
signed GitHub webhook) and on the runs page (a form behind its token), issue 18. The shipped
model_integrity_failed playbook proposes a rollback when the digests differ: it asks on the ticket
and waits for one approver of ml-lead and one of responsible-ai. Real Redis, the receiver app over
HTTP, an RQ worker in this process, the GitHub and toggle fakes over HTTP."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from redis import Redis

from responder.github_events import command_of, signature
from responder.playbooks.catalog import Catalog
from responder.receiver import create_app
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import TEST_APPROVERS, WEBHOOK_TOKEN, Worker, integration_settings, load_example, wait_until
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.github import with_previous_version
from tests.support.processes import service_env, start_receiver
from tests.support.runs import MANIFEST_DIGEST, integrity, queue_runs

SECRET = "webhook-secret-approvals-0123"
ClientFactory = Callable[..., Awaitable[TestClient]]
LEAD, RAI = TEST_APPROVERS["ml-lead"][0], TEST_APPROVERS["responsible-ai"][0]
ROLLBACK = ["rollback.find-previous-version", "rollback.dispatch-governance", "rollback.retag-endpoint",
            "rollback.note-incident"]


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub, fake_toggles: FakeToggles,
             fake_jira: FakeJira) -> Settings:
    with_previous_version(fake_github)
    return integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira,
                                github_webhook_secret=SecretStr(SECRET))


@pytest.fixture
async def receiver(aiohttp_client: ClientFactory, settings: Settings, catalog: Catalog) -> TestClient:
    return await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))


def waiting_integrity_run(settings: Settings, redis: Redis) -> str:
    """The sample integrity alert (its deployed digest differs from the manifest's), run until it
    waits for approval of the rollback it proposes; its run id."""
    [run_id] = queue_runs(settings, redis, load_example("integrity-firing.json"))
    Worker(settings).drain()
    return run_id


def record_of(settings: Settings, redis: Redis, run_id: str) -> RunRecord:
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(run_id)


def comment(fake: FakeGitHub, login: str, body: str, *, secret: str = SECRET) -> dict[str, Any]:
    """The `issue_comment` `created` delivery GitHub posts for ``login`` commenting ``body`` on the
    incident ticket (signed with ``secret``)."""
    [issue] = fake.issues
    payload = {
        "action": "created",
        "issue": {"number": int(issue.html_url.rsplit("/", 1)[1]), "html_url": issue.html_url, "title": issue.title,
                  "state": "open"},
        "comment": {"id": 1, "body": body, "user": {"login": login}},
        "repository": {"full_name": fake.full_name},
        "sender": {"login": login, "type": "User"},
    }
    raw = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": str(uuid.uuid4()),
               "Content-Type": "application/json", "X-Hub-Signature-256": signature(secret, raw)}
    return {"data": raw, "headers": headers}


async def say(receiver: TestClient, fake: FakeGitHub, login: str, body: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    response = await receiver.post("/webhooks/github", **comment(fake, login, body, **kw))
    return response.status, await response.json()


def last_comment(fake: FakeGitHub) -> str:
    [issue] = fake.issues
    return issue.comments[-1].replace("\\", "").strip()


# --------------------------------------------------------------------------- the shipped playbook


def test_a_digest_mismatch_proposes_the_rollback_and_asks_on_the_ticket(settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    record = record_of(settings, redis, run_id)
    assert (record.status, record.step("approve-rollback").status) == ("awaiting_approval", "waiting")
    assert {record.step(name).detail for name in ROLLBACK} == {"waits for approve-rollback (approval)"}
    asked = last_comment(fake_github)
    assert f"Comment /approve, or /reject and a reason, here, or run: responder approve {run_id} " in asked


def test_matching_digests_propose_no_rollback(settings, redis, fake_github):
    [run_id] = queue_runs(settings, redis, integrity(MANIFEST_DIGEST))
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert record.status == "succeeded"
    assert record.step("approve-rollback").detail == "condition not met: verify-digest found=mismatch"


async def test_approve_comments_from_each_group_run_the_rollback(receiver, settings, redis, fake_github,
                                                                 fake_toggles):
    """Done when: an integrity mismatch ends, after /approve from one person of each group, in the rollback."""
    run_id = waiting_integrity_run(settings, redis)
    assert (await say(receiver, fake_github, LEAD, "/approve"))[0] == 202
    status, body = await say(receiver, fake_github, RAI, "/approve looks right")
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert (status, body["outcome"]) == (202, f"Approved by {RAI} (ticket comment): looks right. "
                                              f"approved run {run_id} as {RAI}: the run goes on.")
    assert record.status == "succeeded"
    assert [record.step(name).status for name in ROLLBACK] == ["ok"] * 4
    assert [(a.who, a.how) for a in record.approvals] == [(LEAD, "ticket comment"), (RAI, "ticket comment")]
    assert [d.inputs["REASON"] for d in fake_github.dispatches] == ["model_integrity_failed", "rollback"]
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.10.3"


async def test_the_outcome_of_a_comment_is_replied_on_the_ticket(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    await say(receiver, fake_github, LEAD, "/approve")
    Worker(settings).drain()
    assert last_comment(fake_github) == (f"{LEAD}: Approved by {LEAD} (ticket comment). approved run {run_id} "
                                         f"as {LEAD}; still waiting for responsible-ai.")


async def test_a_comment_from_a_non_approver_does_not_count(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    status, body = await say(receiver, fake_github, "mallory", "/approve")
    assert status == 202
    assert body["outcome"] == (f"not counted: run {run_id}: mallory is not an approver of ml-lead or "
                               "responsible-ai (RESPONDER_APPROVERS).")
    assert record_of(settings, redis, run_id).approvals == []


async def test_a_reject_comment_ends_the_run_and_skips_the_rollback(receiver, settings, redis, fake_github,
                                                                    fake_toggles):
    run_id = waiting_integrity_run(settings, redis)
    await say(receiver, fake_github, RAI, "/reject the deployed artifact is the hotfix")
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert (record.status, record.step("approve-rollback").error) == (
        "failed", f"rejected by {RAI}: the deployed artifact is the hotfix")
    assert {record.step(name).status for name in ROLLBACK} == {"skipped"}
    assert fake_toggles.requests == []


async def test_a_reject_without_a_reason_does_not_count(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    _, body = await say(receiver, fake_github, RAI, "/reject")
    assert body["outcome"] == "a rejection needs a reason: /reject <reason>"
    assert record_of(settings, redis, run_id).approvals == []


async def test_a_forged_comment_changes_nothing(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    status, _ = await say(receiver, fake_github, LEAD, "/approve", secret="not-the-secret")
    assert status == 401
    assert record_of(settings, redis, run_id).approvals == []


async def test_a_comment_on_a_ticket_where_nothing_waits_is_answered_so(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    await say(receiver, fake_github, RAI, "/reject no")
    Worker(settings).drain()
    _, body = await say(receiver, fake_github, LEAD, "/approve")
    assert body["outcome"] == "no run waits for approval on this ticket."
    assert [a.who for a in record_of(settings, redis, run_id).approvals] == [RAI]


@pytest.mark.parametrize(("text", "command"), [
    ("/approve", ("approve", None)),
    ("  /Approve  ship it \nthanks", ("approve", "ship it")),
    ("/reject too risky", ("reject", "too risky")),
    ("\n\n/reject", ("reject", None)),
    ("I /approve of this", None),
    ("/approved", None),
    ("> /approve\nquoted", None),
])
def test_a_command_is_the_comments_first_line(text, command):
    assert command_of(text) == command


# --------------------------------------------------------------------------- the runs page


def basic(token: str = WEBHOOK_TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"oncall:{token}".encode()).decode()}


async def form_key(receiver: TestClient, run_id: str) -> str:
    page = await (await receiver.get(f"/runs/{run_id}", headers=basic())).text()
    match = re.search(r'name="key" value="([0-9a-f]+)"', page)
    assert match is not None, "the waiting run's page has no answer form"
    return match.group(1)


async def post_answer(receiver: TestClient, run_id: str, key: str, who: str, decision: str,
                      reason: str = "") -> tuple[int, str]:
    response = await receiver.post(f"/runs/{run_id}/answer", headers=basic(),
                                   data={"key": key, "as": who, "decision": decision, "reason": reason})
    return response.status, " ".join(re.sub(r"<[^>]+>", " ", await response.text()).split())


async def test_the_runs_page_answers_an_approval(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    key = await form_key(receiver, run_id)
    await post_answer(receiver, run_id, key, LEAD, "approve")
    status, text = await post_answer(receiver, run_id, key, RAI, "approve", "checked the digest")
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert status == 200
    assert f"Approved by {RAI} (runs page): checked the digest." in text
    assert (record.status, [a.how for a in record.approvals]) == ("succeeded", ["runs page", "runs page"])


async def test_a_page_answer_is_said_on_the_ticket(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    await post_answer(receiver, run_id, await form_key(receiver, run_id), LEAD, "approve")
    Worker(settings).drain()
    assert last_comment(fake_github).startswith(f"Run {run_id}: Approved by {LEAD} (runs page).")


async def test_a_page_refusal_says_why(receiver, settings, redis, fake_github):
    run_id = waiting_integrity_run(settings, redis)
    status, text = await post_answer(receiver, run_id, await form_key(receiver, run_id), "mallory", "approve")
    assert status == 409
    assert f"run {run_id}: mallory is not an approver of ml-lead or responsible-ai" in text


async def test_a_post_without_the_pages_key_is_refused(receiver, settings, redis, fake_github):
    """Another site's form cannot answer for someone signed in: the browser sends the token, not the key."""
    run_id = waiting_integrity_run(settings, redis)
    status, _ = await post_answer(receiver, run_id, "0" * 64, LEAD, "approve")
    assert status == 403
    assert record_of(settings, redis, run_id).approvals == []


async def test_a_run_that_does_not_wait_shows_no_form(receiver, settings, redis, fake_github):
    [run_id] = queue_runs(settings, redis, load_example("bias-firing.json"))
    Worker(settings).drain()
    page = await (await receiver.get(f"/runs/{run_id}", headers=basic())).text()
    assert 'name="key"' not in page



async def test_a_bots_comment_answers_nothing(receiver, settings, redis, fake_github):
    """responder's own comments come back as deliveries too (GitHub sends them): a Bot sender is ignored."""
    run_id = waiting_integrity_run(settings, redis)
    delivery = comment(fake_github, LEAD, "/approve")
    payload = json.loads(delivery["data"])
    payload["sender"]["type"] = "Bot"
    raw = json.dumps(payload).encode()
    delivery.update(data=raw, headers={**delivery["headers"], "X-Hub-Signature-256": signature(SECRET, raw)})
    response = await receiver.post("/webhooks/github", **delivery)
    assert (response.status, (await response.json())["status"]) == (202, "ignored")
    assert record_of(settings, redis, run_id).approvals == []


# --------------------------------------------------------------------------- real processes


def test_an_integrity_mismatch_ends_in_the_rollback_after_two_approve_comments(
    services, cli_env, redis, fake_github, fake_toggles, tmp_path
):
    """Done when (issue 18): a real receiver and worker; GitHub's own signed deliveries of two
    `/approve` comments, one per group, on the incident ticket; the rollback runs."""
    with_previous_version(fake_github)
    for login in (LEAD, RAI):
        fake_github.add_user(login)
    env = service_env(cli_env, github_webhook_secret=SECRET)
    _, base = start_receiver(services, env)
    worker = services(env, "worker", "worker")
    fake_github.hook(f"{base}/webhooks/github", SECRET, events=["issue_comment"])
    posted = requests.post(f"{base}/webhooks/alertmanager", json=load_example("integrity-firing.json"),
                           headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=10)
    assert posted.status_code == 202
    runs = RunStore(redis, retention_seconds=3600)
    [run_id] = [r.id for r in wait_until(lambda: runs.recent(status="awaiting_approval"), "the run waiting",
                                         logs=(worker.log,))]
    [issue] = fake_github.issues
    number = int(issue.html_url.rsplit("/", 1)[1])
    fake_github.comment_as(number, LEAD, "/approve")
    fake_github.comment_as(number, RAI, "/approve digests checked")
    record = wait_until(lambda: (r := runs.get(run_id)).status == "succeeded" and r, "the approved rollback",
                        logs=(worker.log,))
    assert [record.step(name).status for name in ROLLBACK] == ["ok"] * 4
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.10.3"
    assert [(a.who, a.how) for a in record.approvals] == [(LEAD, "ticket comment"), (RAI, "ticket comment")]
