"""Change requests with evidence (issue 18): a retraining run that responder dispatched concludes
`success`; governance runs for the version its training summary proposes; a pull request updates the
model's manifest entry, carries the evidence, asks the ml-lead and responsible-ai approvers, and the
incident ticket hears of it, of the approvals, of changes requested, and of the merge or close.
Real Redis, the GitHub fake over HTTP (pull requests, reviews, teams, signed webhook deliveries), an
RQ worker in this process, and once real `responder serve` and `responder worker` processes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from redis import Redis

from responder import change_requests
from responder.manifest_edit import set_model_version
from responder.runs import RunStore
from responder.settings import Settings
from tests.conftest import Worker, following_settings, load_example, run_cli, wait_until
from tests.fakes.github import FakeGitHub
from tests.support.github import GOVERNANCE, RETRAINING
from tests.support.processes import service_env, start_receiver
from tests.support.runs import queue_runs

APPROVERS = {"ml-lead": ["lee", "dana"], "responsible-ai": ["@acme/rai-reviewers"]}
VERSION = "2026.12.0"
DIGEST = "ab" * 32
STEP = "dispatch-retraining"
BRANCH = f"responder/fraud-scorer-{VERSION}"
SECRET = "change-request-secret-0123456789"


def summary(**changes: Any) -> dict[str, Any]:
    """training-summary.json as model-retraining.yml uploads it."""
    return {
        "modelId": "fraud-scorer",
        "version": VERSION,
        "artifact": {"uri": f"s3://ml-artifacts/fraud-scorer/{VERSION}/model.onnx", "sha256": DIGEST},
        "metrics": {"auc": 0.931, "precision_at_1pct": 0.72},
        "status": "pass",
        **changes,
    }


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub) -> Settings:
    fake_github.add_user("lee")
    fake_github.add_user("dana")
    fake_github.add_team("rai-reviewers", ["rai", "dana"])
    base = following_settings(redis_url, fake_github)
    return base.model_copy(update={"approvers": APPROVERS, "change_request_poll_seconds": 600.0})


def not_review_polls(job_id: str) -> bool:
    return "-poll-" not in job_id


def drift(settings: Settings, redis: Redis, worker: Worker, fake_github: FakeGitHub,
          artifacts: dict[str, Any] | None = None) -> str:
    """A drift alert runs; its retraining run gets ``artifacts`` (default: the training summary, the
    bias report and the security scan) and everything but the review polls runs to its end."""
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    [job_id] = queue_runs(settings, redis, payload)
    worker.drain()
    [retraining] = fake_github.dispatches
    given = artifacts if artifacts is not None else {
        "training-summary.json": {"training-summary.json": summary()},
        "bias-report.json": {"bias-report.json": {"status": "pass", "disparate_impact": 0.93}},
        "security-scan.json": {"security-scan.json": {"status": "pass", "findings": 0}},
    }
    for name, files in given.items():
        fake_github.add_artifact(retraining.run_id, name, files)
    worker.drain_scheduled(not_review_polls)
    return job_id


def ticket_comments(fake: FakeGitHub) -> list[str]:
    return [c.replace("\\", "") for issue in fake.issues for c in issue.comments
            if "hange request" in c]


def record(settings: Settings, redis: Redis, job_id: str) -> Any:
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(job_id)


def test_a_successful_retraining_ends_in_a_pull_request_with_the_evidence_and_review_requests(
    settings, redis, fake_github, worker
):
    """Retraining succeeds: governance runs for the new version (REASON=change-request) and succeeds; the
    pull request on responder/fraud-scorer-<version> changes only the entry's version and digest, names
    each piece of evidence, links both runs and the ticket, asks lee, dana and the team, and the ticket links it."""
    job_id = drift(settings, redis, worker, fake_github)

    retraining, governance = fake_github.dispatches
    assert (RETRAINING, GOVERNANCE) == (retraining.workflow, governance.workflow)
    assert {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": VERSION, "REASON": "change-request"} == governance.inputs
    [pull] = fake_github.pulls
    assert (BRANCH, "main", f"[change-request] fraud-scorer {VERSION}") == (pull.head, pull.base, pull.title)
    before = fake_github.file_at(settings.manifest_path).decode()
    after = fake_github.file_at(settings.manifest_path, BRANCH).decode()
    expected, _ = set_model_version(before, "fraud-scorer", version=VERSION, sha256=DIGEST,
                                    uri=f"s3://ml-artifacts/fraud-scorer/{VERSION}/model.onnx")
    assert expected == after
    body = (pull.body or "").replace("\\", "")
    for text in ("training-summary.json", "bias-report.json", "security-scan.json", "auc", "0.931",
                 retraining.html_url, governance.html_url, fake_github.issues[0].html_url, DIGEST):
        assert text in body
    assert ["lee", "dana"] == pull.requested_reviewers and ["rai-reviewers"] == pull.requested_teams
    [opened] = [c.replace("\u200d", "") for c in ticket_comments(fake_github)]  # "@" made inert
    assert pull.html_url in opened and "reviews requested from lee, dana, @acme/rai-reviewers" in opened
    [change] = record(settings, redis, job_id).change_requests
    assert ("open", pull.number, VERSION) == (change.status, change.pull_number, change.version)


def test_the_manifest_edit_keeps_every_other_byte():
    """Odd spacing, key order, escapes and no trailing newline survive; only the entry's values change."""
    text = ('{"models":[ {"artifact" : {"sha256":"aa",  "uri":"s3://x/\\u0041"},\n'
            '"modelId":"fraud-scorer","version" :"1.0"},{"modelId":"other","version":"1.0"}],"note":"é"}')
    edited, changes = set_model_version(text, "fraud-scorer", version="1.1", sha256="bb")
    assert text.replace('"aa"', '"bb"').replace('"version" :"1.0"', '"version" :"1.1"') == edited
    assert ["version", "artifact.sha256"] == [c.path for c in changes]


