"""Reading Jira's answers: issues out of search pages, an issue's id and open state, its error
message, its Retry-After."""

from __future__ import annotations

from typing import Any

import requests

from responder.errors import PermanentError

SYSTEM = "jira"


def issues_of(page: Any, action: str) -> list[dict[str, Any]]:
    issues = page.get("issues") if isinstance(page, dict) else None
    if not isinstance(issues, list):
        raise PermanentError(
            f"{action}: the search answer has no 'issues' list; check RESPONDER_JIRA_SEARCH_PATH", system=SYSTEM
        )
    return [issue for issue in issues if isinstance(issue, dict)]


def id_of(issue: Any) -> int | None:
    """The numeric id of an issue bean (Jira sends it as a string)."""
    value = issue.get("id") if isinstance(issue, dict) else None
    return int(value) if isinstance(value, str | int) and str(value).isdigit() else None


def category_key(status: Any) -> str | None:
    """``statusCategory.key`` of a status (or transition target) object."""
    category = status.get("statusCategory") if isinstance(status, dict) else None
    key = category.get("key") if isinstance(category, dict) else None
    return key if isinstance(key, str) else None


def jira_message(response: requests.Response) -> str:
    """Jira's ``errorMessages`` and ``errors`` on one line, or the start of a non-JSON body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict):
        messages = data.get("errorMessages")
        if isinstance(messages, list):
            parts += [str(m) for m in messages if m]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{field}: {message}" for field, message in errors.items()]
        if not parts and data.get("message"):
            parts.append(str(data["message"]))
    text = "; ".join(parts) if parts else response.text[:200]
    return " ".join(text.split()) or response.reason or "no message"


def open_and_labelled(issue: dict[str, Any], wanted: list[str]) -> bool:
    """Whether ``issue`` is not done and still carries every one of the ``wanted`` labels."""
    fields = issue.get("fields")
    fields = fields if isinstance(fields, dict) else {}
    labels = fields.get("labels")
    labelled = isinstance(labels, list) and set(wanted) <= set(labels)
    return labelled and category_key(fields.get("status")) != "done"
