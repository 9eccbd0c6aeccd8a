"""Answering an approval on the runs page: ``POST /runs/{id}/answer`` from the form a waiting
run's page shows (a GitHub login, a reason, Approve or Reject).

The page is behind its token (the webhook token or RESPONDER_UI_TOKEN), which a browser sends by
itself with every request to the origin, a cross-site form post included. So the form carries a
key only a holder of the token can make (an HMAC of the run id with the token presented when the
page was shown), and a post without the right key is refused: another site cannot answer for
someone signed in. The login is the answerer's word, as ``responder approve --as`` is: the token
is the gate, and the answer is recorded with how it came (``runs page``). With no token set (the
page open to all) answering on the page is off.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable

from aiohttp import web

from responder.answers import Answered, Decision
from responder.auth import presented_token
from responder.errors import ApprovalRefused, RunNotFound
from responder.store.redisconn import REDIS_DOWN

# (run id, who, decision, reason) -> the answer recorded; raises ApprovalRefused or RunNotFound
Answerer = Callable[[str, str, Decision, str | None], Answered]
ANSWERER: web.AppKey[Answerer] = web.AppKey("answerer")
MAX_FIELD = 500


def form_key(request: web.Request, run_id: str) -> str | None:
    """The key the answer form of ``run_id`` carries, made with the caller's token; None when the
    caller presented none (the page is open: no form)."""
    token = presented_token(request.headers.get("Authorization", ""))
    if not token:
        return None
    return hmac.new(token, f"answer:{run_id}".encode(), hashlib.sha256).hexdigest()


async def answer(request: web.Request) -> tuple[int, str, str]:
    """Handle the form's post: (HTTP status, heading, one-line message)."""
    run_id = request.match_info["id"]
    expected = form_key(request, run_id)
    form = await request.post()
    given = str(form.get("key", ""))
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return 403, "Not answered", "This form is not from this run's page (or the page is not behind a token)."
    decision, who = str(form.get("decision", "")), str(form.get("as", "")).strip()
    reason = " ".join(str(form.get("reason", "")).split())[:MAX_FIELD] or None
    if decision not in ("approve", "reject"):
        return 400, "Not answered", "Choose Approve or Reject."
    if not who or len(who) > 100 or any(c.isspace() for c in who):
        return 400, "Not answered", "Give your GitHub login (one word)."
    if decision == "reject" and reason is None:
        return 400, "Not answered", "A rejection needs a reason."
    try:
        done = await asyncio.to_thread(
            request.app[ANSWERER], run_id, who, "approve" if decision == "approve" else "reject", reason
        )
    except RunNotFound:
        return 404, "Run not found", f"There is no run {run_id!r}; it may have expired."
    except ApprovalRefused as exc:
        return 409, "Not counted", str(exc)
    except REDIS_DOWN:
        return 503, "Redis is unavailable", "The answer was not recorded; try again in a moment."
    return 200, "Answer recorded", f"{done.said()} {done.outcome()}."
