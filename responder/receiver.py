"""The aiohttp app: Alertmanager's webhook, health, readiness, metrics and the runs page.

The webhook handler only authenticates, validates and hands the notification to Intake,
which decides and enqueues in one atomic Redis commit shared with the deliveries that arrive
at the same time (``groupcommit``); it answers 202 once every queued job is stored, well
inside Alertmanager's 10 s notification timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pydantic_core
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr, ValidationError
from redis import Redis
from rq import Queue

from responder import answers, github_events
from responder.alerts import Notification
from responder.auth import authorized
from responder.groupcommit import GroupCommit
from responder.intake import Intake
from responder.log import get_logger
from responder.metrics import ReceiverMetrics
from responder.page_answers import ANSWERER, Answerer
from responder.pages import RUN_STORE, add_pages
from responder.playbooks.catalog import Catalog
from responder.runs import RunStore
from responder.settings import Settings
from responder.store.queueing import enqueue_ticket_note
from responder.store.redisconn import REDIS_DOWN, NotReplicated, async_redis_client, redis_client

log = get_logger(__name__)

INTAKE = web.AppKey("intake", Intake)
GROUP_COMMIT = web.AppKey("group_commit", GroupCommit)
METRICS = web.AppKey("metrics", ReceiverMetrics)
REDIS = web.AppKey("redis", Redis)
SETTINGS = web.AppKey("settings", Settings)
RETRY_AFTER_SECONDS = "5"


def create_app(settings: Settings, catalog: Catalog, *, token: SecretStr | None) -> web.Application:
    """Build the receiver. ``token=None`` turns authentication off (``--insecure-no-auth``)."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_errors_as_json])

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        client = redis_client(settings)
        loop_client = async_redis_client(settings)
        app[REDIS] = client
        app[INTAKE] = Intake(client, settings, catalog)
        app[GROUP_COMMIT] = GroupCommit(app[INTAKE], loop_client)
        known = {p.alertname for p in catalog.playbooks.values() if p.alertname}
        app[METRICS] = ReceiverMetrics(client, settings.queue, known_alertnames=known)
        app[RUN_STORE] = RunStore(client, retention_seconds=settings.dedup_retention_seconds)
        app[ANSWERER] = _answerer(client, settings, app[INTAKE])
        yield
        client.close()
        await loop_client.aclose()

    app.cleanup_ctx.append(redis_ctx)
    webhook = _authenticated(_webhook, token)
    app.router.add_post("/webhooks/alertmanager", webhook)
    app.router.add_post("/webhooks/github", _github_webhook)
    app[SETTINGS] = settings
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    add_pages(app, tokens=_page_tokens(settings, token))
    return app


def _answerer(redis: Redis, settings: Settings, intake: Intake) -> Answerer:
    """How the runs page answers an approval: recorded like ``responder approve``, then said on the
    model's open ticket by a job (the receiver makes no tracker call)."""
    queue = Queue(settings.queue, connection=redis)

    def answer_on_page(run_id: str, who: str, decision: answers.Decision, reason: str | None) -> answers.Answered:
        how = "runs page"
        done = answers.answer(redis, settings, intake, run_id, who=who, decision=decision, how=how, reason=reason)
        tag = f"{run_id}\n{done.answer.who}\n{done.answer.at.isoformat()}"
        enqueue_ticket_note(queue, settings, run_id, done.said(), tag)
        return done

    return answer_on_page


def _page_tokens(settings: Settings, token: SecretStr | None) -> list[SecretStr] | None:
    """Who may read the runs page: the webhook token and the read-only one (RESPONDER_UI_TOKEN), or,
    without that, the webhook token alone (``serve`` warns of it); None (no auth) like the webhook.
    The webhook takes only its own token."""
    if token is None:
        return None
    return [token] + ([settings.ui_token] if settings.ui_token is not None else [])  # an empty token opens nothing


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _unavailable(message: str) -> web.Response:
    response = _error(503, message)
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


@web.middleware
async def _errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 413:
            return _error(413, f"body larger than {request.app._client_max_size} bytes")
        if exc.status >= 400 and exc.content_type != "application/json":
            return _error(exc.status, exc.reason)
        raise
    except Exception:
        log.exception("request.crashed", path=request.path)
        return _error(500, "internal error; see the receiver's log")


