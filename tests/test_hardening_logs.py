"""Credentials no configured secret names are still kept out of log lines and stored errors:
GitHub fine-grained tokens and credential-named URL query parameters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import structlog

from responder.log import _SENSITIVE_QUERY_NEEDS, _SENSITIVE_TEXT_NEEDS, REDACTED, SENSITIVE_TEXT, Redactor
from tests.support.logs import LogOutput

FINE_GRAINED = (
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijk"
)
VALUE = "s3cr3tVALUE42"


def redact(event: dict[str, Any]) -> dict[str, Any]:
    return dict(Redactor(())(None, "info", dict(event)))


def test_a_fine_grained_github_token_is_removed_from_a_line() -> None:
    """A GitHub fine-grained token (github_pat_ and 82 word characters) in a log line is masked."""
    event = {"event": "github.failed", "error": f"401 with {FINE_GRAINED} for /repos/o/r"}

    assert redact(event) == {"event": "github.failed", "error": f"401 with {REDACTED} for /repos/o/r"}


def test_a_fine_grained_github_token_is_removed_from_a_stored_error() -> None:
    """A fine-grained token in an error a step stores is masked, whatever its case."""
    assert Redactor().scrub_text(f"bad credentials: {FINE_GRAINED.upper()}") == f"bad credentials: {REDACTED}"


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apikey",
        "api-key",
        "key",
        "access_key",
        "subscription-key",
        "X-Amz-Signature",
        "sig",
        "auth",
        "client_secret",
        "refresh_token",
        "id_token",
        "password",
        "passwd",
        "pwd",
        "X-Amz-Credential",
        "API_KEY",
    ],
)
@pytest.mark.parametrize("separator", ["?", "&", ";"])
def test_a_credential_query_parameter_is_removed(name: str, separator: str) -> None:
    """The value of a credential-named query parameter is masked in lines and stored errors; the URL stays."""
    url = f"https://api.example/v1/x{separator}{name}={VALUE}&page=2"
    expected = f"https://api.example/v1/x{separator}{name}={REDACTED}&page=2"

    assert redact({"event": "e", "error": f"403 for url {url}"})["error"] == f"403 for url {expected}"
    assert Redactor().scrub_text(url) == expected


@pytest.mark.parametrize("name", ["page", "per_page", "state", "monkey_business", "keyword"])
def test_ordinary_query_parameters_are_kept(name: str) -> None:
    """Query parameters not named like a credential are kept (the line stays useful)."""
    event = {"event": "e", "url": f"https://api.example/v1/x?{name}=abcdefgh&page=2"}

    assert redact(event) == event


def test_every_word_the_short_way_checks_for_is_lower_case() -> None:
    """The short way compares the words with lowered text: a word with a capital would never be found."""
    assert all(word == word.lower() for word in _SENSITIVE_TEXT_NEEDS + _SENSITIVE_QUERY_NEEDS)
    assert all(word.endswith("=") for word in _SENSITIVE_QUERY_NEEDS)  # looked for only in a line with a '='


@pytest.mark.parametrize("text", [FINE_GRAINED, f"?api_key={VALUE}", f"&sig={VALUE}", f";X-Amz-Credential={VALUE}"])
def test_the_short_way_sends_the_new_shapes_to_the_pattern(text: str) -> None:
    """Each new credential shape holds a word the short way looks for, so it is never skipped."""
    assert SENSITIVE_TEXT.search(text)
    assert any(word in text.lower() for word in _SENSITIVE_TEXT_NEEDS + _SENSITIVE_QUERY_NEEDS)


def test_a_rendered_line_carries_neither_shape(logs: LogOutput) -> None:
    """A real JSON log line with a fine-grained token and an api_key parameter prints neither."""
    logs.new_lines()

    structlog.get_logger().warning("github.failed", error=f"401 for https://x/y?api_key={VALUE} using {FINE_GRAINED}")

    [line] = logs.new_lines()
    assert VALUE not in json.dumps(line) and "github_pat_" not in json.dumps(line)
    assert re.search(r"api_key=\[redacted\]", line["error"])
