"""Shared machinery of the in-process HTTP fakes (FakeGitHub, FakeJira, FakeToggles).

Each fake is a :class:`FakeServer` subclass that only says what is particular to its API:
its domain state (kept in :meth:`FakeServer.reset`), its authentication check
(:meth:`FakeServer._admit`), its routes (:attr:`FakeServer.ROUTES`, a table of
``(method, regex) -> handler`` built with :func:`route`), the shape of its JSON errors
(an :class:`ApiError` subclass and :meth:`FakeServer._error_body`) and its answer for a
request no route takes (:meth:`FakeServer._no_route`).

This module supplies the rest:

* a ``ThreadingHTTPServer`` on ``127.0.0.1:0`` in a daemon thread, with
  ``start``/``stop``/``with`` and :attr:`FakeServer.url`;
* the request pipeline: parse the JSON body, admit the request, apply a matching fault
  or route it, record it (:class:`Recorded`, :attr:`FakeServer.requests`) and answer JSON;
* fault injection (:meth:`FakeServer.fail_next`): plain errors, ambiguous errors returned
  *after* the write was applied, and slow answers for client timeouts; and outages
  (:meth:`FakeServer.outage`): every request fails for a while, some writes after they happened.

Every request is handled under one lock, so handlers may read and write the fake's state
freely; the sleep of an injected delay happens outside it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class Recorded:
    """One HTTP request a fake received (whatever its outcome)."""

    method: str
    path: str  # as sent, with the query string (FakeGitHub leaves its prefix out)
    headers: dict[str, str]
    body: Any  # parsed JSON; the raw text when it is not JSON; None when there was no body
    status: int  # status code the fake answered with
    at: float = 0.0  # when it arrived (time.monotonic())


# --------------------------------------------------------------------------- building blocks for the fakes


@dataclass
class Response:
    """What a fake answers: a status, a JSON-serialisable body and extra headers."""

    status: int
    body: Any = None  # None means "no body" (e.g. 204)
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers; its :attr:`response` is what the client gets.

    Each fake subclasses it with a constructor that builds its API's error body.
    """

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body!r}")
        self.response = Response(status, body, dict(headers or {}))


@dataclass
class Request:
    """One parsed HTTP request, as handlers see it."""

    method: str
    target: str  # the request target as sent: path and query string
    path: str  # without query string (and without FakeGitHub's prefix); routes and faults match this
    query: dict[str, list[str]]  # every value of each query parameter
    headers: dict[str, str]
    body: Any  # parsed JSON; the raw text when it is not JSON; None when there was no body
    body_is_json: bool  # False when there was a body and it did not parse as JSON

    @property
    def params(self) -> dict[str, str]:
        """The first value of each query parameter."""
        return {name: values[0] for name, values in self.query.items()}


@dataclass(frozen=True)
class Route:
    """One line of a fake's routing table; ``handler(fake, request, **path_groups)``."""

    method: str
    pattern: re.Pattern[str]  # full-matched against Request.path
    handler: Callable[..., Response]


def route(method: str, pattern: str, handler: Callable[..., Response]) -> Route:
    """A :class:`Route`; the named groups of ``pattern`` reach the handler URL-decoded."""
    return Route(method, re.compile(pattern), handler)


@dataclass
class Fault:
    """One injected failure, armed by :meth:`FakeServer.fail_next`."""

    method: str  # upper case, or "*"
    pattern: re.Pattern[str]  # re.search-ed against Request.path
    status: int | None  # None: answer normally (after the delay)
    body: Any
    headers: dict[str, str]
    remaining: int
    after_write: bool
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in ("*", method) and self.pattern.search(path) is not None

    def response(self) -> Response:
        assert self.status is not None
        return Response(self.status, copy.deepcopy(self.body), dict(self.headers))


@dataclass
class Outage:
    """A service failing every request until ``until`` (monotonic clock); see :meth:`FakeServer.outage`."""

    until: float
    response: Response
    lose_every: int
    writes: int = 0
    lost: int = 0

    def fail(self, request: Request, apply: Callable[[Request], Response]) -> ApiError:
        """The error for ``request``; a write whose turn it is is carried out first."""
        if request.method != "GET":
            self.writes += 1
            if self.lose_every and self.writes % self.lose_every == 0:
                apply(request)
                self.lost += 1
        return ApiError(self.response.status, copy.deepcopy(self.response.body))


