"""In-process fake of the slice of the Jira REST API that responder uses.

Responder files incident tickets in Jira with ``requests``: it creates issues, comments on
them, transitions them to done and finds the open ones with JQL. This module serves those
endpoints over real HTTP on 127.0.0.1, so tests run the real client, its session, its
authentication and its error handling against answers shaped like Jira's.

What is faked, and how closely:

* One project (``MLOPS`` unless told otherwise). Issues are ``<PROJECT>-<n>`` with ids from
  10001; statuses ``To Do`` (category ``new``), ``In Progress`` (``indeterminate``) and
  ``Done`` (``done``), reached through the transitions of :attr:`FakeJira.transitions`
  (default: ``11`` "Start Progress" and ``31`` "Done"); a transition into the issue's
  current status is not offered, as in Jira's default workflow.
* Authentication: with a ``user``, HTTP Basic ``user:token`` (Jira Cloud API token);
  with ``user=None``, ``Authorization: Bearer <token>`` (Data Center personal access
  token). Anything else is 401.
* Errors look like Jira's: ``{"errorMessages": [...], "errors": {field: message}}``. Issue
  creation validates like Jira: the project key, the issue type, a summary of at most 255
  characters without newlines, a string description (v2 wiki markup, not ADF), labels
  without spaces, and no unknown fields.
* Search runs a small JQL evaluator for the subset responder sends -- ``project = "X"``,
  ``labels = "x"`` and ``statusCategory != Done`` (also ``=``) joined by ``AND``, then
  ``ORDER BY created DESC|ASC``; strings are double-quoted with ``\\"`` and ``\\\\``
  escapes. Anything else (``OR``, parentheses, ``~``, other fields) answers 400 with an
  ``errorMessages`` entry, so a client sending unsupported JQL fails loudly.
* ``/rest/api/3/search/jql`` pages by an opaque ``nextPageToken`` (present, with
  ``isLast: false``, only when more issues follow) and returns only the requested
  ``fields``; ``/rest/api/2/search`` pages by ``startAt``/``maxResults`` with ``total``.
  Pages hold at most :attr:`FakeJira.max_results_cap` issues, like Jira's server-side
  cap, so tests can force pagination with a few issues. POST bodies with unknown
  properties are refused (400), as Jira's JSON binding does.
* ``/rest/api/3/search/jql`` is eventually consistent, like Jira Cloud's: it sees each issue
  as it was :attr:`FakeJira.search_lag_seconds` ago, so an issue created more recently is
  missing and a recent transition or label change is not seen yet (the status, labels and
  summary it answers are the old ones too). Issues whose ids are listed in
  ``reconcileIssues`` (a list of at most 50 numeric issue ids: a JSON array in the POST
  body, or repeated or comma-separated ``reconcileIssues`` query parameters on GET) are seen
  as they are now, as Jira Cloud's read-after-write does. ``/rest/api/2/search`` (Data
  Center) and ``GET /rest/api/2/issue/{key}`` are strongly consistent; a v2 search body
  holding ``reconcileIssues`` is refused, as Data Center does (an unknown property). More
  than 50 ids answer 400.
* Unknown paths answer 404, a known path with another method 405; every request is
  recorded in :attr:`FakeJira.requests` whatever its outcome.
* :meth:`FakeJira.fail_next` injects faults: plain errors, ambiguous errors returned
  *after* the write was applied, and slow answers for client timeouts.

Endpoints::

    POST /rest/api/2/issue
    GET  /rest/api/2/issue/{key}?fields=
    POST /rest/api/2/issue/{key}/comment
    GET  /rest/api/2/issue/{key}/transitions
    POST /rest/api/2/issue/{key}/transitions
    GET  /rest/api/3/search/jql      POST /rest/api/3/search/jql   (Cloud enhanced search)
    GET  /rest/api/2/search          POST /rest/api/2/search       (Server / Data Center)

Stdlib only; the server, the request pipeline, request recording and fault injection
come from :mod:`tests.fakes.server`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import ApiError, FakeServer, Request, Response, route
from tests.fakes.server import Recorded as Recorded  # re-exported: one request the fake received

ISSUE_TYPES = ("Task", "Bug", "Story", "Incident")
# status name -> (category key, category name, category id), as in a default Jira workflow
STATUSES: dict[str, tuple[str, str, int]] = {
    "To Do": ("new", "To Do", 2),
    "In Progress": ("indeterminate", "In Progress", 4),
    "Done": ("done", "Done", 3),
}
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}
SUMMARY_MAX = 255
LABEL_MAX = 255
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS_CAP = 100
DEFAULT_SEARCH_LAG_SECONDS = 2.0  # Jira Cloud shows most writes in search within seconds
RECONCILE_MAX = 50  # Jira Cloud reconciles at most 50 issues per search
V3_SEARCH_KEYS = frozenset(
    {
        "jql",
        "nextPageToken",
        "maxResults",
        "fields",
        "expand",
        "properties",
        "fieldsByKeys",
        "failFast",
        "reconcileIssues",
    }
)
V2_SEARCH_KEYS = frozenset(
    {"jql", "startAt", "maxResults", "fields", "expand", "properties", "fieldsByKeys", "validateQuery"}
)
ISSUE_FIELDS = frozenset({"project", "summary", "description", "issuetype", "labels"})


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class Transition:
    """A workflow transition offered on every issue not already in ``to_status``."""

    id: str
    name: str
    to_status: str
    to_category: str  # "new" | "indeterminate" | "done"


DEFAULT_TRANSITIONS = (
    Transition("11", "Start Progress", "In Progress", "indeterminate"),
    Transition("31", "Done", "Done", "done"),
)


@dataclass(frozen=True)
class JiraIssue:
    """Snapshot of an issue as the fake currently stores it."""

    key: str
    summary: str
    description: str | None
    labels: list[str]
    issue_type: str
    status: str  # "To Do" | "In Progress" | "Done" (or a status a custom transition leads to)
    status_category: str  # "new" | "indeterminate" | "done"
    comments: list[str]  # comment bodies, oldest first


# --------------------------------------------------------------------------- internals


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class _JiraError(ApiError):
    """Raised by handlers; becomes a Jira-style JSON error response."""

    def __init__(self, status: int, *messages: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(status, {"errorMessages": list(messages), "errors": dict(errors or {})})


class _JqlError(Exception):
    pass


@dataclass
class _Comment:
    id: int
    body: str
    created: str


@dataclass(frozen=True)
class _Indexed:
    """What the eventually consistent search knows of an issue from one moment on."""

    since: float  # time.monotonic() of the write
    summary: str
    labels: tuple[str, ...]
    status: str
    status_category: str


@dataclass
class _StoredIssue:
    id: int
    key: str
    seq: int  # creation order, what ORDER BY created sorts on
    summary: str
    description: str | None
    labels: list[str]
    issue_type: str
    created: str
    updated: str
    status: str = "To Do"
    status_category: str = "new"
    comments: list[_Comment] = field(default_factory=list)
    indexed: list[_Indexed] = field(default_factory=list)  # oldest first; one entry per searchable write

    def index(self) -> None:
        """Record the searchable fields as they are now (after a create, transition or label change)."""
        self.indexed.append(
            _Indexed(time.monotonic(), self.summary, tuple(self.labels), self.status, self.status_category)
        )

    def as_searched(self, lag: float) -> _StoredIssue | None:
        """This issue as a search ``lag`` seconds behind sees it; None when it is too young to be seen."""
        horizon = time.monotonic() - lag
        seen = [entry for entry in self.indexed if entry.since <= horizon]
        if not seen:
            return None
        old = seen[-1]
        return replace(
            self, summary=old.summary, labels=list(old.labels), status=old.status, status_category=old.status_category
        )


_ISSUE = r"/rest/api/2/issue/(?P<key>[^/]+)"


# --------------------------------------------------------------------------- JQL subset


_JQL_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>!=|=)|(?P<word>[A-Za-z0-9_.\-]+)|(?P<other>\S))')


@dataclass(frozen=True)
class _Clause:
    field: str  # "project" | "labels" | "statuscategory"
    op: str  # "=" | "!="
    value: str


@dataclass(frozen=True)
class _Query:
    clauses: tuple[_Clause, ...]
    descending: bool | None  # None: no ORDER BY


def _tokens(jql: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for match in _JQL_TOKEN.finditer(jql):
        kind = match.lastgroup
        if kind is None:
            continue
        text = match.group(kind)
        if kind == "other":
            raise _JqlError(f"The character '{text}' is not supported here.")
        if kind == "string":
            inner = text[1:-1]
            bad = re.search(r'\\[^"\\]', inner)
            if bad:
                raise _JqlError(f"Illegal escape sequence '{bad.group()}' in a string.")
            text = re.sub(r"\\(.)", r"\1", inner)
        out.append((kind, text))
    return out


def _parse_jql(jql: str) -> _Query:
    """Parse the supported subset, or raise _JqlError with a Jira-like message."""
    tokens = _tokens(jql)
    pos = 0

    def peek_word() -> str | None:
        return tokens[pos][1].upper() if pos < len(tokens) and tokens[pos][0] == "word" else None

    def take(kinds: tuple[str, ...], what: str) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] not in kinds:
            got = f"'{tokens[pos][1]}'" if pos < len(tokens) else "the end of the query"
            raise _JqlError(f"Expecting {what} but got {got}.")
        pos += 1
        return tokens[pos - 1][1]

    clauses: list[_Clause] = []
    if tokens and peek_word() != "ORDER":
        while True:
            name = take(("word",), "a field name").lower()
            if name not in ("project", "labels", "statuscategory"):
                raise _JqlError(f"Field '{name}' is not supported by FakeJira (project, labels, statusCategory).")
            op = take(("op",), "an operator ('=' or '!=')")
            if name == "labels" and op != "=":
                raise _JqlError("Only 'labels = \"x\"' is supported by FakeJira.")
            clauses.append(_Clause(name, op, take(("string", "word"), "a value")))
            if peek_word() != "AND":
                break
            pos += 1
    descending: bool | None = None
    if peek_word() == "ORDER":
        pos += 1
        if peek_word() != "BY":
            raise _JqlError("Expecting 'BY' after 'ORDER'.")
        pos += 1
        sort_field = take(("word",), "a field to order by")
        if sort_field.lower() != "created":
            raise _JqlError(f"Ordering by '{sort_field}' is not supported by FakeJira (created only).")
        descending = False
        if peek_word() in ("ASC", "DESC"):
            descending = peek_word() == "DESC"
            pos += 1
    if pos < len(tokens):
        raise _JqlError(f"Expecting either 'AND' or 'ORDER BY' but got '{tokens[pos][1]}'.")
    return _Query(tuple(clauses), descending)


def _category_of(value: str) -> str | None:
    lowered = value.lower()
    for key, name in CATEGORY_NAMES.items():
        if lowered in (key, name.lower()):
            return key
    return None


def _holds(clause: _Clause, issue: _StoredIssue) -> bool:
    """Whether ``issue`` (always in the one project) satisfies a validated ``clause``."""
    if clause.field == "labels":
        return clause.value in issue.labels
    equal = True if clause.field == "project" else issue.status_category == _category_of(clause.value)
    return equal == (clause.op == "=")


# --------------------------------------------------------------------------- the fake


class FakeJira(FakeServer):
    """A single-project Jira REST API served on 127.0.0.1; see the module docstring."""

    CONTENT_TYPE = "application/json;charset=UTF-8"

    def __init__(
        self,
        *,
        project: str = "MLOPS",
        user: str | None = "bot@example.com",
        token: str = "jira-test-token",
        search_lag_seconds: float = DEFAULT_SEARCH_LAG_SECONDS,
    ) -> None:
        self.project = project
        self.user = user
        self.token = token
        self._default_search_lag = search_lag_seconds
        super().__init__()

    def reset(self) -> None:
        """Forget every issue, request, fault and setting; keep the server running."""
        with self._lock:
            super().reset()
            self._issues: list[_StoredIssue] = []
            self._issue_ids = itertools.count(10001)
            self._comment_ids = itertools.count(10100)
            self._seq = itertools.count(1)
            self.transitions: list[Transition] = list(DEFAULT_TRANSITIONS)
            self.max_results_cap = MAX_RESULTS_CAP  # largest page a search answers, whatever was asked
            # how far /rest/api/3/search/jql lags writes (issues not in reconcileIssues); 0: consistent
            self.search_lag_seconds = self._default_search_lag

    # ----------------------------------------------------------------- observable state

    @property
    def issues(self) -> list[JiraIssue]:
        with self._lock:
            return [
                JiraIssue(
                    key=i.key,
                    summary=i.summary,
                    description=i.description,
                    labels=list(i.labels),
                    issue_type=i.issue_type,
                    status=i.status,
                    status_category=i.status_category,
                    comments=[c.body for c in i.comments],
                )
                for i in self._issues
            ]

    def issue(self, key: str) -> JiraIssue:
        """The snapshot of issue ``key``; KeyError when there is none."""
        found = next((i for i in self.issues if i.key == key), None)
        if found is None:
            raise KeyError(key)
        return found

    # ----------------------------------------------------------------- arranging state

    def set_status(self, key: str, status: str) -> None:
        """Move issue ``key`` to ``status`` ("To Do", "In Progress" or "Done") as a person would."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {status!r}")
        with self._lock:
            issue = self._find_issue(key)
            issue.status, issue.status_category = status, STATUSES[status][0]
            issue.updated = _now()
            issue.index()

    def set_labels(self, key: str, *labels: str) -> None:
        """Replace the labels of issue ``key`` as a person would."""
        with self._lock:
            issue = self._find_issue(key)
            issue.labels = list(dict.fromkeys(labels))
            issue.updated = _now()
            issue.index()

    def set_transitions(self, *transitions: Transition) -> None:
        """Replace the workflow's transitions (default: DEFAULT_TRANSITIONS)."""
        with self._lock:
            self.transitions = list(transitions)

    # ----------------------------------------------------------------- request pipeline hooks

    def _error_body(self, message: str) -> dict[str, Any]:
        return {"errorMessages": [message], "errors": {}}

    def _admit(self, request: Request) -> None:
        """Refuse malformed JSON (400) and bad credentials (401), before faults."""
        if not request.body_is_json:
            raise _JiraError(400, "Unexpected character: the request body is not JSON.")
        if not self._authorized(request.headers.get("Authorization", "")):
            raise _JiraError(401, "You are not authenticated. Authentication required to perform this operation.")

    def _no_route(self, request: Request, path_known: bool) -> ApiError:
        """404 for an unknown path, 405 for a known path with another method."""
        if path_known:
            return _JiraError(405, f"Method {request.method} is not allowed on {request.path}.")
        return _JiraError(404, f"null for uri: {self.url}{request.path}")

    def _authorized(self, authorization: str) -> bool:
        scheme, _, credential = authorization.partition(" ")
        if self.user is None:
            return scheme.lower() == "bearer" and credential.strip() == self.token
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return False
        return decoded == f"{self.user}:{self.token}"

    # ----------------------------------------------------------------- JSON builders

    def _status_json(self, status: str, category: str) -> dict[str, Any]:
        return {
            "name": status,
            "statusCategory": {"id": CATEGORY_IDS[category], "key": category, "name": CATEGORY_NAMES[category]},
        }

    def _issue_json(self, issue: _StoredIssue, fields: set[str] | None) -> dict[str, Any]:
        """An issue bean with all fields (``fields=None``) or only those named."""
        every = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "issuetype": {"name": issue.issue_type, "subtask": False},
            "project": {"key": self.project, "name": f"{self.project} (fake)"},
            "status": self._status_json(issue.status, issue.status_category),
            "created": issue.created,
            "updated": issue.updated,
            "comment": {
                "comments": [self._comment_json(issue, c) for c in issue.comments],
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        }
        chosen = every if fields is None else {name: value for name, value in every.items() if name in fields}
        return {
            "id": str(issue.id),
            "self": f"{self.url}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": chosen,
        }

    def _comment_json(self, issue: _StoredIssue, comment: _Comment) -> dict[str, Any]:
        return {
            "id": str(comment.id),
            "self": f"{self.url}/rest/api/2/issue/{issue.id}/comment/{comment.id}",
            "body": comment.body,
            "author": {"displayName": self.user or "responder", "active": True},
            "created": comment.created,
            "updated": comment.created,
        }

    def _find_issue(self, key_or_id: str) -> _StoredIssue:
        for issue in self._issues:
            if key_or_id.upper() == issue.key or key_or_id == str(issue.id):
                return issue
        raise _JiraError(404, "Issue does not exist or you do not have permission to see it.")

    @staticmethod
    def _body_dict(req: Request) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise _JiraError(400, "Can not deserialize the request body: a JSON object is required.")
        return req.body

    # ----------------------------------------------------------------- issues

    def _create_issue(self, req: Request) -> Response:
        body = self._body_dict(req)
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise _JiraError(400, "Can not deserialize the request body: 'fields' must be an object.")
        errors: dict[str, str] = {}
        for name in sorted(set(fields) - ISSUE_FIELDS):
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        project = fields.get("project")
        if not isinstance(project, dict) or str(project.get("key", "")).upper() != self.project:
            errors["project"] = "project is required"
        issue_type = fields.get("issuetype")
        type_name = issue_type.get("name") if isinstance(issue_type, dict) else None
        if type_name not in ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > SUMMARY_MAX:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        description = fields.get("description")
        if description is not None and not isinstance(description, str):
            errors["description"] = "Operation value must be a string"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            errors["labels"] = "Operation value must be a string"
        else:
            for label in labels:
                if not label or re.search(r"\s", label):
                    errors["labels"] = f"The label '{label}' contains spaces which is invalid."
                elif len(label) > LABEL_MAX:
                    errors["labels"] = f"The label '{label}' exceeds maximum length of 255 characters."
        if errors:
            raise _JiraError(400, errors=errors)
        assert isinstance(summary, str) and isinstance(type_name, str) and isinstance(labels, list)
        number = len(self._issues) + 1
        now = _now()
        issue = _StoredIssue(
            id=next(self._issue_ids),
            key=f"{self.project}-{number}",
            seq=next(self._seq),
            summary=summary,
            description=description,
            labels=list(dict.fromkeys(labels)),
            issue_type=type_name,
            created=now,
            updated=now,
        )
        issue.index()
        self._issues.append(issue)
        return Response(201, {"id": str(issue.id), "key": issue.key, "self": f"{self.url}/rest/api/2/issue/{issue.id}"})

    def _get_issue(self, req: Request, key: str) -> Response:
        issue = self._find_issue(key)
        return Response(200, self._issue_json(issue, self._fields_param(req.params.get("fields"), default=None)))

    def _add_comment(self, req: Request, key: str) -> Response:
        issue = self._find_issue(key)
        text = self._body_dict(req).get("body")
        if not isinstance(text, str):
            raise _JiraError(400, errors={"comment": "Operation value must be a string"})
        if not text.strip():
            raise _JiraError(400, errors={"comment": "Comment body can not be empty!"})
        comment = _Comment(next(self._comment_ids), text, _now())
        issue.comments.append(comment)
        issue.updated = comment.created
        return Response(201, self._comment_json(issue, comment))

    def _available(self, issue: _StoredIssue) -> list[Transition]:
        return [t for t in self.transitions if t.to_status != issue.status]

    def _list_transitions(self, req: Request, key: str) -> Response:
        issue = self._find_issue(key)
        listed = [
            {
                "id": t.id,
                "name": t.name,
                "to": {
                    "self": f"{self.url}/rest/api/2/status/{t.to_status}",
                    **self._status_json(t.to_status, t.to_category),
                },
                "hasScreen": False,
                "isGlobal": False,
                "isInitial": False,
                "isConditional": False,
            }
            for t in self._available(issue)
        ]
        return Response(200, {"expand": "transitions", "transitions": listed})

    def _do_transition(self, req: Request, key: str) -> Response:
        issue = self._find_issue(key)
        transition = self._body_dict(req).get("transition")
        wanted = transition.get("id") if isinstance(transition, dict) else None
        if wanted is None:
            raise _JiraError(400, "Missing 'transition' identifier")
        chosen = next((t for t in self._available(issue) if t.id == str(wanted)), None)
        if chosen is None:
            raise _JiraError(400, f"Transition id '{wanted}' is not valid for this issue.")
        issue.status, issue.status_category, issue.updated = chosen.to_status, chosen.to_category, _now()
        issue.index()
        return Response(204)

    # ----------------------------------------------------------------- search

    def _search_request(self, req: Request, allowed: frozenset[str]) -> dict[str, Any]:
        """Search parameters from the query string (GET) or the JSON body (POST)."""
        if req.method == "GET":
            params: dict[str, Any] = {name: values[0] for name, values in req.query.items()}
            if "fields" in req.query:
                params["fields"] = ",".join(req.query["fields"])
            return params
        body = self._body_dict(req)
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _JiraError(400, f'Unrecognized field "{unknown[0]}", not marked as ignorable.')
        return body

    @staticmethod
    def _fields_param(value: Any, *, default: set[str] | None) -> set[str] | None:
        """Requested field names; None means every field."""
        if value is None:
            return default
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list):
            raise _JiraError(400, "'fields' must be a list of field names.")
        chosen = {str(name).strip() for name in names if str(name).strip()}
        return None if chosen & {"*all", "*navigable"} else chosen

    @staticmethod
    def _int_param(params: dict[str, Any], name: str, default: int) -> int:
        value = params.get(name, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _JiraError(400, f"The value '{value}' is not a valid number for '{name}'.") from None
        if number < 0:
            raise _JiraError(400, f"'{name}' must not be negative.")
        return number

    @staticmethod
    def _reconcile_param(req: Request, params: dict[str, Any]) -> set[int]:
        """The issue ids of ``reconcileIssues``: a JSON array of numbers (POST) or query values (GET)."""
        if req.method == "GET":
            texts = [part for value in req.query.get("reconcileIssues", []) for part in value.split(",") if part]
            if not all(text.strip().isdigit() for text in texts):
                raise _JiraError(400, "'reconcileIssues' must be numeric issue ids.")
            ids = [int(text) for text in texts]
        else:
            listed = params.get("reconcileIssues", [])
            if not isinstance(listed, list) or not all(type(value) is int for value in listed):
                raise _JiraError(400, "'reconcileIssues' must be a list of numeric issue ids.")
            ids = listed
        if len(ids) > RECONCILE_MAX:
            raise _JiraError(400, f"'reconcileIssues' accepts at most {RECONCILE_MAX} issue ids.")
        return set(ids)

    def _searched_issues(self, reconcile: set[int]) -> list[_StoredIssue]:
        """The issues as the enhanced search sees them: lagging, except those reconciled."""
        seen = (i if i.id in reconcile else i.as_searched(self.search_lag_seconds) for i in self._issues)
        return [issue for issue in seen if issue is not None]

    def _run_jql(self, jql: Any, *, bounded: bool, issues: list[_StoredIssue] | None = None) -> list[_StoredIssue]:
        if jql is not None and not isinstance(jql, str):
            raise _JiraError(400, "'jql' must be a string.")
        try:
            query = _parse_jql(jql or "")
        except _JqlError as error:
            raise _JiraError(400, f"Error in the JQL Query: {error}") from None
        if bounded and not query.clauses:
            raise _JiraError(400, "Unbounded JQL queries are not allowed here. Please add a search restriction.")
        for clause in query.clauses:
            if clause.field == "project" and clause.value.upper() != self.project:
                raise _JiraError(400, f"The value '{clause.value}' does not exist for the field 'project'.")
            if clause.field == "statuscategory" and _category_of(clause.value) is None:
                raise _JiraError(400, f"The value '{clause.value}' does not exist for the field 'statusCategory'.")
        pool = self._issues if issues is None else issues
        matched = [issue for issue in pool if all(_holds(clause, issue) for clause in query.clauses)]
        return sorted(matched, key=lambda issue: issue.seq, reverse=bool(query.descending))

    @staticmethod
    def _page_token(offset: int, jql: str) -> str:
        raw = json.dumps({"o": offset, "q": hashlib.sha1(jql.encode()).hexdigest()[:12]})
        return base64.urlsafe_b64encode(raw.encode()).decode("ascii")

    def _token_offset(self, token: Any, jql: str) -> int:
        if token is None:
            return 0
        try:
            decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            offset = int(decoded["o"])
        except (ValueError, KeyError, TypeError):
            raise _JiraError(400, "The provided next page token is invalid or expired.") from None
        if self._page_token(offset, jql) != token:
            raise _JiraError(400, "The provided next page token is invalid or expired.")
        return offset

    def _search_jql(self, req: Request) -> Response:
        """Cloud enhanced search: token paging, only the requested fields (default: none), lagging writes."""
        params = self._search_request(req, V3_SEARCH_KEYS)
        jql = params.get("jql")
        reconcile = self._reconcile_param(req, params)
        matched = self._run_jql(jql, bounded=True, issues=self._searched_issues(reconcile))
        fields = self._fields_param(params.get("fields"), default=set())
        page_size = min(max(self._int_param(params, "maxResults", DEFAULT_MAX_RESULTS), 1), self.max_results_cap)
        offset = self._token_offset(params.get("nextPageToken"), str(jql))
        page = matched[offset : offset + page_size]
        last = offset + len(page) >= len(matched)
        body: dict[str, Any] = {"issues": [self._issue_json(issue, fields) for issue in page], "isLast": last}
        if not last:
            body["nextPageToken"] = self._page_token(offset + len(page), str(jql))
        return Response(200, body)

    def _search_v2(self, req: Request) -> Response:
        """Server/Data Center search: offset paging with ``total``, every field unless told."""
        params = self._search_request(req, V2_SEARCH_KEYS)
        matched = self._run_jql(params.get("jql"), bounded=False)
        fields = self._fields_param(params.get("fields"), default=None)
        start = self._int_param(params, "startAt", 0)
        page_size = min(self._int_param(params, "maxResults", DEFAULT_MAX_RESULTS), self.max_results_cap)
        page = matched[start : start + page_size]
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": page_size,
                "total": len(matched),
                "issues": [self._issue_json(issue, fields) for issue in page],
            },
        )

    # ----------------------------------------------------------------- routing table

    ROUTES = (
        route("POST", r"/rest/api/2/issue", _create_issue),
        route("GET", _ISSUE, _get_issue),
        route("POST", _ISSUE + r"/comment", _add_comment),
        route("GET", _ISSUE + r"/transitions", _list_transitions),
        route("POST", _ISSUE + r"/transitions", _do_transition),
        route("GET", r"/rest/api/3/search/jql", _search_jql),
        route("POST", r"/rest/api/3/search/jql", _search_jql),
        route("GET", r"/rest/api/2/search", _search_v2),
        route("POST", r"/rest/api/2/search", _search_v2),
    )
