"""GitHub's webhook deliveries (``POST /webhooks/github``): verified, de-duplicated, and acted on.

- A delivery is taken only with a valid ``X-Hub-Signature-256``: ``sha256=`` and the hex
  HMAC-SHA256 of the raw body with ``RESPONDER_GITHUB_WEBHOOK_SECRET``, compared in constant
  time. Anything else is 401 and changes nothing (so is every delivery while no secret is set).
- GitHub re-sends a delivery it thinks failed, and one can be redelivered by hand: a repeated
  ``X-GitHub-Delivery`` is answered 202 and ignored.
- ``issue_comment`` ``created`` whose first line is ``/approve [reason]`` or ``/reject <reason>``,
  on a ticket where a run waits for approval (the approval step asked there), answers that run as
  the delivery's ``sender`` (the signature makes it GitHub's word). The outcome, or why the answer
  does not count, is replied on the ticket by a job (the receiver makes no GitHub call).
- ``workflow_run`` ``completed`` for a run responder follows is settled at once: a poll of that
  run is queued now, which reads the run from GitHub (the delivery's own fields are not trusted
  beyond the run's id) and tells the ticket how it ended. The scheduled polls stay the fallback
  for deliveries that never arrive.
- ``pull_request`` and ``pull_request_review`` on a change request responder opened queue a job
  that reads the pull request and its reviews from GitHub (nothing in the delivery but the pull
  request's number is trusted) and tells the ticket about approvals, changes requested, a merge or
  a close (``responder.change_requests``). Every other event is answered 202 and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, cast

from pydantic import SecretStr
from redis import Redis
from rq import Queue

from responder import answers, change_requests
from responder.errors import ApprovalRefused, RunNotFound
from responder.intake import Intake
from responder.log import get_logger
from responder.runs import RunStore
from responder.settings import Settings
from responder.store import redis_keys
from responder.store.queueing import enqueue_follow_now, enqueue_ticket_reply
from responder.text import one_line

log = get_logger(__name__)
SIGNATURE_HEADER = "X-Hub-Signature-256"
PULL_REQUEST_NEWS = {  # what can change a change request: a review, a merge or a close
    ("pull_request", "closed"),
    ("pull_request_review", "submitted"),
    ("pull_request_review", "edited"),
    ("pull_request_review", "dismissed"),
}
COMMAND = re.compile(r"^/(approve|reject)(?:\s+(.*))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, str]


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verified(secret: SecretStr | None, body: bytes, presented: str | None) -> str | None:
    """None when the delivery is GitHub's (signed with ``secret``), else why it is refused."""
    if secret is None or not secret.get_secret_value():
        return "RESPONDER_GITHUB_WEBHOOK_SECRET is not set: deliveries cannot be verified"
    if not presented:
        return f"missing {SIGNATURE_HEADER}"
    if not hmac.compare_digest(presented.encode(), signature(secret.get_secret_value(), body).encode()):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None


def handle(redis: Redis, settings: Settings, intake: Intake, event: str, delivery: str, body: bytes) -> Answer:
    """Act on a verified delivery (blocking Redis calls: the receiver runs it in a thread)."""
    if delivery and not redis.set(
        redis_keys.github_delivery_key(delivery), "1", nx=True, ex=settings.dedup_retention_seconds
    ):
        return Answer(202, {"status": "duplicate", "delivery": delivery})
    try:
        payload = json.loads(body)
    except ValueError:
        return Answer(400, {"error": "body is not valid JSON"})
    if not isinstance(payload, dict):
        return Answer(400, {"error": "body must be a JSON object"})
    if event == "workflow_run" and payload.get("action") == "completed":
        return _workflow_run_completed(redis, settings, payload, delivery)
    if event == "issue_comment" and payload.get("action") == "created":
        return _issue_comment(redis, settings, intake, payload, delivery)
    if (event, payload.get("action")) in PULL_REQUEST_NEWS:
        return _pull_request(redis, settings, event, payload, delivery)
    return Answer(202, {"status": "ignored", "event": event})


