"""One reading of an integration's HTTP failure, for GitHub, Jira and the toggle service alike:
is it worth trying again, and when.

- Transient (``TransientError``, the run's next attempt tries again): any 5xx, 429, 408, a 403
  that says the rate limit is used up (GitHub's secondary rate limit, or ``x-ratelimit-remaining:
  0``), and a request that never got an answer (connection refused or reset, timeout).
- Permanent (``PermanentError``, a person has to act): every other answer outside 2xx.
- When: ``Retry-After`` as delta-seconds or an HTTP date; else, with no requests left,
  ``x-ratelimit-reset`` (Unix time). ``None`` when the server named no time (the backoff decides).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from responder.errors import IntegrationError, PermanentError, TransientError

RETRYABLE_STATUSES = frozenset({408, 429})  # and every 5xx
NO_ANSWER = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait before trying again (never negative); None when it names none.
    ``headers`` may be in any letter case."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if "retry-after" in lowered:
        return _delay(lowered["retry-after"])
    if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
        try:
            reset = float(lowered["x-ratelimit-reset"])
        except ValueError:
            return None
        return max(0.0, reset - time.time()) if math.isfinite(reset) else None
    return None


def _delay(value: str) -> float | None:
    """A Retry-After value: delta-seconds or an HTTP date."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def transient(status: int, headers: Mapping[str, str], message: str = "") -> bool:
    """Whether an answer with this status is worth trying again later (see the module docstring)."""
    if status >= 500 or status in RETRYABLE_STATUSES:
        return True
    remaining = {name.lower(): value for name, value in headers.items()}.get("x-ratelimit-remaining")
    return status == 403 and ("rate limit" in message.lower() or remaining == "0")


def failure(
    status: int, headers: Mapping[str, str], text: str, *, system: str, message: str = "", hint: str = ""
) -> IntegrationError:
    """The error for an answer outside 2xx: ``text`` says what was tried and what the service
    answered (``message`` is its own words, read for rate-limit wording); ``hint`` is added to a
    permanent one (what a person should check)."""
    if transient(status, headers, message):
        return TransientError(text, system=system, status=status, retry_after=retry_after(headers))
    return PermanentError(text + hint, system=system, status=status)


def unanswered(action: str, service: str, exc: BaseException, *, system: str) -> TransientError:
    """A request that got no answer (``NO_ANSWER``): it may or may not have been carried out."""
    return TransientError(f"{action}: {service} unreachable ({type(exc).__name__})", system=system)
