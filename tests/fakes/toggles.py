"""In-process fake of a feature-toggle service, served over real HTTP on 127.0.0.1.

Responder re-tags a model's serving endpoint with one JSON call (PUT by default). Tests point
an unmodified ``ToggleClient`` at :attr:`FakeToggles.url`, so requests, URL quoting, headers
and timeouts run for real.

What is faked:

* ``PUT``, ``POST`` or ``PATCH /endpoints/{model_id}`` with a JSON object holding ``version``
  stores that body as the endpoint's state (:attr:`FakeToggles.endpoints`, keyed by the
  URL-decoded ``model_id``) and answers ``200`` with it. A body that is not a JSON object, or
  lacks ``version``, is ``400``; every other method or path is ``404`` ("no route for ...").
  Errors are ``{"message": ...}``.
* Authentication: with a token, anything but ``Authorization: Bearer <token>`` is ``401``;
  with ``token=None`` no header is required.
* Every request is recorded in :attr:`FakeToggles.requests`, whatever its outcome.
* :meth:`FakeToggles.fail_next` injects faults: plain errors, errors returned *after* the
  write was applied, and slow answers for client timeouts. Authentication is checked before
  any fault applies.

Stdlib only; the server, the request pipeline, request recording and fault injection come
from :mod:`tests.fakes.server`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.fakes.server import ApiError, FakeServer, Request, Response, route
from tests.fakes.server import Recorded as Recorded  # re-exported: one request the fake received

WRITE_METHODS = frozenset({"PUT", "POST", "PATCH"})  # the methods FakeToggles.ROUTES accept
ENDPOINT_PATH = re.compile(r"/endpoints/(?P<model_id>[^/]+)")


class _ToggleError(ApiError):
    """Raised by handlers; becomes a ``{"message": ...}`` error response."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, {"message": message}, headers)


class FakeToggles(FakeServer):
    """A feature-toggle service holding one state per model endpoint; see the module docstring."""

    def __init__(self, *, token: str | None = "toggle-test-token") -> None:
        self.token = token
        super().__init__()

    def reset(self) -> None:
        """Forget every endpoint state, request and fault; keep the server running."""
        with self._lock:
            super().reset()
            self._endpoints: dict[str, dict[str, Any]] = {}

    @property
    def endpoints(self) -> dict[str, dict[str, Any]]:
        """The last body written per model_id."""
        with self._lock:
            return copy.deepcopy(self._endpoints)

    # ----------------------------------------------------------------- request pipeline hooks

    def _admit(self, request: Request) -> None:
        """Refuse a missing or wrong bearer token (401), before faults; with ``token=None`` admit all."""
        if self.token is None:
            return
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or credential.strip() != self.token:
            raise _ToggleError(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})

    def _no_route(self, request: Request, path_known: bool) -> ApiError:
        return _ToggleError(404, f"no route for {request.method} {request.path}")

    # ----------------------------------------------------------------- handlers

    def _write_endpoint(self, req: Request, model_id: str) -> Response:
        if not isinstance(req.body, dict):  # also when the body is not JSON at all
            raise _ToggleError(400, "body must be a JSON object")
        if not isinstance(req.body.get("version"), str) or not req.body["version"]:
            raise _ToggleError(400, 'body lacks "version"')
        self._endpoints[model_id] = copy.deepcopy(req.body)
        return Response(200, {"model_id": model_id, **req.body})

    ROUTES = (
        route("PUT", ENDPOINT_PATH.pattern, _write_endpoint),
        route("POST", ENDPOINT_PATH.pattern, _write_endpoint),
        route("PATCH", ENDPOINT_PATH.pattern, _write_endpoint),
    )
