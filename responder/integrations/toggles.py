"""The feature-toggle service: point a model's serving endpoint at a version (the rollback re-tag).

One HTTP call, shaped by settings: ``toggle_method`` (PUT by default) to ``toggle_url`` +
``toggle_path``, with a JSON object of ``toggle_body`` as the body. The path and every body
value are templates over ``model_id``, ``version``, ``reason`` and ``endpoint``, rendered in
the playbook sandbox and parsed when the client is built. Values put into the path are
URL-quoted whole, so a label such as ``a/b`` cannot change which resource is written.

The call is idempotent: it is a PUT of the desired state ("this model's endpoint serves this
version"), so sending it twice leaves one state, and it is therefore safe to retry after any
failure -- even an ambiguous one, where the service applied the change but the answer was lost.
requests does not retry by itself; runs are retried by RQ on TransientError. (A deployment that
configures POST or PATCH keeps this guarantee only if its service treats the call as a set.)

Errors: 5xx, 429 and 408 answers, connection errors and timeouts are TransientError, with
``retry_after`` from a Retry-After header; any other answer outside 2xx is PermanentError
carrying the status and the service's message. The bearer token never appears in a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import requests

from responder import metrics
from responder.errors import ConfigError, IntegrationError, PermanentError, PlaybookError, TransientError
from responder.integrations import http_policy
from responder.integrations.base import Outcome
from responder.playbooks import templating

SYSTEM = "toggles"
METHODS = ("PUT", "POST", "PATCH")
DEFAULT_PATH = "/endpoints/{{ model_id }}"
DEFAULT_BODY: Mapping[str, str] = {"model_id": "{{ model_id }}", "version": "{{ version }}", "reason": "{{ reason }}"}
MESSAGE_LIMIT = 200  # characters of the service's message kept in an error


@dataclass(frozen=True)
class RetagRequest:
    """One rendered re-tag call; ``path`` is relative to the service's base URL."""

    method: str
    path: str
    body: dict[str, str]


class RetagTemplate:
    """The method, path template and body templates of the re-tag call, checked when built.

    Raises ConfigError naming the setting (``toggle_path``, ``toggle_body['version']``...) when
    a template does not parse; an unknown name in a template is only found by ``render``.
    """

    def __init__(self, *, method: str = "PUT", path: str = DEFAULT_PATH, body: Mapping[str, str] | None = None) -> None:
        self.method = method.upper()
        if self.method not in METHODS:
            raise ConfigError(f"toggle_method {method!r} is not one of {', '.join(METHODS)}")
        _check("toggle_path", path)
        if not path.lstrip().startswith(("/", "{")):
            raise ConfigError(f"toggle_path {path!r} must start with '/'")
        self.path = path
        self.body = dict(DEFAULT_BODY if body is None else body)
        for key, template in self.body.items():
            _check(f"toggle_body[{key!r}]", template)

    def render(self, *, model_id: str, version: str, reason: str, endpoint: str | None) -> RetagRequest:
        """The call for these values; ConfigError when a template fails, PermanentError for an unsafe path."""
        context = {"model_id": model_id, "version": version, "reason": reason, "endpoint": endpoint or ""}
        path = _render("toggle_path", self.path, {name: quote(value, safe="") for name, value in context.items()})
        if not path.startswith("/"):
            raise ConfigError(f"toggle_path {self.path!r} rendered to {path!r}, which does not start with '/'")
        if any(segment in (".", "..") for segment in path.split("/")):
            # HTTP clients collapse these segments: the call would write some other resource.
            raise PermanentError(f"re-tag {model_id}: refusing path {path!r} with a '.' or '..' segment", system=SYSTEM)
        body = {key: _render(f"toggle_body[{key!r}]", template, context) for key, template in self.body.items()}
        return RetagRequest(self.method, path, body)


class ToggleClient:
    """Toggles over HTTP: one requests Session, no I/O until ``retag``."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        method: str = "PUT",
        path: str = DEFAULT_PATH,
        body: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise ConfigError(f"toggle_url {base_url!r} must be an http:// or https:// URL")
        self._base_url = base_url.rstrip("/")
        self._template = RetagTemplate(method=method, path=path, body=body)
        self._token = token or None
        self._timeout = timeout
        self._session = requests.Session()

    @metrics.counted(SYSTEM)
    def retag(self, *, model_id: str, version: str, reason: str, endpoint: str | None) -> Outcome:
        """Send the re-tag call; safe to retry (see the module docstring)."""
        call = self._template.render(model_id=model_id, version=version, reason=reason, endpoint=endpoint)
        action = f"re-tag {model_id} to {version} ({call.method} {call.path})"
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._session.request(
                call.method, self._base_url + call.path, json=call.body, headers=headers, timeout=self._timeout
            )
        except requests.Timeout as exc:
            raise TransientError(
                f"{action}: toggle service did not answer within {self._timeout:g}s ({type(exc).__name__})",
                system=SYSTEM,
            ) from None
        except http_policy.NO_ANSWER as exc:
            raise http_policy.unanswered(action, "toggle service", exc, system=SYSTEM) from None
        except requests.RequestException as exc:  # str(exc) may quote a header value: the token
            raise PermanentError(f"{action}: request not sent ({type(exc).__name__})", system=SYSTEM) from None
        if 200 <= response.status_code < 300:
            return Outcome(f"re-tagged {model_id} to {version}", url=None)
        raise self._classify(response, action)

    def close(self) -> None:
        self._session.close()

    def _classify(self, response: requests.Response, action: str) -> IntegrationError:
        message = self._service_message(response)
        text = f"{action}: toggle service answered {response.status_code}: {message}"
        return http_policy.failure(response.status_code, response.headers, text, system=SYSTEM, message=message)

    def _service_message(self, response: requests.Response) -> str:
        """The JSON ``message`` or ``error`` field, else the text: one line, token redacted, first 200 characters."""
        try:
            data = response.json()
        except ValueError:
            data = None
        text = response.text
        if isinstance(data, dict):
            field = data.get("message") or data.get("error")
            if field:
                text = field if isinstance(field, str) else json.dumps(field)
        text = " ".join(text.split())
        if self._token:
            text = text.replace(self._token, "***")
        return text[:MESSAGE_LIMIT] or "no message"


class DryRunToggles:
    """Toggles that only plans: renders the call like ToggleClient (so template errors show) and sends nothing."""

    def __init__(self, *, method: str = "PUT", path: str = DEFAULT_PATH, body: dict[str, str] | None = None) -> None:
        self._template = RetagTemplate(method=method, path=path, body=body)

    def retag(self, *, model_id: str, version: str, reason: str, endpoint: str | None) -> Outcome:
        call = self._template.render(model_id=model_id, version=version, reason=reason, endpoint=endpoint)
        return Outcome(f"would re-tag {model_id} to {version} ({call.method} {call.path})", planned=True)


def _check(setting: str, template: str) -> None:
    try:
        templating.check(template)
    except PlaybookError as exc:
        raise ConfigError(f"invalid {setting}: {exc}") from None


def _render(setting: str, template: str, context: dict[str, str]) -> str:
    try:
        return templating.render(template, context)
    except PlaybookError as exc:
        raise ConfigError(f"invalid {setting}: {exc}; names available: {', '.join(context)}") from None
