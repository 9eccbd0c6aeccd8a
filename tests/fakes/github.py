"""In-process fake of the slice of the GitHub REST API that responder uses.

Responder talks to GitHub through PyGithub: it reads and writes repository Actions
variables, dispatches ``workflow_dispatch`` workflows, reads the model manifest (and its
history) from the repository, and files/updates incident issues. Mocking PyGithub objects
would test our assumptions about PyGithub rather than the real client, so instead this
module serves those endpoints over real HTTP on 127.0.0.1 and tests point an unmodified
``github.Github(base_url=fake.url, ...)`` at it.

What is faked, and how closely:

* Only one repository (``owner/repo``) exists; any other owner/repo, any other endpoint and
  any unsupported method answer ``404 {"message": "Not Found"}`` -- and every request is
  recorded in :attr:`FakeGitHub.requests`, so tests can spot calls nobody expected.
* Authentication: ``Authorization: token <t>`` or ``Bearer <t>``; anything else is 401
  "Bad credentials" (PyGithub raises ``BadCredentialsException``).
* Status codes, error messages and JSON field names follow GitHub for the calls below;
  every ``url`` field points back at this server (``prefix`` included, so ``/api/v3``
  behaves like GitHub Enterprise Server) and ``html_url`` fields use ``http://github.fake``.
* List endpoints paginate with ``per_page``/``page`` and an RFC 8288 ``Link`` header,
  which is what PyGithub's ``PaginatedList`` follows.
* Every response carries ``X-RateLimit-*`` headers and ``Content-Type: application/json``.
* :meth:`FakeGitHub.fail_next` injects faults: plain errors, ambiguous errors returned
  *after* the write was applied, and slow answers for client timeouts.

Endpoints (relative to ``prefix``; ``{o}/{r}`` is the one repository)::

    GET    /repos/{o}/{r}
    GET    /repos/{o}/{r}/actions/variables
    POST   /repos/{o}/{r}/actions/variables
    GET    /repos/{o}/{r}/actions/variables/{name}
    PATCH  /repos/{o}/{r}/actions/variables/{name}
    DELETE /repos/{o}/{r}/actions/variables/{name}
    GET    /repos/{o}/{r}/actions/workflows/{file_name_or_id}
    POST   /repos/{o}/{r}/actions/workflows/{file_name_or_id}/dispatches
    GET    /repos/{o}/{r}/contents/{path}?ref=
    GET    /repos/{o}/{r}/commits?path=&sha=
    GET    /repos/{o}/{r}/issues?state=&labels=
    POST   /repos/{o}/{r}/issues
    GET    /repos/{o}/{r}/issues/{n}
    PATCH  /repos/{o}/{r}/issues/{n}
    GET    /repos/{o}/{r}/issues/{n}/comments
    POST   /repos/{o}/{r}/issues/{n}/comments

Stdlib only; the server, the request pipeline, request recording and fault injection
come from :mod:`tests.fakes.server`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import ApiError, FakeServer, Request, Response, route
from tests.fakes.server import Recorded as Recorded  # re-exported: one request the fake received

HTML_BASE = "http://github.fake"
RAW_BASE = "http://raw.github.fake"
DOCS_URL = "https://docs.github.com/rest"
DEFAULT_BRANCH = "main"
MANIFEST_PATH = "artifacts/ml/model-manifest.json"
MODEL_INPUTS = frozenset({"MODEL_ID", "MODEL_VERSION", "REASON"})
DEFAULT_WORKFLOWS: dict[str, set[str]] = {
    "model-governance.yml": set(MODEL_INPUTS),
    "model-retraining.yml": set(MODEL_INPUTS),
}
RATE_LIMIT = 5000
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class Dispatch:
    """One accepted ``workflow_dispatch`` request."""

    workflow: str  # workflow file name, e.g. "model-governance.yml"
    ref: str
    inputs: dict[str, Any]
    run_id: int
    html_url: str
    created_at: str = ""  # ISO 8601, when the fake accepted it


@dataclass(frozen=True)
class Issue:
    """Snapshot of an issue as the fake currently stores it."""

    number: int
    title: str
    body: str | None
    labels: list[str]
    state: str  # "open" | "closed"
    comments: list[str]  # comment bodies, oldest first
    html_url: str


# --------------------------------------------------------------------------- internals


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _base64_lines(content: bytes) -> str:
    """Base64 the way the contents API does: 60-character lines, newline-terminated."""
    encoded = base64.b64encode(content).decode("ascii")
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


class _GitHubError(ApiError):
    """Raised by handlers; becomes a GitHub-style JSON error response."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(status, {"message": message, **extra, "documentation_url": DOCS_URL})