def _authenticated(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], token: SecretStr | None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    if token is None:
        return handler

    async def check(request: web.Request) -> web.StreamResponse:
        if not authorized(request.headers.get("Authorization", ""), [token]):
            response = _error(401, "missing or wrong credentials: send 'Authorization: Bearer <token>'")
            response.headers["WWW-Authenticate"] = 'Bearer realm="responder", Basic realm="responder"'
            return response
        return await handler(request)

    return check


async def _webhook(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return _error(415, f"content type must be application/json, not {request.content_type or 'none'}")
    if request.content_length is not None and request.content_length > request.app._client_max_size:
        return _error(413, f"body larger than {request.app._client_max_size} bytes")
    body = await request.read()
    notification = _notification(body)
    if isinstance(notification, web.Response):
        return notification
    try:
        decisions = await request.app[GROUP_COMMIT].accept(notification, body)
    except REDIS_DOWN:
        log.warning("webhook.redis_unavailable")
        return _unavailable("Redis is unavailable; retry later")
    except NotReplicated as exc:
        log.warning("webhook.not_replicated", reason=str(exc))
        return _unavailable(f"not acknowledged: {exc} (RESPONDER_REDIS_MIN_REPLICAS); retry later")
    request.app[METRICS].observe(decisions)
    if log.is_enabled_for(logging.INFO):  # else the arguments would be gathered for nothing
        for d in decisions:
            log.info(
                "alert.decision",
                alertname=d.alertname,
                fingerprint=d.fingerprint,
                status=d.status,
                decision=d.decision,
                job_id=d.job_id,
                reason=d.reason,
            )
    answer = pydantic_core.to_json({"alerts": [d.to_json() for d in decisions]})  # a fifth of json.dumps' time
    return web.Response(body=answer, status=202, content_type="application/json")


def _notification(body: bytes) -> Notification | web.Response:
    """The notification in the body, or the answer saying why there is none: a 400 (not UTF-8,
    not JSON, not an object) or a 422 naming the field.

    pydantic parses and checks the body in one pass, in Rust. When it refuses, Python's parser
    says why (or reads what only it can: JSON nested deeper than pydantic's limit). Decoded
    strictly: json.loads(bytes) would also take UTF-16/32 and let encoded surrogates through.
    """
    try:
        return Notification.model_validate_json(body)
    except ValueError:
        pass
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return _error(400, "body is not valid UTF-8")
    except (ValueError, RecursionError) as exc:
        return _error(400, f"body is not valid JSON: {str(exc)[:120]}")
    if not isinstance(data, dict):
        return _error(400, "body must be a JSON object (an Alertmanager webhook payload)")
    try:
        return Notification.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return _error(422, f"{field}: {first['msg']}", field=field)


async def _github_webhook(request: web.Request) -> web.Response:
    """A GitHub webhook delivery: signed with RESPONDER_GITHUB_WEBHOOK_SECRET, or refused (401)."""
    settings = request.app[SETTINGS]
    body = await request.read()
    refused = github_events.verified(
        settings.github_webhook_secret, body, request.headers.get(github_events.SIGNATURE_HEADER)
    )
    if refused is not None:
        log.warning("github.delivery_refused", reason=refused)
        return _error(401, refused)
    event, delivery = request.headers.get("X-GitHub-Event", ""), request.headers.get("X-GitHub-Delivery", "")
    try:
        answer = await asyncio.to_thread(
            github_events.handle, request.app[REDIS], settings, request.app[INTAKE], event, delivery, body
        )
    except REDIS_DOWN:
        return _unavailable("Redis is unavailable; retry later")
    return web.json_response(answer.body, status=answer.status)


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; unauthenticated, like most exporters (keep it on the internal network)."""
    try:
        body = await asyncio.to_thread(request.app[METRICS].exposition)
    except REDIS_DOWN:
        return _unavailable("Redis is unavailable")
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.to_thread(request.app[REDIS].ping)
    except REDIS_DOWN:
        return _unavailable("Redis is unavailable")
    return web.json_response({"status": "ready"})