def test_a_failed_governance_run_opens_no_pull_request_and_the_ticket_says_why(settings, redis, fake_github, worker):
    """Governance of the new version concludes failure: no branch, no pull request; the ticket says so."""
    fake_github.conclusions[GOVERNANCE] = "failure"
    job_id = drift(settings, redis, worker, fake_github)

    assert [] == fake_github.pulls and BRANCH not in fake_github.branches
    [refused] = ticket_comments(fake_github)
    assert "concluded failure: no pull request is opened" in refused
    assert "refused" == record(settings, redis, job_id).change_requests[0].status


@pytest.mark.parametrize("conclusion", ["failure", "cancelled"])
def test_a_retraining_run_that_did_not_succeed_proposes_nothing(settings, redis, fake_github, worker, conclusion):
    """Retraining concludes failure or cancelled: no governance dispatch, no pull request, no change request."""
    fake_github.conclusions[RETRAINING] = conclusion
    job_id = drift(settings, redis, worker, fake_github)

    assert [RETRAINING] == [d.workflow for d in fake_github.dispatches]
    assert ([], []) == (fake_github.pulls, record(settings, redis, job_id).change_requests)


@pytest.mark.parametrize(
    ("artifacts", "why"),
    [
        ({}, "uploaded no training-summary artifact"),
        ({"training-summary.json": {"training-summary.json": "{not json"}}, "is not valid JSON"),
        ({"training-summary.json": {"training-summary.json": summary(artifact={"sha256": "short"})}},
         "artifact.sha256 is not a sha256 digest"),
    ],
)
def test_a_missing_or_unreadable_training_summary_opens_nothing_and_the_ticket_says_why(
    settings, redis, fake_github, worker, artifacts, why
):
    """No training summary, or one that cannot be read: no governance dispatch, no pull request; the ticket says why."""
    drift(settings, redis, worker, fake_github, artifacts)

    assert ([RETRAINING], []) == ([d.workflow for d in fake_github.dispatches], fake_github.pulls)
    [refused] = ticket_comments(fake_github)
    assert why in refused