def _pull_request(redis: Redis, settings: Settings, event: str, payload: dict[str, Any], delivery: str) -> Answer:
    """A change request's pull request changed (a review, a merge, a close): a job reads it again from
    GitHub. Only its number is taken from the delivery; a pull request responder did not open is ignored."""
    pull = payload.get("pull_request")
    number = pull.get("number") if isinstance(pull, dict) else None
    if not isinstance(number, int):
        return Answer(400, {"error": "pull_request.number missing"})
    owner = change_requests.queue_for_pull(redis, settings, number, delivery or f"{event}-{number}")
    if owner is None:
        return Answer(202, {"status": "not a change request", "pull_request": str(number)})
    log.info("github.change_request_event", job_id=owner[0], step=owner[1], github_event=event, pull_request=number)
    return Answer(202, {"status": "checking", "job_id": owner[0], "step": owner[1]})


def _workflow_run_completed(redis: Redis, settings: Settings, payload: dict[str, Any], delivery: str) -> Answer:
    run = payload.get("workflow_run")
    run_id = run.get("id") if isinstance(run, dict) else None
    if not isinstance(run_id, int):
        return Answer(400, {"error": "workflow_run.id missing"})
    followed = cast(bytes | None, redis.get(redis_keys.followed_run_key(run_id)))
    if followed is None:
        return Answer(202, {"status": "not followed", "workflow_run": str(run_id)})
    responder_run, _, step = followed.decode().partition("\n")
    queue = Queue(settings.queue, connection=redis)
    enqueue_follow_now(queue, settings, responder_run, step, delivery or str(run_id))
    log.info("github.workflow_run_completed", job_id=responder_run, step=step, workflow_run=run_id)
    return Answer(202, {"status": "settling", "job_id": responder_run, "step": step})


def command_of(comment: str) -> tuple[answers.Decision, str | None] | None:
    """``/approve [reason]`` or ``/reject <reason>`` on the comment's first non-empty line, else None."""
    first = next((line.strip() for line in comment.splitlines() if line.strip()), "")
    match = COMMAND.match(first)
    if match is None:
        return None
    decision: answers.Decision = "approve" if match.group(1).lower() == "approve" else "reject"
    return decision, one_line(match.group(2), 500) if match.group(2) else None


def _issue_comment(redis: Redis, settings: Settings, intake: Intake, payload: dict[str, Any], delivery: str) -> Answer:
    issue, comment, sender = (payload.get(k) for k in ("issue", "comment", "sender"))
    if not (isinstance(issue, dict) and isinstance(comment, dict) and isinstance(sender, dict)):
        return Answer(400, {"error": "issue, comment and sender are required"})
    command = command_of(str(comment.get("body") or ""))
    url, number, who = issue.get("html_url"), issue.get("number"), sender.get("login")
    if command is None or sender.get("type") == "Bot":  # a bot's comment (responder's own replies) answers nothing
        return Answer(202, {"status": "ignored", "event": "issue_comment"})
    if not (isinstance(url, str) and isinstance(number, int) and isinstance(who, str)):
        return Answer(400, {"error": "issue.html_url, issue.number and sender.login are required"})
    decision, reason = command
    lines = _answer_waiting(redis, settings, intake, url, who, decision, reason)
    queue = Queue(settings.queue, connection=redis)
    enqueue_ticket_reply(queue, settings, f"#{number}", url, f"{who}: " + " ".join(lines), delivery or url)
    log.info("github.approval_comment", who=who, decision=decision, ticket=url, outcome=lines)
    return Answer(202, {"status": "answered", "outcome": " ".join(lines)})


def _answer_waiting(
    redis: Redis,
    settings: Settings,
    intake: Intake,
    ticket_url: str,
    who: str,
    decision: answers.Decision,
    reason: str | None,
) -> list[str]:
    """Answer every run waiting for approval on the ticket; one line per run (or why none counts)."""
    if decision == "reject" and not reason:
        return ["a rejection needs a reason: /reject <reason>"]
    key = redis_keys.approval_ticket_key(ticket_url)
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    lines = []
    for run_id in sorted(member.decode() for member in cast(set[bytes], redis.smembers(key))):
        try:
            if runs.get(run_id).status != "awaiting_approval":
                redis.srem(key, run_id)  # it ended (or went on): nothing to answer there any more
                continue
            done = answers.answer(
                redis, settings, intake, run_id, who=who, decision=decision, how="ticket comment", reason=reason
            )
        except RunNotFound:
            redis.srem(key, run_id)
            continue
        except ApprovalRefused as exc:
            lines.append(f"not counted: {exc}.")
            continue
        lines.append(f"{done.said()} {done.outcome()}.")
    return lines or ["no run waits for approval on this ticket."]
