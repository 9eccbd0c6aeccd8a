"""The webhook deliveries of tests/fakes/github.py: what a receiver gets (events, payloads, GitHub's
headers and signatures), failures recorded and not retried, and redelivery, with a tiny
http.server receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import github
import pytest

from tests.fakes.github import MANIFEST_PATH, FakeGitHub

SECRET = "hook-secret"
BRANCH = "responder/change"


class Receiver(ThreadingHTTPServer):
    """Records every POST (headers and raw body) and answers ``status``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hooks"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers.items()), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(receiver: Receiver) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.set_file(MANIFEST_PATH, '{"model_version": "41"}\n')
        server.add_user("alice")
        server.hook(receiver.url, SECRET)
        yield server


@pytest.fixture
def repo(fake: FakeGitHub) -> Any:
    client = github.Github(base_url=fake.url, auth=github.Auth.Token(fake.token), retry=None,
                           seconds_between_requests=0, seconds_between_writes=0)
    return client.get_repo(fake.full_name)


def open_pull(fake: FakeGitHub, repo: Any) -> Any:
    repo.create_git_ref(f"refs/heads/{BRANCH}", fake.branches["main"])
    current = repo.get_contents(MANIFEST_PATH, ref=BRANCH)
    repo.update_file(MANIFEST_PATH, "bump", b'{"model_version": "42"}\n', current.sha, branch=BRANCH)
    return repo.create_pull(base="main", head=f"acme:{BRANCH}", title="bump")


def events(fake: FakeGitHub) -> list[tuple[str, str | None]]:
    return [(d.event, d.action) for d in fake.wait_for_deliveries()]


def test_deliveries_are_signed_like_githubs(fake: FakeGitHub, repo: Any, receiver: Receiver) -> None:
    """sha256= / sha1= HMACs of the raw body keyed with the secret, and GitHub's other headers."""
    repo.create_issue("incident")

    [delivery] = fake.wait_for_deliveries()
    [(headers, body)] = receiver.received
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], "sha256=" + expected)
    assert headers["X-Hub-Signature"] == "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert (headers["X-GitHub-Event"], headers["X-GitHub-Hook-ID"]) == ("issues", str(delivery.hook_id))
    assert headers["X-GitHub-Delivery"] == delivery.delivery_id
    payload = json.loads(body)
    assert (payload["action"], payload["issue"]["title"]) == ("opened", "incident")
    assert payload["repository"]["full_name"] == "acme/ml-platform"
    assert (payload["organization"]["login"], payload["sender"]["login"]) == ("acme", fake.login)


def test_a_comment_is_delivered_as_issue_comment_created(fake: FakeGitHub, repo: Any) -> None:
    issue = repo.create_issue("incident")
    comment_id = fake.comment_as(issue.number, "alice", "ack")

    assert events(fake) == [("issues", "opened"), ("issue_comment", "created")]
    payload = fake.deliveries[-1].payload
    assert (payload["comment"]["id"], payload["comment"]["body"], payload["comment"]["user"]["login"]) == (
        comment_id, "ack", "alice",
    )
    assert payload["issue"]["number"] == issue.number and "pull_request" not in payload["issue"]


def test_opening_and_requesting_reviews_are_delivered(fake: FakeGitHub, repo: Any) -> None:
    pull = open_pull(fake, repo)
    pull.create_review_request(reviewers=["alice"])

    assert events(fake) == [("pull_request", "opened"), ("pull_request", "review_requested")]
    assert fake.deliveries[-1].payload["requested_reviewer"]["login"] == "alice"


def test_a_review_is_lower_case_in_the_webhook(fake: FakeGitHub, repo: Any) -> None:
    """The REST API says APPROVED, the pull_request_review webhook says approved (GitHub's wart)."""
    pull = open_pull(fake, repo)
    fake.submit_review(pull.number, "alice", "APPROVED")

    assert events(fake)[-1] == ("pull_request_review", "submitted")
    review = fake.deliveries[-1].payload["review"]
    assert (review["state"], review["user"]["login"]) == ("approved", "alice")
    assert [r.state for r in pull.get_reviews()] == ["APPROVED"]


def test_merge_and_close_are_pull_request_closed(fake: FakeGitHub, repo: Any) -> None:
    merged = open_pull(fake, repo)
    fake.merge_pull(merged.number, "alice", delete_branch=True)
    other = open_pull(fake, repo)
    fake.close_pull(other.number, "alice")

    closed = [d.payload for d in fake.wait_for_deliveries() if (d.event, d.action) == ("pull_request", "closed")]
    assert [(p["number"], p["pull_request"]["merged"], p["sender"]["login"]) for p in closed] == [
        (merged.number, True, "alice"),
        (other.number, False, "alice"),
    ]


def test_a_failed_delivery_is_recorded_not_retried_and_redelivered_with_its_guid(
    fake: FakeGitHub, repo: Any, receiver: Receiver
) -> None:
    receiver.status = 503
    issue = repo.create_issue("incident")
    [failed] = fake.wait_for_deliveries()
    assert (failed.status, failed.ok) == (503, False)

    receiver.status = 200
    fake.redeliver(failed.delivery_id)

    [_, again] = fake.wait_for_deliveries()
    assert (again.delivery_id, again.body, again.status, again.redelivery) == (failed.delivery_id, failed.body, 200,
                                                                                 True)
    assert [h["X-GitHub-Delivery"] for h, _ in receiver.received] == [failed.delivery_id] * 2
    assert issue.number == 1


def test_an_unreachable_receiver_is_recorded_without_status(fake: FakeGitHub, repo: Any) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    fake.reset()
    fake.hook(f"http://127.0.0.1:{port}/gone", SECRET, events=["issues"])
    repo.create_issue("incident")

    [delivery] = fake.wait_for_deliveries()
    assert (delivery.status, delivery.event) == (None, "issues")
    assert delivery.error


def test_a_hook_gets_only_its_events(fake: FakeGitHub, repo: Any, receiver: Receiver) -> None:
    fake.reset()
    fake.hook(receiver.url, SECRET, events=["issue_comment"])
    issue = repo.create_issue("incident")
    issue.create_comment("note")

    assert events(fake) == [("issue_comment", "created")]


def test_workflow_run_completed_is_delivered_for_a_run(fake: FakeGitHub) -> None:
    run_id = fake.add_run("model-retraining.yml", display_title="retrain churn-xgb", conclusion="failure")
    fake.deliver_workflow_run_completed(run_id)

    [delivery] = fake.wait_for_deliveries()
    run = delivery.payload["workflow_run"]
    assert (delivery.event, delivery.action) == ("workflow_run", "completed")
    assert (run["id"], run["status"], run["conclusion"]) == (run_id, "completed", "failure")
