"""Jira's REST API as responder calls it: one ``requests.Session`` with the account's
credentials, every answer read by the one HTTP policy, and JQL searches paged to the end.

Errors are translated in one place (``JiraHttp.send``): 5xx, 429 (``Retry-After`` honoured),
connection errors and timeouts become ``TransientError``; any other 4xx a ``PermanentError``
quoting Jira's ``errorMessages``/``errors`` and the status, with a hint of what to check. The
token and the ``Authorization`` header never appear in a message.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

from responder import metrics
from responder.errors import IntegrationError, PermanentError
from responder.integrations import http_policy
from responder.integrations.jira_answers import SYSTEM, issues_of, jira_message

PAGE_SIZE = 50
MAX_PAGES = 100  # a server that never says "last page" must not keep a worker forever
SEARCH_FIELDS = ("summary",)

_HINTS = {
    401: "; check RESPONDER_JIRA_TOKEN, and RESPONDER_JIRA_USER (Cloud: account e-mail with an API token; "
    "Data Center: no user, a personal access token)",
    403: "; the Jira account lacks a permission this call needs in the project",
    404: "; check RESPONDER_JIRA_URL, the project key and that the issue still exists",
}


class JiraHttp:
    """Calls to one Jira: Basic auth with an API token when ``user`` is set (Cloud), else the
    token as ``Bearer`` (a Data Center personal access token)."""

    def __init__(self, *, base_url: str, token: str, user: str | None, search_path: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.search_path = search_path
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if user:
            self._session.auth = (user, token)
            basic = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
            self._secrets = tuple(s for s in (token, basic) if s)
        else:
            self._session.headers["Authorization"] = f"Bearer {token}"
            self._secrets = (token,) if token else ()

    @metrics.counted(SYSTEM)
    def send(
        self, method: str, path: str, action: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """One call to Jira; its parsed JSON answer (None when empty), or the translated error."""
        try:
            response = self._session.request(
                method, self.base_url + path, json=json, params=params, timeout=self._timeout
            )
        except http_policy.NO_ANSWER as exc:
            raise http_policy.unanswered(action, "Jira", exc, system=SYSTEM) from None
        except requests.RequestException as exc:
            raise PermanentError(
                f"{action}: request to Jira failed ({type(exc).__name__}); check RESPONDER_JIRA_URL", system=SYSTEM
            ) from None
        if response.status_code >= 400:
            raise self._error(response, action)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PermanentError(
                f"{action}: Jira answered {response.status_code} with a body that is not JSON; "
                "check that RESPONDER_JIRA_URL is the Jira base URL",
                system=SYSTEM,
                status=response.status_code,
            ) from None

    def _error(self, response: requests.Response, action: str) -> IntegrationError:
        status, message = response.status_code, jira_message(response)
        text = self._redact(f"{action}: Jira answered {status}: {message}")
        return http_policy.failure(
            status, response.headers, text, system=SYSTEM, message=message, hint=_HINTS.get(status, "")
        )

    def _redact(self, text: str) -> str:
        """Jira (or a proxy) may echo request headers; credentials never reach a message."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def search_by_token(self, jql: str, action: str, reconcile: list[int]) -> list[dict[str, Any]]:
        """Cloud enhanced search: follow ``nextPageToken`` until the last page."""
        request: dict[str, Any] = {"jql": jql, "fields": list(SEARCH_FIELDS), "maxResults": PAGE_SIZE}
        if reconcile:
            request["reconcileIssues"] = reconcile
        found: dict[str, dict[str, Any]] = {}
        for _ in range(MAX_PAGES):
            page = self.send("POST", self.search_path, action, json=request)
            for issue in issues_of(page, action):
                found.setdefault(str(issue.get("key")), issue)
            token = page.get("nextPageToken")
            if not isinstance(token, str) or not token or page.get("isLast") is True:
                return list(found.values())
            request = {**request, "nextPageToken": token}
        raise self._too_many_pages(action)

    def search_by_offset(self, jql: str, action: str) -> list[dict[str, Any]]:
        """Server/Data Center search: advance ``startAt`` by what each page held until ``total``."""
        found: dict[str, dict[str, Any]] = {}
        start = 0
        for _ in range(MAX_PAGES):
            request = {"jql": jql, "startAt": start, "maxResults": PAGE_SIZE, "fields": list(SEARCH_FIELDS)}
            page = self.send("POST", self.search_path, action, json=request)
            batch = issues_of(page, action)
            for issue in batch:
                found.setdefault(str(issue.get("key")), issue)
            start += len(batch)
            total = page.get("total")
            if not batch or not isinstance(total, int) or start >= total:
                return list(found.values())
        raise self._too_many_pages(action)

    def _too_many_pages(self, action: str) -> PermanentError:
        return PermanentError(
            f"{action}: more than {MAX_PAGES} pages of results from {self.search_path}; "
            "check RESPONDER_JIRA_SEARCH_PATH and close stale responder tickets",
            system=SYSTEM,
        )