def _not_found(message: str = "Not Found") -> _GitHubError:
    return _GitHubError(404, message)


def _validation_failed(resource: str, field_name: str, code: str = "missing_field") -> _GitHubError:
    error = {"resource": resource, "field": field_name, "code": code}
    return _GitHubError(422, "Validation Failed", errors=[error])


@dataclass
class _Variable:
    name: str
    value: str
    created_at: str
    updated_at: str


@dataclass
class _Commit:
    sha: str
    path: str
    content: bytes
    message: str
    date: str
    parent: str | None


@dataclass
class _Comment:
    id: int
    body: str
    created_at: str
    updated_at: str


@dataclass
class _StoredIssue:
    id: int
    number: int
    title: str
    body: str | None
    labels: list[str]
    created_at: str
    updated_at: str
    state: str = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    comments: list[_Comment] = field(default_factory=list)


_REPO = r"/repos/[^/]+/[^/]+"
_REPO_PATH = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?:/|$)")


# --------------------------------------------------------------------------- the fake


class FakeGitHub(FakeServer):
    """A single-repository GitHub REST API served on 127.0.0.1; see the module docstring."""

    login = "responder[bot]"  # the identity the token belongs to (author of issues/comments)
    committer = "ml-platform-bot"  # author of commits made with set_file()

    def __init__(
        self,
        *,
        token: str = "ghs-test-token",
        owner: str = "acme",
        repo: str = "ml-platform",
        prefix: str = "",
        workflows: dict[str, set[str]] | None = None,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must look like '/api/v3', got {prefix!r}")
        self.token = token
        self.owner = owner
        self.repo = repo
        self.prefix = prefix
        self.workflows: dict[str, frozenset[str]] = {
            name: frozenset(inputs) for name, inputs in (workflows or DEFAULT_WORKFLOWS).items()
        }
        self._workflow_ids = {name: 71_000_001 + i for i, name in enumerate(self.workflows)}
        super().__init__()

    @property
    def url(self) -> str:
        """API base URL to pass to ``Github(base_url=...)`` (includes the prefix)."""
        return super().url + self.prefix

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def reset(self) -> None:
        """Forget everything the repository holds and every request and fault; keep the server running."""
        with self._lock:
            super().reset()
            self._variables: dict[str, _Variable] = {}
            self._dispatches: list[Dispatch] = []
            self._issues: list[_StoredIssue] = []
            self._labels: dict[str, tuple[int, str]] = {}  # lower-case name -> (id, name)
            self._commits: list[_Commit] = []  # oldest first; all on DEFAULT_BRANCH
            self._ids = itertools.count(1001)
            self._run_ids = itertools.count(9_000_000_001)
            self._rate_remaining = RATE_LIMIT
            self._rate_reset = int(time.time()) + 3600

    # ----------------------------------------------------------------- observable state

    @property
    def variables(self) -> dict[str, str]:
        with self._lock:
            return {v.name: v.value for v in self._variables.values()}

    @property
    def dispatches(self) -> list[Dispatch]:
        with self._lock:
            return copy.deepcopy(self._dispatches)

    @property
    def issues(self) -> list[Issue]:
        with self._lock:
            return [
                Issue(
                    number=i.number,
                    title=i.title,
                    body=i.body,
                    labels=list(i.labels),
                    state=i.state,
                    comments=[c.body for c in i.comments],
                    html_url=self._issue_html_url(i.number),
                )
                for i in self._issues
            ]

    # ----------------------------------------------------------------- arranging state

    def set_file(self, path: str, content: bytes | str, message: str = "update") -> str:
        """Commit a new revision of ``path`` on the default branch; returns the commit sha."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = path.strip("/")
        with self._lock:
            parent = self._commits[-1].sha if self._commits else None
            seed = f"{len(self._commits)}\0{parent}\0{path}\0{message}\0".encode() + data
            commit = _Commit(_sha1(seed), path, data, message, _now(), parent)
            self._commits.append(commit)
            return commit.sha

    def set_manifest(self, manifest: dict[str, Any]) -> str:
        """Commit a new revision of the model manifest; returns the commit sha."""
        return self.set_file(MANIFEST_PATH, json.dumps(manifest, indent=2), message="update model manifest")

    # ----------------------------------------------------------------- request pipeline hooks

    def _local_path(self, path: str) -> str:
        """The path without the prefix (paths outside it are refused by _admit)."""
        if self._has_prefix(path):
            return path[len(self.prefix) :] or "/"
        return path

    def _admit(self, request: Request) -> None:
        """Refuse malformed JSON (400), bad credentials (401) and paths outside the prefix (404), before faults."""
        if not request.body_is_json:
            raise _GitHubError(400, "Problems parsing JSON")
        if not self._authorized(request.headers.get("Authorization", "")):
            raise _GitHubError(401, "Bad credentials")
        self._rate_remaining = max(0, self._rate_remaining - 1)
        if not self._has_prefix(urllib.parse.urlsplit(request.target).path):
            raise _not_found()

    def _no_route(self, request: Request, path_known: bool) -> ApiError:
        return _not_found()

    def _dispatch(self, request: Request) -> Response:
        """Route the request; any owner/repo but the one repository is 404."""
        repository = _REPO_PATH.match(request.path)
        if repository is not None:
            owner, repo = (urllib.parse.unquote(part).lower() for part in repository.group("owner", "repo"))
            if (owner, repo) != (self.owner.lower(), self.repo.lower()):
                raise _not_found()
        return super()._dispatch(request)

    def _has_prefix(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def _authorized(self, authorization: str) -> bool:
        scheme, _, credential = authorization.partition(" ")
        return scheme.lower() in ("token", "bearer") and credential.strip() == self.token

    def _extra_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(self._rate_remaining),
            "X-RateLimit-Used": str(RATE_LIMIT - self._rate_remaining),
            "X-RateLimit-Reset": str(self._rate_reset),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:16].upper(),
        }

    # ----------------------------------------------------------------- URL and JSON builders

    @property
    def _api_repo(self) -> str:
        return f"{self.url}/repos/{self.owner}/{self.repo}"

    @property
    def _html_repo(self) -> str:
        return f"{HTML_BASE}/{self.owner}/{self.repo}"

    def _issue_html_url(self, number: int) -> str:
        return f"{self._html_repo}/issues/{number}"

    def _user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": int(_sha1(login.encode())[:7], 16),
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.url}/users/{urllib.parse.quote(login)}",
            "html_url": f"{HTML_BASE}/{urllib.parse.quote(login)}",
        }

    def _paginate(self, req: Request, items: list[Any], *, wrap: str | None = None) -> Response:
        """One page of ``items`` per ``per_page``/``page``, with a GitHub-style Link header."""
        try:
            per_page = min(max(int(req.params.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
        except ValueError:
            per_page = DEFAULT_PER_PAGE
        try:
            page = max(int(req.params.get("page", 1)), 1)
        except ValueError:
            page = 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(to_page: int, rel: str) -> str:
            query = urllib.parse.urlencode({**req.params, "page": to_page})
            return f'<{self.url}{req.path}?{query}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(min(page - 1, last), "prev")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first")]
        body: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
        return Response(200, body, {"Link": ", ".join(links)} if links else {})

    @staticmethod
    def _body_dict(req: Request) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise _GitHubError(400, "Problems parsing JSON")
        return req.body

    # ----------------------------------------------------------------- repository

    def _repository_json(self) -> dict[str, Any]:
        api = self._api_repo
        return {
            "id": 500_001,
            "node_id": "R_kgDOfake",
            "name": self.repo,
            "full_name": self.full_name,
            "owner": {**self._user_json(self.owner), "type": "Organization"},
            "private": True,
            "visibility": "private",
            "description": "ML platform (fake)",
            "fork": False,
            "archived": False,
            "disabled": False,
            "default_branch": DEFAULT_BRANCH,
            "url": api,
            "html_url": self._html_repo,
            "issues_url": f"{api}/issues{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "has_issues": True,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": _now(),
            "pushed_at": self._commits[-1].date if self._commits else "2024-01-01T00:00:00Z",
        }

    def _get_repository(self, req: Request) -> Response:
        return Response(200, self._repository_json())

    # ----------------------------------------------------------------- actions variables

    def _variable_json(self, variable: _Variable) -> dict[str, Any]:
        return {
            "name": variable.name,
            "value": variable.value,
            "created_at": variable.created_at,
            "updated_at": variable.updated_at,
        }

    def _find_variable(self, name: str) -> _Variable:
        variable = self._variables.get(name.upper())
        if variable is None:
            raise _not_found()
        return variable

    @staticmethod
    def _valid_variable_name(name: str) -> bool:
        return VARIABLE_NAME.fullmatch(name) is not None and not name.upper().startswith("GITHUB_")

    def _list_variables(self, req: Request) -> Response:
        variables = [self._variable_json(v) for _, v in sorted(self._variables.items())]
        return self._paginate(req, variables, wrap="variables")

    def _get_variable(self, req: Request, name: str) -> Response:
        return Response(200, self._variable_json(self._find_variable(name)))

    def _create_variable(self, req: Request) -> Response:
        body = self._body_dict(req)
        name, value = body.get("name"), body.get("value")
        if not isinstance(name, str) or not self._valid_variable_name(name):
            raise _validation_failed("Variable", "name", "invalid")
        if not isinstance(value, str):
            raise _validation_failed("Variable", "value")
        if name.upper() in self._variables:
            raise _GitHubError(409, "Already exists - Variable already exists")
        now = _now()
        self._variables[name.upper()] = _Variable(name.upper(), value, now, now)
        return Response(201, {})

    def _update_variable(self, req: Request, name: str) -> Response:
        variable = self._find_variable(name)
        body = self._body_dict(req)
        value = body.get("value", variable.value)
        new_name = body.get("name", variable.name)
        if not isinstance(value, str):
            raise _validation_failed("Variable", "value", "invalid")
        if not isinstance(new_name, str) or not self._valid_variable_name(new_name):
            raise _validation_failed("Variable", "name", "invalid")
        if new_name.upper() != variable.name and new_name.upper() in self._variables:
            raise _GitHubError(409, "Already exists - Variable already exists")
        del self._variables[variable.name]
        variable.name, variable.value, variable.updated_at = new_name.upper(), value, _now()
        self._variables[variable.name] = variable
        return Response(204)

    def _delete_variable(self, req: Request, name: str) -> Response:
        del self._variables[self._find_variable(name).name]
        return Response(204)

    # ----------------------------------------------------------------- workflows

    def _find_workflow(self, file_name_or_id: str) -> str:
        for name, workflow_id in self._workflow_ids.items():
            if file_name_or_id in (name, str(workflow_id)):
                return name
        raise _not_found()

    def _workflow_json(self, name: str) -> dict[str, Any]:
        workflow_id = self._workflow_ids[name]
        path = f".github/workflows/{name}"
        return {
            "id": workflow_id,
            "node_id": f"W_fake{workflow_id}",
            "name": name.rsplit(".", 1)[0],
            "path": path,
            "state": "active",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "url": f"{self._api_repo}/actions/workflows/{workflow_id}",
            "html_url": f"{self._html_repo}/blob/{DEFAULT_BRANCH}/{path}",
            "badge_url": f"{self._html_repo}/workflows/{name}/badge.svg",
        }

    def _get_workflow(self, req: Request, workflow: str) -> Response:
        return Response(200, self._workflow_json(self._find_workflow(workflow)))

    def _dispatch_workflow(self, req: Request, workflow: str) -> Response:
        name = self._find_workflow(workflow)
        body = self._body_dict(req)
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise _GitHubError(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        if ref.removeprefix("refs/heads/") != DEFAULT_BRANCH:
            raise _GitHubError(422, f"No ref found for: {ref}")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise _GitHubError(422, "Invalid request.\n\nFor 'properties/inputs', is not an object.")
        unexpected = sorted(set(inputs) - self.workflows[name])
        if unexpected:
            raise _GitHubError(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        run_id = next(self._run_ids)
        html_url = f"{self._html_repo}/actions/runs/{run_id}"
        self._dispatches.append(Dispatch(name, ref, copy.deepcopy(inputs), run_id, html_url, _now()))
        if body.get("return_run_details") is True:
            run_url = f"{self._api_repo}/actions/runs/{run_id}"
            return Response(200, {"workflow_run_id": run_id, "run_url": run_url, "html_url": html_url})
        return Response(204)

    def _list_workflow_runs(self, req: Request, workflow: str) -> Response:
        """Runs created by dispatches, filtered by event, branch and ``created=>=ISO`` like GitHub."""
        name = self._find_workflow(workflow)
        event, branch, created = req.params.get("event"), req.params.get("branch"), req.params.get("created", "")
        since = created.removeprefix(">=") if created.startswith(">=") else ""
        runs = [
            {
                "id": d.run_id,
                "name": name,
                "event": "workflow_dispatch",
                "head_branch": d.ref.removeprefix("refs/heads/"),
                "status": "queued",
                "created_at": d.created_at,
                "html_url": d.html_url,
                "url": f"{self._api_repo}/actions/runs/{d.run_id}",
            }
            for d in reversed(self._dispatches)
            if d.workflow == name
            and event in (None, "workflow_dispatch")
            and branch in (None, d.ref.removeprefix("refs/heads/"))
            and (not since or d.created_at >= since)
        ]
        return self._paginate(req, runs, wrap="workflow_runs")

    # ----------------------------------------------------------------- contents and commits

    def _resolve_ref(self, ref: str | None) -> int:
        """Index into ``_commits`` of the commit ``ref`` names (a branch or a commit sha)."""
        if not self._commits:
            raise _GitHubError(409, "Git Repository is empty.")
        if ref is None or ref.removeprefix("refs/heads/") == DEFAULT_BRANCH:
            return len(self._commits) - 1
        if len(ref) >= 7:
            for index, commit in enumerate(self._commits):
                if commit.sha.startswith(ref):
                    return index
        raise _GitHubError(404, f"No commit found for SHA: {ref}")

    def _get_contents(self, req: Request, path: str) -> Response:
        path = path.strip("/")
        ref = req.params.get("ref") or None
        try:
            head = self._resolve_ref(ref)
        except _GitHubError as error:
            if error.response.status == 409:
                raise _not_found("This repository is empty.") from None
            raise _not_found(f"No commit found for the ref {ref}") from None
        revision = next((c for c in reversed(self._commits[: head + 1]) if c.path == path), None)
        if revision is None:
            raise _not_found()
        shown_ref = ref or DEFAULT_BRANCH
        blob_sha = _sha1(b"blob %d\0" % len(revision.content) + revision.content)
        api_url = f"{self._api_repo}/contents/{urllib.parse.quote(path)}?ref={urllib.parse.quote(shown_ref)}"
        git_url = f"{self._api_repo}/git/blobs/{blob_sha}"
        html_url = f"{self._html_repo}/blob/{shown_ref}/{path}"
        return Response(
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(revision.content),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": _base64_lines(revision.content),
                "sha": blob_sha,
                "url": api_url,
                "git_url": git_url,
                "html_url": html_url,
                "download_url": f"{RAW_BASE}/{self.owner}/{self.repo}/{shown_ref}/{path}",
                "_links": {"self": api_url, "git": git_url, "html": html_url},
            },
        )

    def _commit_json(self, commit: _Commit) -> dict[str, Any]:
        person = {"name": "ML Platform Bot", "email": "ml-platform-bot@example.com", "date": commit.date}
        api = self._api_repo
        tree_sha = _sha1(commit.sha.encode())
        parents = [
            {"sha": sha, "url": f"{api}/commits/{sha}", "html_url": f"{self._html_repo}/commit/{sha}"}
            for sha in [commit.parent]
            if sha is not None
        ]
        return {
            "sha": commit.sha,
            "node_id": f"C_fake{commit.sha[:12]}",
            "commit": {
                "author": person,
                "committer": person,
                "message": commit.message,
                "tree": {"sha": tree_sha, "url": f"{api}/git/trees/{tree_sha}"},
                "url": f"{api}/git/commits/{commit.sha}",
                "comment_count": 0,
            },
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"{self._html_repo}/commit/{commit.sha}",
            "comments_url": f"{api}/commits/{commit.sha}/comments",
            "author": self._user_json(self.committer),
            "committer": self._user_json(self.committer),
            "parents": parents,
        }

    def _list_commits(self, req: Request) -> Response:
        head = self._resolve_ref(req.params.get("sha") or None)
        path = (req.params.get("path") or "").strip("/")
        history = [
            self._commit_json(commit)
            for commit in reversed(self._commits[: head + 1])
            if not path or commit.path == path or commit.path.startswith(path + "/")
        ]
        return self._paginate(req, history)

    # ----------------------------------------------------------------- issues

    def _label_json(self, name: str) -> dict[str, Any]:
        label_id, label_name = self._labels[name.lower()]
        return {
            "id": label_id,
            "node_id": f"LA_fake{label_id}",
            "url": f"{self._api_repo}/labels/{urllib.parse.quote(label_name)}",
            "name": label_name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def _ensure_labels(self, labels: Any) -> list[str]:
        """Canonical names of ``labels`` (strings or ``{"name": ...}``); creates missing ones like GitHub."""
        if not isinstance(labels, list):
            raise _validation_failed("Issue", "labels", "invalid")
        names: list[str] = []
        for label in labels:
            name = label.get("name") if isinstance(label, dict) else label
            if not isinstance(name, str) or not name.strip():
                raise _validation_failed("Label", "name", "invalid")
            if name.lower() not in self._labels:
                self._labels[name.lower()] = (next(self._ids), name)
            canonical = self._labels[name.lower()][1]
            if canonical not in names:
                names.append(canonical)
        return names

    def _issue_json(self, issue: _StoredIssue) -> dict[str, Any]:
        url = f"{self._api_repo}/issues/{issue.number}"
        return {
            "id": issue.id,
            "node_id": f"I_fake{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "labels": [self._label_json(name) for name in issue.labels],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": len(issue.comments),
            "user": self._user_json(self.login),
            "author_association": "NONE",
            "url": url,
            "repository_url": self._api_repo,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": self._issue_html_url(issue.number),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
        }

    def _comment_json(self, issue: _StoredIssue, comment: _Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "node_id": f"IC_fake{comment.id}",
            "url": f"{self._api_repo}/issues/comments/{comment.id}",
            "html_url": f"{self._issue_html_url(issue.number)}#issuecomment-{comment.id}",
            "issue_url": f"{self._api_repo}/issues/{issue.number}",
            "body": comment.body,
            "user": self._user_json(self.login),
            "author_association": "NONE",
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
        }

    def _find_issue(self, number: str) -> _StoredIssue:
        for issue in self._issues:
            if issue.number == int(number):
                return issue
        raise _not_found()

    def _list_issues(self, req: Request) -> Response:
        state = req.params.get("state") or "open"
        if state not in ("open", "closed", "all"):
            raise _validation_failed("Issue", "state", "invalid")
        wanted = {name.strip().lower() for name in (req.params.get("labels") or "").split(",") if name.strip()}
        matching = [
            self._issue_json(issue)
            for issue in sorted(self._issues, key=lambda i: i.number, reverse=True)  # newest first
            if state in ("all", issue.state) and wanted <= {name.lower() for name in issue.labels}
        ]
        return self._paginate(req, matching)

    def _create_issue(self, req: Request) -> Response:
        body = self._body_dict(req)
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _validation_failed("Issue", "title")
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise _validation_failed("Issue", "body", "invalid")
        labels = self._ensure_labels(body.get("labels") or [])
        now = _now()
        issue = _StoredIssue(next(self._ids), len(self._issues) + 1, title, text, labels, now, now)
        self._issues.append(issue)
        return Response(201, self._issue_json(issue))

    def _get_issue(self, req: Request, number: str) -> Response:
        return Response(200, self._issue_json(self._find_issue(number)))

    def _update_issue(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        body = self._body_dict(req)
        # validate everything first: GitHub applies an edit entirely or not at all
        title = body.get("title", issue.title)
        if not isinstance(title, str) or not title.strip():
            raise _validation_failed("Issue", "title", "invalid")
        text = body.get("body", issue.body)
        if text is not None and not isinstance(text, str):
            raise _validation_failed("Issue", "body", "invalid")
        state = body.get("state", issue.state)
        if state not in ("open", "closed"):
            raise _validation_failed("Issue", "state", "invalid")
        labels = self._ensure_labels(body["labels"]) if "labels" in body else issue.labels

        issue.title, issue.body, issue.labels = title, text, labels
        if state != issue.state:
            issue.state = state
            issue.closed_at = _now() if state == "closed" else None
            default_reason = "completed" if state == "closed" else "reopened"
            issue.state_reason = body.get("state_reason") or default_reason
        elif "state_reason" in body and issue.state == "closed":
            issue.state_reason = body["state_reason"]
        issue.updated_at = _now()
        return Response(200, self._issue_json(issue))

    def _list_comments(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        return self._paginate(req, [self._comment_json(issue, c) for c in issue.comments])

    def _create_comment(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        text = self._body_dict(req).get("body")
        if not isinstance(text, str) or not text:
            raise _validation_failed("IssueComment", "body")
        now = _now()
        comment = _Comment(next(self._ids), text, now, now)
        issue.comments.append(comment)
        issue.updated_at = now
        return Response(201, self._comment_json(issue, comment))

    # ----------------------------------------------------------------- routing table

    ROUTES = (
        route("GET", _REPO, _get_repository),
        route("GET", _REPO + r"/actions/variables", _list_variables),
        route("POST", _REPO + r"/actions/variables", _create_variable),
        route("GET", _REPO + r"/actions/variables/(?P<name>[^/]+)", _get_variable),
        route("PATCH", _REPO + r"/actions/variables/(?P<name>[^/]+)", _update_variable),
        route("DELETE", _REPO + r"/actions/variables/(?P<name>[^/]+)", _delete_variable),
        route("GET", _REPO + r"/actions/workflows/(?P<workflow>[^/]+)", _get_workflow),
        route("POST", _REPO + r"/actions/workflows/(?P<workflow>[^/]+)/dispatches", _dispatch_workflow),
        route("GET", _REPO + r"/actions/workflows/(?P<workflow>[^/]+)/runs", _list_workflow_runs),
        route("GET", _REPO + r"/contents/(?P<path>.+)", _get_contents),
        route("GET", _REPO + r"/commits", _list_commits),
        route("GET", _REPO + r"/issues", _list_issues),
        route("POST", _REPO + r"/issues", _create_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)", _get_issue),
        route("PATCH", _REPO + r"/issues/(?P<number>\d+)", _update_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)/comments", _list_comments),
        route("POST", _REPO + r"/issues/(?P<number>\d+)/comments", _create_comment),
    )