def reason_phrase(status: int) -> str:
    """``"Bad Gateway"`` for 502; ``"Error"`` for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def parse_json_body(raw_body: bytes) -> tuple[Any, bool]:
    """``(body, is_json)``: the parsed JSON, or the raw text and False; ``(None, True)`` when empty."""
    if not raw_body.strip():
        return None, True
    try:
        return json.loads(raw_body), True
    except ValueError:
        return raw_body.decode("utf-8", "replace"), False


# --------------------------------------------------------------------------- the base class


class FakeServer:
    """An HTTP API served on 127.0.0.1 from a daemon thread; subclasses supply the API.

    A subclass sets its own attributes, then calls ``super().__init__()``, which calls
    :meth:`reset`; its ``reset`` calls ``super().reset()`` and (re)creates its state.
    """

    ROUTES: ClassVar[tuple[Route, ...]] = ()
    CONTENT_TYPE: ClassVar[str] = "application/json; charset=utf-8"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running server (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset(self) -> None:
        """Forget every request and fault; subclasses also forget their state. The server keeps running."""
        with self._lock:
            self._requests: list[Recorded] = []
            self._faults: list[Fault] = []
            self._connections = 0
            self._outage: Outage | None = None

    # ----------------------------------------------------------------- observing and arranging

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def connections(self) -> int:
        """TCP connections clients opened since the last reset (keep-alive serves many requests on one)."""
        with self._lock:
            return self._connections

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

        ``path_regex`` is ``re.search``-ed against the path without query string (and
        without FakeGitHub's prefix); ``method`` may be ``"*"``. The failure answers
        ``status`` with ``body`` (default: the API's error body holding the reason phrase,
        e.g. ``{"message": "Bad Gateway"}``) and extra ``headers`` (e.g. ``Retry-After``).
        With ``after_write=True`` the request is applied to the state first, then the error
        is returned (the ambiguous "did it happen?" failure). ``delay`` seconds are slept
        before answering; ``status=None`` with a delay gives a slow but normal answer.
        A request the fake refuses before routing (bad credentials, a body that is not
        JSON where JSON is required) fails that way and leaves the fault armed.
        """
        if body is None and status is not None:
            body = self._error_body(reason_phrase(status))
        with self._lock:
            self._faults.append(
                Fault(
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

    def outage(self, seconds: float, *, status: int = 502, lose_every: int = 2) -> None:
        """Fail every request for the next ``seconds`` with ``status``, as a service in an outage
        does. Of the writes (POST, PATCH, PUT, DELETE) sent meanwhile, every ``lose_every``-th is
        carried out before it fails, its answer lost (0: none is); the others do nothing."""
        with self._lock:
            self._outage = Outage(
                until=time.monotonic() + seconds,
                response=Response(status, self._error_body(reason_phrase(status))),
                lose_every=lose_every,
            )

    @property
    def outage_writes(self) -> tuple[int, int]:
        """``(carried out, not carried out)``: the writes the last outage failed."""
        with self._lock:
            outage = self._outage
            return (outage.lost, outage.writes - outage.lost) if outage is not None else (0, 0)

    # ----------------------------------------------------------------- what subclasses decide

    def _error_body(self, message: str) -> Any:
        """The API's error body for ``message`` (used for faults and for bugs in the fake)."""
        return {"message": message}

    def _local_path(self, path: str) -> str:
        """The path routes and faults see; FakeGitHub strips its prefix here."""
        return path

    def _admit(self, request: Request) -> None:
        """Raise an :class:`ApiError` for a request refused before routing (e.g. bad credentials)."""

    def _no_route(self, request: Request, path_known: bool) -> ApiError:
        """The error for a request no route takes; ``path_known``: a route has the path, not the method."""
        return ApiError(404, self._error_body("Not Found"))

    def _extra_headers(self) -> dict[str, str]:
        """Headers added to every response (the response's own headers win)."""
        return {}

    # ----------------------------------------------------------------- request pipeline

    def _handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> tuple[Response, float]:
        """Answer one HTTP request; returns the response and how long to sleep before sending it."""
        split = urllib.parse.urlsplit(target)
        path = self._local_path(split.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        arrived = time.monotonic()
        body, body_is_json = parse_json_body(raw_body)
        request = Request(method, target, path, query, dict(headers), body, body_is_json)
        delay = 0.0
        with self._lock:
            try:
                self._admit(request)
                if self._outage is not None and time.monotonic() < self._outage.until:
                    raise self._outage.fail(request, self._apply)
                fault = next((f for f in self._faults if f.matches(method, path)), None)
                if fault is not None:
                    fault.remaining -= 1
                    delay = fault.delay
                if fault is None or fault.status is None:
                    response = self._apply(request)
                else:
                    if fault.after_write:
                        self._apply(request)  # the write happens; the client never learns of it
                    response = fault.response()
            except ApiError as error:
                response = error.response
            except Exception as error:  # a bug in the fake: say so instead of dropping the connection
                response = Response(500, self._error_body(f"{type(self).__name__} internal error: {error!r}"))
            recorded_path = path + (f"?{split.query}" if split.query else "")
            recorded = Recorded(method, recorded_path, dict(headers), copy.deepcopy(body), response.status, arrived)
            self._requests.append(recorded)
            own = {name.lower() for name in response.headers}
            extra = {name: value for name, value in self._extra_headers().items() if name.lower() not in own}
            response.headers = {**extra, **response.headers}
        return response, delay

    def _apply(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except ApiError as error:
            return error.response

    def _dispatch(self, request: Request) -> Response:
        """Call the handler of the route that full-matches the request's method and path."""
        path_known = False
        for candidate in self.ROUTES:
            match = candidate.pattern.fullmatch(request.path)
            if match is None:
                continue
            path_known = True
            if candidate.method == request.method:
                params = {name: urllib.parse.unquote(value) for name, value in match.groupdict().items()}
                return candidate.handler(self, request, **params)
        raise self._no_route(request, path_known)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as GitHub, Jira and any HTTP/1.1 server: a client's connection serves many requests.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no waiting for the client's ACK
    server: _Server

    def setup(self) -> None:
        super().setup()
        fake = self.server.fake
        with fake._lock:
            fake._connections += 1

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        response, delay = fake._handle(self.command, self.path, dict(self.headers.items()), raw_body)
        if delay:
            time.sleep(delay)
        payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", fake.CONTENT_TYPE)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.status != 204:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. it timed out during an injected delay)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
