"""GitHub's webhook deliveries (``POST /webhooks/github``): verified, de-duplicated, and acted on.

- A delivery is taken only with a valid ``X-Hub-Signature-256``: ``sha256=`` and the hex
  HMAC-SHA256 of the raw body with ``RESPONDER_GITHUB_WEBHOOK_SECRET``, compared in constant
  time. Anything else is 401 and changes nothing (so is every delivery while no secret is set).
- GitHub re-sends a delivery it thinks failed, and one can be redelivered by hand: a repeated
  ``X-GitHub-Delivery`` is answered 202 and ignored.
- ``workflow_run`` ``completed`` for a run responder follows is settled at once: a poll of that
  run is queued now, which reads the run from GitHub (the delivery's own fields are not trusted
  beyond the run's id) and tells the ticket how it ended. The scheduled polls stay the fallback
  for deliveries that never arrive. Every other event is answered 202 and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, cast

from pydantic import SecretStr
from redis import Redis
from rq import Queue

from responder.log import get_logger
from responder.settings import Settings
from responder.store import redis_keys
from responder.store.queueing import enqueue_follow_now

log = get_logger(__name__)
SIGNATURE_HEADER = "X-Hub-Signature-256"


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


def handle(redis: Redis, settings: Settings, event: str, delivery: str, body: bytes) -> Answer:
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
    return Answer(202, {"status": "ignored", "event": event})


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