def test_missing_evidence_is_said_to_be_missing(settings, redis, fake_github, worker):
    """Without a security scan among the runs' artifacts, the body says it is missing."""
    drift(settings, redis, worker, fake_github, {"training-summary.json": {"training-summary.json": summary()}})

    [pull] = fake_github.pulls
    body = (pull.body or "").replace("\\", "")
    assert "| security scan summary | security-scan | - | missing |" in body


def test_approvals_of_each_group_by_two_people_are_said_once(settings, redis, fake_github, worker):
    """lee (ml-lead) and rai (the responsible-ai team) approve: the ticket says "approved by lee (ml-lead)
    and rai (responsible-ai)" once, however many times the pull request is read again."""
    job_id = drift(settings, redis, worker, fake_github)
    [pull] = fake_github.pulls
    fake_github.submit_review(pull.number, "lee", "APPROVED")
    change_requests.advance(worker.runtime, job_id, STEP)
    fake_github.submit_review(pull.number, "rai", "APPROVED")
    change_requests.advance(worker.runtime, job_id, STEP)
    change_requests.advance(worker.runtime, job_id, STEP)

    approved = [c for c in ticket_comments(fake_github) if "approved by" in c]
    said = [c[c.index("approved by"):].strip() for c in approved]
    assert ["approved by lee (ml-lead) and rai (responsible-ai)."] == said
    assert {"ml-lead": "lee", "responsible-ai": "rai"} == record(settings, redis, job_id).change_requests[0].approved_by


def test_one_person_approving_twice_counts_once(settings, redis, fake_github, worker):
    """dana is an ml-lead and in the responsible-ai team: her two approvals cover one group, not both."""
    job_id = drift(settings, redis, worker, fake_github)
    [pull] = fake_github.pulls
    fake_github.submit_review(pull.number, "dana", "APPROVED")
    fake_github.submit_review(pull.number, "dana", "APPROVED")
    change_requests.advance(worker.runtime, job_id, STEP)

    assert [] == [c for c in ticket_comments(fake_github) if "approved by" in c]
    assert "open" == record(settings, redis, job_id).change_requests[0].status


def test_changes_requested_a_merge_and_a_close_are_noted(settings, redis, fake_github, worker):
    """A "changes requested" review is reported; the merge is noted and ends the change request."""
    job_id = drift(settings, redis, worker, fake_github)
    [pull] = fake_github.pulls
    fake_github.submit_review(pull.number, "rai", "CHANGES_REQUESTED", "threshold too low")
    change_requests.advance(worker.runtime, job_id, STEP)
    fake_github.merge_pull(pull.number, "lee")
    change_requests.advance(worker.runtime, job_id, STEP)

    said = ticket_comments(fake_github)
    assert any("changes requested by rai." in c for c in said) and any("merged by lee." in c for c in said)
    assert "merged" == record(settings, redis, job_id).change_requests[0].status


def test_a_pull_request_closed_unmerged_is_noted(settings, redis, fake_github, worker):
    """Closed without a merge: the ticket says so and the change request ends."""
    job_id = drift(settings, redis, worker, fake_github)
    [pull] = fake_github.pulls
    fake_github.close_pull(pull.number, "lee")
    change_requests.advance(worker.runtime, job_id, STEP)

    assert any("closed without being merged." in c for c in ticket_comments(fake_github))
    assert "closed" == record(settings, redis, job_id).change_requests[0].status


def test_a_pull_request_whose_creation_answer_was_lost_is_opened_once(settings, redis, fake_github, worker):
    """GitHub creates the pull request but answers 502: the next look finds it; one pull request, one link."""
    fake_github.fail_next("POST", r"/pulls$", after_write=True)
    fake_github.fail_next("PUT", r"/contents/", after_write=True)
    drift(settings, redis, worker, fake_github)

    [pull] = fake_github.pulls
    assert ["lee", "dana"] == pull.requested_reviewers
    assert 1 == len(ticket_comments(fake_github))


