"""The runs page: recent runs and one run's record, as server-rendered HTML for on-call.

    GET /runs         newest first: time, alert, model, playbook, status
                      (?status=<run status> shows one status; ?limit=N shows N runs, default 50, at most 500)
    GET /runs/{id}    one run: the alert, each step with status, timing, detail, links and errors
                      (a run awaiting approval shows a form answering it: responder/page_answers.py)
    POST /runs/{id}/answer   approve or reject that run

Everything shown is alert text or what an external system answered, so it is untrusted: the
templates (``responder/templates/``) autoescape, only http(s) URLs become links, and the
Content-Security-Policy allows no script and no style but the page's own stylesheet, and forms
only to this origin. Run
records are read through RunStore on a thread, as the webhook does; Redis down is a 503 page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from pydantic import SecretStr

from responder import page_answers
from responder.auth import authorized
from responder.errors import RunNotFound
from responder.page_answers import ANSWERER
from responder.runs import RUN_STATUSES, RunStore, StepRecord, utcnow
from responder.store.redisconn import REDIS_DOWN
from responder.timefmt import ago, as_utc, took, utc_text

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RUN_STORE = web.AppKey("run_store", RunStore)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
RETRY_AFTER_SECONDS = "5"

STATUS_ICONS = {
    "succeeded": "✓",
    "ok": "✓",
    "failed": "✕",
    "running": "●",
    "retrying": "↻",
    "waiting": "⏸",
    "awaiting_approval": "⏸",
    "expired": "⌛",
    "queued": "○",
    "planned": "◇",
    "skipped": "\N{EN DASH}",
    "suppressed": "⊘",
    "finding": "⚠",  # not a status: a check step (ok) that found a problem
}

_CSS = (resources.files("responder") / "templates" / "pages.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def add_pages(app: web.Application, *, tokens: Sequence[SecretStr] | None) -> None:
    """Serve the runs page on ``app``, readable with any of ``tokens`` (None: no authentication).

    The app provides ``app[RUN_STORE]`` (the receiver builds it on its own Redis client). A token
    is accepted as ``Authorization: Bearer <token>`` or as the HTTP Basic password; without one the
    answer is 401 with a Basic challenge, so a browser asks for it.
    """
    app.router.add_get("/runs", _signed_in(_runs, tokens))
    app.router.add_get("/runs/{id}", _signed_in(_run, tokens))
    app.router.add_post("/runs/{id}/answer", _signed_in(_answer, tokens))


def _signed_in(handler: Handler, tokens: Sequence[SecretStr] | None) -> Handler:
    if tokens is None:
        return handler
    accepted = list(tokens)

    async def check(request: web.Request) -> web.StreamResponse:
        if not authorized(request.headers.get("Authorization", ""), accepted):
            response = _message(
                401,
                "Sign in",
                "Sign in with any user name and the webhook token or the read-only token as the password "
                "(or send 'Authorization: Bearer <token>').",
                back=False,
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="responder"'
            return response
        return await handler(request)

    return check


async def _runs(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        return _message(400, "Unknown status", f"status must be one of: {', '.join(RUN_STATUSES)}.")
    limit = _limit(request.query.get("limit"))
    if limit is None:
        return _message(400, "Bad limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    try:
        runs = await asyncio.to_thread(request.app[RUN_STORE].recent, limit=limit, status=status)
    except REDIS_DOWN:
        return _unavailable()
    more = min(limit * 2, MAX_LIMIT)
    return _page(
        "runs.html", runs=runs, status=status, statuses=RUN_STATUSES, limit=limit, more=more if more > limit else None
    )


async def _run(request: web.Request) -> web.Response:
    run_id = request.match_info["id"]
    try:
        run = await asyncio.to_thread(request.app[RUN_STORE].get, run_id)
    except RunNotFound:
        return _message(404, "Run not found", f"There is no run {run_id!r}; it may have expired.")
    except REDIS_DOWN:
        return _unavailable()
    can_answer = run.status == "awaiting_approval" and ANSWERER in request.app
    return _page("run.html", run=run, answer_key=page_answers.form_key(request, run.id) if can_answer else None)


async def _answer(request: web.Request) -> web.Response:
    if ANSWERER not in request.app:
        return _message(404, "Not found", "Answering approvals is not served here.")
    http_status, heading, message = await page_answers.answer(request)
    response = _message(http_status, heading, message)
    if http_status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _limit(raw: str | None) -> int | None:
    """The ?limit= value: a default when absent, None when it is not a count we serve."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_LIMIT:
        return None
    return int(raw)


def _unavailable() -> web.Response:
    response = _message(503, "Redis is unavailable", "Run records cannot be read right now; reload in a moment.")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _message(http_status: int, heading: str, message: str, *, back: bool = True) -> web.Response:
    return _page("message.html", http_status=http_status, heading=heading, message=message, back=back)


def _page(template: str, *, http_status: int = 200, **context: Any) -> web.Response:
    body = _ENV.get_template(template).render(css=Markup(_CSS), now=utcnow(), **context)
    return web.Response(text=body, status=http_status, content_type="text/html", charset="utf-8", headers=HEADERS)


# --- What the templates use to show times, durations and links ---


def http_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL fit for an href, else None (javascript:, data:, relative...)."""
    if not url or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def short_url(url: str) -> str:
    """host/path of a URL, to show next to its link."""
    parts = urlsplit(url)
    return parts.netloc + parts.path


def link_label(step: StepRecord) -> str:
    """What a step's link points at, as on-call would name it."""
    url = step.url or ""
    if step.kind == "dispatch_workflow" or "/actions/runs/" in url:
        return "workflow run"
    if "ticket" in step.outputs or "incident" in step.kind or "ticket" in step.kind or "/issues/" in url:
        return "ticket"
    return "link"


def iso(value: datetime) -> str:
    """RFC 3339 in UTC, '2025-01-31T21:40:12Z'; a time with no UTC datetime (year 1 at +14:00) as given."""
    in_utc = as_utc(value)
    if in_utc is None:
        return value.isoformat(timespec="seconds")
    return in_utc.isoformat(timespec="seconds").replace("+00:00", "Z")


def utc(value: datetime | None) -> str:
    return utc_text(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("responder", "templates"),
        autoescape=True,  # every value rendered is untrusted alert or API text
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        http_url=http_url,
        short_url=short_url,
        link_label=link_label,
        iso=iso,
        utc=utc,
        ago=ago,
        took=took,
        icon=lambda status: STATUS_ICONS.get(status, "•"),
        urlpart=lambda value: quote(value, safe=""),
    )
    return env


_ENV = _environment()
