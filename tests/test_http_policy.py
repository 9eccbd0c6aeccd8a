"""The one HTTP policy GitHub, Jira and the toggle client share: what is worth retrying, and when."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from responder.errors import PermanentError, TransientError
from responder.integrations import http_policy


@pytest.mark.parametrize(
    ("status", "headers", "message", "expected"),
    [
        (500, {}, "", True),
        (502, {}, "", True),
        (503, {}, "", True),
        (429, {}, "", True),
        (408, {}, "", True),
        (403, {}, "You have exceeded a secondary rate limit", True),
        (403, {"X-RateLimit-Remaining": "0"}, "API rate limit exceeded", True),
        (403, {"x-ratelimit-remaining": "0"}, "Forbidden", True),
        (403, {"x-ratelimit-remaining": "41"}, "Resource not accessible by integration", False),
        (401, {}, "Bad credentials", False),
        (404, {}, "Not Found", False),
        (409, {}, "Already exists", False),
        (422, {}, "Unexpected inputs provided", False),
    ],
)
def test_which_answers_are_transient(status, headers, message, expected):
    """5xx, 429, 408 and a used-up rate limit are worth trying again; other 4xx are not."""
    assert http_policy.transient(status, headers, message) is expected


def test_retry_after_in_seconds():
    assert http_policy.retry_after({"Retry-After": "120"}) == 120


def test_retry_after_as_an_http_date():
    """An HTTP date a minute ahead reads as about 60 s."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    delay = http_policy.retry_after({"retry-after": when})
    assert delay is not None and 55 <= delay <= 61


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf"])
def test_an_unreadable_retry_after_names_no_time(value):
    assert http_policy.retry_after({"Retry-After": value}) is None


def test_a_retry_after_in_the_past_is_no_wait():
    assert http_policy.retry_after({"Retry-After": "-5"}) == 0


def test_no_requests_left_waits_for_the_rate_limit_reset():
    reset = int(time.time()) + 200
    delay = http_policy.retry_after({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    assert delay is not None and 195 <= delay <= 200


def test_a_reset_with_requests_left_names_no_time():
    assert http_policy.retry_after({"x-ratelimit-remaining": "12", "x-ratelimit-reset": "9999999999"}) is None


def test_a_transient_failure_carries_the_servers_wait():
    error = http_policy.failure(429, {"Retry-After": "30"}, "dispatch: answered 429", system="github")
    assert isinstance(error, TransientError)
    assert (error.status, error.retry_after, str(error)) == (429, 30, "dispatch: answered 429")


def test_a_permanent_failure_gets_the_hint_a_transient_one_does_not():
    permanent = http_policy.failure(401, {}, "create issue: answered 401", system="jira", hint="; check the token")
    transient = http_policy.failure(503, {}, "create issue: answered 503", system="jira", hint="; check the token")
    assert isinstance(permanent, PermanentError) and str(permanent).endswith("; check the token")
    assert isinstance(transient, TransientError) and "check the token" not in str(transient)