def test_the_record_shows_the_change_request(settings, redis, fake_github, worker, cli_env):
    """`jobs show` names the pull request and its state."""
    job_id = drift(settings, redis, worker, fake_github)
    [pull] = fake_github.pulls

    shown = run_cli(cli_env, "jobs", "show", job_id).stdout
    assert pull.html_url in shown and "open" in shown
    [change] = json.loads(run_cli(cli_env, "jobs", "show", job_id, "--json").stdout)["change_requests"]
    assert (pull.number, VERSION) == (change["pull_number"], change["version"])


# --------------------------------------------------------------------------- webhooks, processes


def test_a_forged_review_delivery_changes_nothing(settings, redis, fake_github, worker, cli_env, services):
    """A pull_request_review delivery with a wrong signature is 401 and queues nothing."""
    env = service_env(cli_env, github_webhook_secret=SECRET)
    _, base = start_receiver(services, env)
    body = json.dumps({"action": "submitted", "pull_request": {"number": 1}, "review": {"state": "approved"}}).encode()
    headers = {"X-GitHub-Event": "pull_request_review", "X-GitHub-Delivery": "forged-1",
               "X-Hub-Signature-256": "sha256=" + "0" * 64, "Content-Type": "application/json"}
    before = set(redis.keys("*"))

    answer = requests.post(f"{base}/webhooks/github", data=body, headers=headers, timeout=10)

    assert 401 == answer.status_code
    assert before == set(redis.keys("*"))


def test_a_drift_ends_in_an_approved_change_request_with_real_processes(
    settings, redis, fake_github, cli_env, services
):
    """Done when: `responder serve` and `responder worker`, GitHub's signed deliveries: a drift alert's
    retraining and governance runs succeed, the pull request carries the evidence and both review
    requests, and the two approvals reach the ticket through the pull_request_review webhook."""
    env = service_env(cli_env, github_webhook_secret=SECRET, follow_poll_seconds="1",
                      approvers=json.dumps(APPROVERS), change_request_poll_seconds="600")
    _, base = start_receiver(services, env)
    worker = services(env, "worker", "worker")
    fake_github.hook(f"{base}/webhooks/github", SECRET, ["workflow_run", "pull_request", "pull_request_review"])
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    posted = requests.post(f"{base}/webhooks/alertmanager", json=payload, timeout=10,
                           headers={"Authorization": f"Bearer {env['RESPONDER_WEBHOOK_TOKEN']}"})
    assert 202 == posted.status_code
    [retraining] = wait_until(lambda: fake_github.dispatches, "the retraining dispatch", logs=(worker.log,))
    fake_github.add_artifact(retraining.run_id, "training-summary.json", {"training-summary.json": summary()})
    fake_github.add_artifact(retraining.run_id, "bias-report.json", {"bias-report.json": {"status": "pass"}})

    [pull] = wait_until(lambda: [p for p in fake_github.pulls if p.requested_teams], "the change request",
                        logs=(worker.log,), timeout=60)
    assert ["lee", "dana"] == pull.requested_reviewers and ["rai-reviewers"] == pull.requested_teams
    assert "bias-report.json" in (pull.body or "").replace("\\", "")
    fake_github.submit_review(pull.number, "lee", "APPROVED")
    time.sleep(0.5)
    fake_github.submit_review(pull.number, "rai", "APPROVED")

    said = wait_until(lambda: [c for c in ticket_comments(fake_github) if "approved by" in c], "the approvals",
                      logs=(worker.log,), timeout=30)
    assert "approved by lee (ml-lead) and rai (responsible-ai)." in said[0]
    fake_github.wait_for_deliveries()
    assert [] == [(d.event, d.action, d.status) for d in fake_github.deliveries if d.status != 202]
