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
  write was applied, and slow answers for client timeouts.

Stdlib only; state is guarded by one lock, the server runs in a daemon thread.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

WRITE_METHODS = frozenset({"PUT", "POST", "PATCH"})
ENDPOINT_PATH = re.compile(r"/endpoints/(?P<model_id>[^/]+)")


@dataclass(frozen=True)
class Recorded:
    """One HTTP request the fake received (whatever its outcome)."""

    method: str
    path: str  # as sent, percent-encoding and query string included
    headers: dict[str, str]
    body: Any  # parsed JSON; the raw text when it is not JSON; None when there was no body
    status: int  # status code the fake answered with


@dataclass
class _Response:
    status: int
    body: Any = None  # JSON-serialisable; None means "no body"
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.response = _Response(status, {"message": message}, dict(headers or {}))


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    body: dict[str, Any] | None
    headers: dict[str, str]
    remaining: int
    after_write: bool
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in ("*", method) and self.pattern.search(path) is not None

    def response(self) -> _Response:
        assert self.status is not None
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        body = self.body if self.body is not None else {"message": phrase}
        return _Response(self.status, body, dict(self.headers))


class FakeToggles:
    """A feature-toggle service holding one state per model endpoint; see the module docstring."""

    def __init__(self, *, token: str | None = "toggle-test-token") -> None:
        self.token = token
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeToggles:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-toggles", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeToggles:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give ``ToggleClient(base_url=...)``."""
        if self._server is None:
            raise RuntimeError("FakeToggles is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset(self) -> None:
        """Forget every endpoint state, request and fault; keep the server running."""
        with self._lock:
            self._endpoints: dict[str, dict[str, Any]] = {}
            self._requests: list[Recorded] = []
            self._faults: list[_Fault] = []

    # ----------------------------------------------------------------- observable state

    @property
    def endpoints(self) -> dict[str, dict[str, Any]]:
        """The last body written per model_id."""
        with self._lock:
            return copy.deepcopy(self._endpoints)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return copy.deepcopy(self._requests)

    # ----------------------------------------------------------------- faults

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = 502,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after_write: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path_regex`` fail.

        ``path_regex`` is ``re.search``-ed against the path as sent, without the query string;
        ``method`` may be ``"*"``. The failure answers ``status`` with ``body`` (default
        ``{"message": <reason phrase>}``) and extra ``headers`` (e.g. ``Retry-After``).
        With ``after_write=True`` the request is applied to the state first, then the error
        is returned (the ambiguous "did it happen?" failure). ``delay`` seconds are slept
        before answering; ``status=None`` with a delay gives a slow but normal answer.
        Authentication is checked before any fault applies.
        """
        with self._lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    pattern=re.compile(path_regex),
                    status=status,
                    body=body,
                    headers=dict(headers or {}),
                    remaining=times,
                    after_write=after_write,
                    delay=delay,
                )
            )

    # ----------------------------------------------------------------- request pipeline

    def _handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> tuple[_Response, float]:
        """Answer one HTTP request; returns the response and how long to sleep before sending it."""
        split = urllib.parse.urlsplit(target)
        body: Any = None
        is_json = True
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except ValueError:
                body, is_json = raw_body.decode("utf-8", "replace"), False
        delay = 0.0
        with self._lock:
            try:
                if not self._authorized(headers.get("Authorization", "")):
                    raise _ApiError(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
                fault = next((f for f in self._faults if f.matches(method, split.path)), None)
                if fault is not None:
                    fault.remaining -= 1
                    delay = fault.delay
                if fault is None or fault.status is None:
                    response = self._apply(method, split.path, body, is_json)
                else:
                    if fault.after_write:
                        self._apply(method, split.path, body, is_json)  # the write happens; the client never learns
                    response = fault.response()
            except _ApiError as error:
                response = error.response
            except Exception as error:  # a bug in the fake: say so instead of dropping the connection
                response = _Response(500, {"message": f"FakeToggles internal error: {error!r}"})
            self._requests.append(Recorded(method, target, dict(headers), copy.deepcopy(body), response.status))
        return response, delay

    def _authorized(self, authorization: str) -> bool:
        if self.token is None:
            return True
        scheme, _, credential = authorization.partition(" ")
        return scheme.lower() == "bearer" and credential.strip() == self.token

    def _apply(self, method: str, path: str, body: Any, is_json: bool) -> _Response:
        try:
            return self._write_endpoint(method, path, body, is_json)
        except _ApiError as error:
            return error.response

    def _write_endpoint(self, method: str, path: str, body: Any, is_json: bool) -> _Response:
        match = ENDPOINT_PATH.fullmatch(path)
        if match is None or method not in WRITE_METHODS:
            raise _ApiError(404, f"no route for {method} {path}")
        if not is_json or not isinstance(body, dict):
            raise _ApiError(400, "body must be a JSON object")
        if not isinstance(body.get("version"), str) or not body["version"]:
            raise _ApiError(400, 'body lacks "version"')
        model_id = urllib.parse.unquote(match.group("model_id"))
        self._endpoints[model_id] = copy.deepcopy(body)
        return _Response(200, {"model_id": model_id, **body})


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeToggles


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        response, delay = self.server.fake._handle(self.command, self.path, dict(self.headers.items()), raw_body)
        if delay:
            time.sleep(delay)
        payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. it timed out during an injected delay)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
