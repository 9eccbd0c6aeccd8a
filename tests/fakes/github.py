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
* Workflow runs behave as GitHub's do for a client that lost a dispatch's answer: a run is
  listed only ``list_lag_seconds`` (default 2) after its dispatch, carries ``created_at``
  (whole seconds, as GitHub) and a ``display_title`` rendered from the workflow's
  ``run-name`` (:data:`RUN_NAME`: ``"<workflow> <MODEL_ID> <MODEL_VERSION> (<REASON>)"``), or
  the workflow's name when it has none. :meth:`FakeGitHub.add_run` adds a run "by hand",
  titled as the test likes.
* ``return_run_details: true`` on a dispatch answers 200 with ``workflow_run_id``,
  ``run_url`` and ``html_url`` as GitHub.com does; ``run_details="ignored"`` answers 204
  like a GitHub Enterprise Server that ignores the field, ``"rejected"`` answers 422 like
  one that refuses it.
* A run moves ``queued`` -> ``in_progress`` -> ``completed`` as time passes
  (``queued_seconds``, then ``running_seconds``), then carries its conclusion: the one given
  to :meth:`FakeGitHub.add_run` or :meth:`FakeGitHub.set_conclusion`, else its workflow's in
  ``conclusions``, else ``success``. ``updated_at`` and ``run_started_at`` follow the moves.
  ``GET .../actions/runs/{id}`` carries a weak ``ETag`` and answers ``304 Not Modified`` (no
  body, no rate limit spent) to an ``If-None-Match`` naming the current one;
  :attr:`FakeGitHub.path_counts` counts requests and 304s per path.
* Artifacts: :meth:`FakeGitHub.add_artifact` attaches files to a run (the fake zips them).
  ``GET .../artifacts/{id}/zip`` answers ``302`` to a signed link on a second server, the
  artifact storage (another port: another origin), valid ``artifact_link_seconds`` (GitHub:
  one minute); an expired artifact answers ``410``. Like Azure blob storage, the storage
  refuses a request that carries an ``Authorization`` header (400) or an expired or unknown
  link (403); :attr:`FakeGitHub.storage_requests` records what it received.

Endpoints (relative to ``prefix``; ``{o}/{r}`` is the one repository)::

    GET    /repos/{o}/{r}
    GET    /repos/{o}/{r}/actions/variables
    POST   /repos/{o}/{r}/actions/variables
    GET    /repos/{o}/{r}/actions/variables/{name}
    PATCH  /repos/{o}/{r}/actions/variables/{name}
    DELETE /repos/{o}/{r}/actions/variables/{name}
    GET    /repos/{o}/{r}/actions/workflows/{file_name_or_id}
    POST   /repos/{o}/{r}/actions/workflows/{file_name_or_id}/dispatches
    GET    /repos/{o}/{r}/actions/workflows/{file_name_or_id}/runs?event=&branch=&created=
    GET    /repos/{o}/{r}/actions/runs/{run_id}                   (ETag, If-None-Match -> 304)
    GET    /repos/{o}/{r}/actions/runs/{run_id}/artifacts
    GET    /repos/{o}/{r}/actions/artifacts/{artifact_id}/zip     (302 to the storage server)
    GET    /repos/{o}/{r}/contents/{path}?ref=
    GET    /repos/{o}/{r}/commits?path=&sha=
    GET    /repos/{o}/{r}/issues?state=&labels=
    POST   /repos/{o}/{r}/issues
    GET    /repos/{o}/{r}/issues/{n}
    PATCH  /repos/{o}/{r}/issues/{n}
    GET    /repos/{o}/{r}/issues/{n}/comments
    POST   /repos/{o}/{r}/issues/{n}/comments

Stdlib only; the server, the request pipeline, request recording and fault injection
come from :mod:`tests.fakes.server` (the artifact storage is a plain server of its own).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import itertools
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

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
# The run-name convention of responder's workflows (config/github-workflows/): GitHub titles a
# dispatched run from it, and responder attributes a run to a model by the MODEL_ID in the title.
RUN_NAME = "<workflow> ${{ inputs.MODEL_ID }} ${{ inputs.MODEL_VERSION }} (${{ inputs.REASON }})"
DEFAULT_LIST_LAG_SECONDS = 2.0
DEFAULT_QUEUED_SECONDS = 1.0  # how long a new run waits for a runner
DEFAULT_RUNNING_SECONDS = 5.0  # then how long it runs before it completes
ARTIFACT_LINK_SECONDS = 60.0  # GitHub: the download link "expires after 1 minute"
ARTIFACT_RETENTION_DAYS = 90  # the retention-days of responder's workflows
RunDetails = Literal["returned", "ignored", "rejected"]
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
    display_title: str = ""  # the run's title: its workflow's run-name, rendered


@dataclass(frozen=True)
class PathCounts:
    """Requests the fake answered for one path (no query string), and how many of them were 304s."""

    requests: int
    not_modified: int


@dataclass(frozen=True)
class StorageRequest:
    """One request the artifact storage server received."""

    path: str  # with the query string
    authorization: str | None  # the Authorization header, if the client sent one (it must not)
    status: int


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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _iso(datetime.now(UTC))


_RUN_NAME_INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


def _render_run_name(template: str, inputs: dict[str, Any]) -> str:
    """A run-name with its ``${{ inputs.X }}`` expressions replaced (a missing input is empty, as in Actions)."""
    return _RUN_NAME_INPUT.sub(lambda m: str(inputs.get(m.group(1), "")), template)


def _etag_matches(headers: Mapping[str, str], etag: str) -> bool:
    """Whether the request's If-None-Match names ``etag`` (a weak comparison, as for GET)."""
    wanted = next((value for name, value in headers.items() if name.lower() == "if-none-match"), None)
    if wanted is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _storage_error(status: int, code: str, message: str) -> tuple[int, bytes, str]:
    """An Azure blob storage error answer."""
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, body.encode(), "application/xml"


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _base64_lines(content: bytes) -> str:
    """Base64 the way the contents API does: 60-character lines, newline-terminated."""
    encoded = base64.b64encode(content).decode("ascii")
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


class _GitHubError(ApiError):
    """Raised by handlers; becomes a GitHub-style JSON error response."""

    def __init__(self, http_status: int, message: str, /, **extra: Any) -> None:
        super().__init__(http_status, {"message": message, "documentation_url": DOCS_URL, **extra})


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
class _Run:
    id: int
    workflow: str
    ref: str
    event: str
    display_title: str
    created_at: datetime
    listed_from: float  # time.monotonic() from which the runs list shows it
    html_url: str
    born: float = 0.0  # time.monotonic() at creation; the status follows from the time since
    queued_seconds: float = DEFAULT_QUEUED_SECONDS
    running_seconds: float = DEFAULT_RUNNING_SECONDS
    conclusion: str | None = None  # None: its workflow's conclusion (FakeGitHub.conclusions)

    def progress(self, now: float) -> tuple[str, float]:
        """``(status, seconds after creation it entered that status)`` at monotonic time ``now``."""
        elapsed = now - self.born
        if elapsed < self.queued_seconds:
            return "queued", 0.0
        if elapsed < self.queued_seconds + self.running_seconds:
            return "in_progress", self.queued_seconds
        return "completed", self.queued_seconds + self.running_seconds


@dataclass
class _Artifact:
    id: int
    run_id: int
    name: str
    archive: bytes  # the zip GitHub serves
    size_in_bytes: int
    expired: bool
    created_at: datetime


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
        run_names: dict[str, str | None] | None = None,
        list_lag_seconds: float = DEFAULT_LIST_LAG_SECONDS,
        run_details: RunDetails = "returned",
        queued_seconds: float = DEFAULT_QUEUED_SECONDS,
        running_seconds: float = DEFAULT_RUNNING_SECONDS,
        conclusions: dict[str, str] | None = None,
        artifact_link_seconds: float = ARTIFACT_LINK_SECONDS,
    ) -> None:
        """``run_names``: a workflow's ``run-name`` template (None: it has none); by default every
        workflow follows :data:`RUN_NAME`. ``list_lag_seconds``: how long after its dispatch a run
        shows in the runs list. ``run_details``: how a dispatch with ``return_run_details`` is
        answered: "returned" (GitHub.com: 200 with the run), "ignored" (a GHES answering 204),
        "rejected" (a GHES answering 422). The three may be changed on a running fake.
        ``queued_seconds``/``running_seconds``: how long a new run is queued, then in progress;
        ``conclusions``: a workflow's conclusion when its runs complete (default ``success``);
        ``artifact_link_seconds``: how long an artifact's download link works. These apply to runs
        and links made after a change on a running fake."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must look like '/api/v3', got {prefix!r}")
        self.token = token
        self.owner = owner
        self.repo = repo
        self.prefix = prefix
        self.workflows: dict[str, frozenset[str]] = {
            name: frozenset(inputs) for name, inputs in (workflows or DEFAULT_WORKFLOWS).items()
        }
        self.run_names: dict[str, str | None] = {
            name: RUN_NAME.replace("<workflow>", self._workflow_name(name)) for name in self.workflows
        }
        self.run_names.update(run_names or {})
        self.list_lag_seconds = list_lag_seconds
        self.run_details: RunDetails = run_details
        self.queued_seconds = queued_seconds
        self.running_seconds = running_seconds
        self.conclusions: dict[str, str] = dict(conclusions or {})
        self.artifact_link_seconds = artifact_link_seconds
        self._workflow_ids = {name: 71_000_001 + i for i, name in enumerate(self.workflows)}
        self._storage: _StorageServer | None = None
        self._link_key = uuid.uuid4().bytes  # signs the storage links, as an account key would
        super().__init__()

    def start(self) -> Self:
        """Start the API server and the artifact storage server (a socket of its own)."""
        super().start()
        with self._lock:
            if self._storage is None:
                self._storage = _StorageServer(self)
        return self

    def stop(self) -> None:
        with self._lock:
            storage, self._storage = self._storage, None
        if storage is not None:
            storage.stop()
        super().stop()

    @property
    def url(self) -> str:
        """API base URL to pass to ``Github(base_url=...)`` (includes the prefix)."""
        return super().url + self.prefix

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def storage_url(self) -> str:
        """Base URL of the artifact storage server (another port than :attr:`url`: another origin)."""
        if self._storage is None:
            raise RuntimeError("FakeGitHub is not started")
        return self._storage.url

    def reset(self) -> None:
        """Forget everything the repository holds and every request and fault; keep the server running."""
        with self._lock:
            super().reset()
            self._variables: dict[str, _Variable] = {}
            self._dispatches: list[Dispatch] = []
            self._runs: list[_Run] = []  # oldest first
            self._issues: list[_StoredIssue] = []
            self._labels: dict[str, tuple[int, str]] = {}  # lower-case name -> (id, name)
            self._commits: list[_Commit] = []  # oldest first; all on DEFAULT_BRANCH
            self._ids = itertools.count(1001)
            self._run_ids = itertools.count(9_000_000_001)
            self._artifacts: list[_Artifact] = []
            self._artifact_ids = itertools.count(4_000_000_001)
            self._links: dict[str, tuple[int, float]] = {}  # signature -> (artifact id, monotonic expiry)
            self._storage_requests: list[StorageRequest] = []
            self._storage_faults: list[int] = []  # statuses the next storage requests answer
            self._path_counts: Counter[str] = Counter()
            self._not_modified_counts: Counter[str] = Counter()
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
    def path_counts(self) -> dict[str, PathCounts]:
        """Per path (without query string or prefix): requests answered, and how many were 304s."""
        with self._lock:
            return {
                path: PathCounts(count, self._not_modified_counts[path]) for path, count in self._path_counts.items()
            }

    @property
    def storage_requests(self) -> list[StorageRequest]:
        with self._lock:
            return list(self._storage_requests)

    @property
    def rate_remaining(self) -> int:
        """The core rate limit left (a 304 does not spend any, as on GitHub)."""
        with self._lock:
            return self._rate_remaining

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

    def add_run(
        self,
        workflow: str,
        *,
        display_title: str,
        event: str = "workflow_dispatch",
        created_at: datetime | None = None,
        listed: bool = True,
        conclusion: str | None = None,
        queued_seconds: float | None = None,
        running_seconds: float | None = None,
    ) -> int:
        """A run started some other way (by a person, another tool), titled ``display_title``;
        listed at once unless ``listed`` is false (then after ``list_lag_seconds``). ``conclusion``
        and the durations default to the fake's (see the constructor). Returns its id."""
        with self._lock:
            name = self._find_workflow(workflow)
            run = self._new_run(name, f"refs/heads/{DEFAULT_BRANCH}", event, display_title, created_at)
            if listed:
                run.listed_from = time.monotonic()
            run.conclusion = conclusion
            if queued_seconds is not None:
                run.queued_seconds = queued_seconds
            if running_seconds is not None:
                run.running_seconds = running_seconds
            return run.id

    def set_conclusion(self, run_id: int, conclusion: str) -> None:
        """The conclusion run ``run_id`` has (or will have) once completed: success, failure, cancelled..."""
        with self._lock:
            self._find_run(str(run_id)).conclusion = conclusion

    def add_artifact(
        self,
        run_id: int,
        name: str,
        files: Mapping[str, bytes | str | dict[str, Any]] | bytes,
        *,
        expired: bool = False,
        size_in_bytes: int | None = None,
    ) -> int:
        """Attach an artifact to a run: ``files`` (file name -> content; a dict is written as JSON) zipped,
        or the bytes to serve as they are (a damaged archive). ``size_in_bytes`` overrides the size the
        listing shows (default: the archive's). Returns its id."""
        if isinstance(files, bytes):
            archive_bytes = files
        else:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file_name, content in files.items():
                    data = json.dumps(content, indent=2) if isinstance(content, dict) else content
                    archive.writestr(file_name, data)
            archive_bytes = buffer.getvalue()
        with self._lock:
            run = self._find_run(str(run_id))
            size = len(archive_bytes) if size_in_bytes is None else size_in_bytes
            created = run.created_at + timedelta(seconds=run.queued_seconds)
            artifact = _Artifact(next(self._artifact_ids), run.id, name, archive_bytes, size, expired, created)
            self._artifacts.append(artifact)
            return artifact.id

    def expire_artifacts(self) -> None:
        """Every artifact is past its retention: listed as expired, its zip answers 410."""
        with self._lock:
            for artifact in self._artifacts:
                artifact.expired = True

    def fail_storage_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next ``times`` requests to the artifact storage answer ``status``."""
        with self._lock:
            self._storage_faults.extend([status] * times)

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

    def _handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> tuple[Response, float]:
        response, delay = super()._handle(method, target, headers, raw_body)
        path = self._local_path(urllib.parse.urlsplit(target).path)
        with self._lock:
            self._path_counts[path] += 1
            if response.status == 304:
                self._not_modified_counts[path] += 1
        return response, delay

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
            # GitHub's answer, body and all (PyGithub raises a plain GithubException with status 409).
            raise _GitHubError(
                409,
                "Already exists - Variable already exists",
                documentation_url=f"{DOCS_URL}/actions/variables#create-a-repository-variable",
                status="409",
            )
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

    @staticmethod
    def _workflow_name(file_name: str) -> str:
        """The workflow's ``name:`` (its file name without the extension, as responder's workflows have it)."""
        return file_name.rsplit(".", 1)[0]

    def _workflow_json(self, name: str) -> dict[str, Any]:
        workflow_id = self._workflow_ids[name]
        path = f".github/workflows/{name}"
        return {
            "id": workflow_id,
            "node_id": f"W_fake{workflow_id}",
            "name": self._workflow_name(name),
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
        if "return_run_details" in body and self.run_details == "rejected":
            raise _GitHubError(422, 'Invalid request.\n\n"return_run_details" is not a permitted key.')
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
        template = self.run_names.get(name)
        title = _render_run_name(template, inputs) if template else self._workflow_name(name)
        run = self._new_run(name, ref, "workflow_dispatch", title)
        self._dispatches.append(
            Dispatch(name, ref, copy.deepcopy(inputs), run.id, run.html_url, _iso(run.created_at), title)
        )
        if body.get("return_run_details") is True and self.run_details == "returned":
            run_url = f"{self._api_repo}/actions/runs/{run.id}"
            return Response(200, {"workflow_run_id": run.id, "run_url": run_url, "html_url": run.html_url})
        return Response(204)

    def _new_run(
        self, name: str, ref: str, event: str, display_title: str, created_at: datetime | None = None
    ) -> _Run:
        run_id = next(self._run_ids)
        run = _Run(
            id=run_id,
            workflow=name,
            ref=ref,
            event=event,
            display_title=display_title,
            created_at=(created_at or datetime.now(UTC)).replace(microsecond=0),
            listed_from=time.monotonic() + self.list_lag_seconds,
            html_url=f"{self._html_repo}/actions/runs/{run_id}",
            born=time.monotonic(),
            queued_seconds=self.queued_seconds,
            running_seconds=self.running_seconds,
        )
        self._runs.append(run)
        return run

    def _find_run(self, run_id: str) -> _Run:
        for run in self._runs:
            if str(run.id) == run_id:
                return run
        raise _not_found()

    def _run_number(self, run: _Run) -> int:
        return [r.id for r in self._runs if r.workflow == run.workflow].index(run.id) + 1

    def _run_json(self, run: _Run, number: int) -> dict[str, Any]:
        status, entered = run.progress(time.monotonic())
        created = _iso(run.created_at)
        started = created if status == "queued" else _iso(run.created_at + timedelta(seconds=run.queued_seconds))
        conclusion = run.conclusion or self.conclusions.get(run.workflow, "success")
        return {
            "id": run.id,
            "name": self._workflow_name(run.workflow),
            "display_title": run.display_title,
            "event": run.event,
            "head_branch": run.ref.removeprefix("refs/heads/"),
            "path": f".github/workflows/{run.workflow}",
            "workflow_id": self._workflow_ids[run.workflow],
            "run_number": number,
            "run_attempt": 1,
            "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "created_at": created,
            "updated_at": _iso(run.created_at + timedelta(seconds=entered)),
            "run_started_at": started,
            "html_url": run.html_url,
            "url": f"{self._api_repo}/actions/runs/{run.id}",
            "artifacts_url": f"{self._api_repo}/actions/runs/{run.id}/artifacts",
        }

    def _get_run(self, req: Request, run_id: str) -> Response:
        """The run, with a weak ETag; 304 without a body (and without spending rate limit) when
        ``If-None-Match`` names the current ETag."""
        run = self._find_run(run_id)
        body = self._run_json(run, self._run_number(run))
        etag = 'W/"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() + '"'
        if _etag_matches(req.headers, etag):
            self._rate_remaining = min(RATE_LIMIT, self._rate_remaining + 1)
            return Response(304, None, {"ETag": etag})
        return Response(200, body, {"ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60"})

    # ----------------------------------------------------------------- artifacts

    def _artifact_json(self, artifact: _Artifact) -> dict[str, Any]:
        url = f"{self._api_repo}/actions/artifacts/{artifact.id}"
        head_sha = _sha1(str(artifact.run_id).encode())
        return {
            "id": artifact.id,
            "node_id": f"MDg6QXJ0aWZhY3Q{artifact.id}",
            "name": artifact.name,
            "size_in_bytes": artifact.size_in_bytes,
            "url": url,
            "archive_download_url": f"{url}/zip",
            "expired": artifact.expired,
            "digest": "sha256:" + hashlib.sha256(artifact.archive).hexdigest(),
            "created_at": _iso(artifact.created_at),
            "updated_at": _iso(artifact.created_at),
            "expires_at": _iso(artifact.created_at + timedelta(days=ARTIFACT_RETENTION_DAYS)),
            "workflow_run": {
                "id": artifact.run_id,
                "repository_id": 500_001,
                "head_repository_id": 500_001,
                "head_branch": DEFAULT_BRANCH,
                "head_sha": head_sha,
            },
        }

    def _list_run_artifacts(self, req: Request, run_id: str) -> Response:
        run = self._find_run(run_id)
        artifacts = [self._artifact_json(a) for a in self._artifacts if a.run_id == run.id]
        return self._paginate(req, artifacts, wrap="artifacts")

    def _download_artifact(self, req: Request, artifact_id: str) -> Response:
        """302 to a signed, short-lived link on the storage server; 410 once the artifact expired."""
        artifact = next((a for a in self._artifacts if str(a.id) == artifact_id), None)
        if artifact is None:
            raise _not_found()
        if artifact.expired:
            raise _GitHubError(410, "Artifact has expired")
        if self._storage is None:
            raise _GitHubError(503, "artifact storage is not running")
        now = datetime.now(UTC)
        start, expiry = _iso(now - timedelta(minutes=5)), _iso(now + timedelta(seconds=self.artifact_link_seconds))
        blob = f"/actions-results/{uuid.uuid4()}/artifacts/{artifact.id}.zip"
        signed = f"{blob}\n{start}\n{expiry}".encode()
        signature = base64.b64encode(hmac.new(self._link_key, signed, hashlib.sha256).digest()).decode()
        self._links[signature] = (artifact.id, time.monotonic() + self.artifact_link_seconds)
        query = urllib.parse.urlencode(
            {
                "rscd": f'attachment; filename="{artifact.name}.zip"',
                "se": expiry,
                "sig": signature,
                "sp": "r",
                "spr": "https",
                "sr": "b",
                "st": start,
                "sv": "2025-01-05",
            }
        )
        return Response(302, None, {"Location": f"{self._storage.url}{blob}?{query}"})

    def _storage_get(self, target: str, authorization: str | None) -> tuple[int, bytes, str]:
        """What the storage server answers: ``(status, body, content type)``; the request is recorded."""
        with self._lock:
            status, body, content_type = self._storage_answer(target, authorization)
            self._storage_requests.append(StorageRequest(target, authorization, status))
            return status, body, content_type

    def _storage_answer(self, target: str, authorization: str | None) -> tuple[int, bytes, str]:
        if self._storage_faults:
            status = self._storage_faults.pop(0)
            return _storage_error(status, "ServerBusy", "The server is currently unable to respond.")
        if authorization is not None:
            # A signed link carries its own credentials; Azure refuses a request that brings others.
            return _storage_error(
                400, "InvalidAuthenticationInfo", "Authentication information is not given in the correct format."
            )
        split = urllib.parse.urlsplit(target)
        signature = urllib.parse.parse_qs(split.query).get("sig", [""])[0]
        artifact_id, expires = self._links.get(signature, (None, 0.0))
        artifact = next((a for a in self._artifacts if a.id == artifact_id), None)
        if artifact is None or not split.path.endswith(f"/{artifact.id}.zip"):
            return _storage_error(403, "AuthenticationFailed", "Server failed to authenticate the request.")
        if time.monotonic() >= expires:
            return _storage_error(403, "AuthenticationFailed", "Signature not valid in the specified time frame.")
        return 200, artifact.archive, "application/zip"

    def _list_workflow_runs(self, req: Request, workflow: str) -> Response:
        """Runs listed (``list_lag_seconds`` after their creation), newest first, filtered by event,
        branch and ``created=>=ISO`` (or ``>ISO``) like GitHub."""
        name = self._find_workflow(workflow)
        event, branch, created = req.params.get("event"), req.params.get("branch"), req.params.get("created", "")
        after = self._created_filter(created)
        now = time.monotonic()
        numbers = {run.id: n for n, run in enumerate((r for r in self._runs if r.workflow == name), start=1)}
        runs = [
            self._run_json(run, numbers[run.id])
            for run in sorted(self._runs, key=lambda r: (r.created_at, r.id), reverse=True)
            if run.workflow == name
            and run.listed_from <= now
            and event in (None, run.event)
            and branch in (None, run.ref.removeprefix("refs/heads/"))
            and after(run.created_at)
        ]
        return self._paginate(req, runs, wrap="workflow_runs")

    @staticmethod
    def _created_filter(created: str) -> Callable[[datetime], bool]:
        """The test a run's created_at must pass for ``created`` (``>=ISO``, ``>ISO`` or empty)."""
        if not created:
            return lambda moment: True
        operator, stamp = (">=", created[2:]) if created.startswith(">=") else (">", created[1:])
        if not created.startswith(">"):
            raise _validation_failed("WorkflowRun", "created", "invalid")
        try:
            bound = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise _validation_failed("WorkflowRun", "created", "invalid") from None
        if bound.tzinfo is None:
            bound = bound.replace(tzinfo=UTC)
        return (lambda moment: moment >= bound) if operator == ">=" else (lambda moment: moment > bound)

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
        route("GET", _REPO + r"/actions/runs/(?P<run_id>\d+)", _get_run),
        route("GET", _REPO + r"/actions/runs/(?P<run_id>\d+)/artifacts", _list_run_artifacts),
        route("GET", _REPO + r"/actions/artifacts/(?P<artifact_id>\d+)/zip", _download_artifact),
        route("GET", _REPO + r"/contents/(?P<path>.+)", _get_contents),
        route("GET", _REPO + r"/commits", _list_commits),
        route("GET", _REPO + r"/issues", _list_issues),
        route("POST", _REPO + r"/issues", _create_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)", _get_issue),
        route("PATCH", _REPO + r"/issues/(?P<number>\d+)", _update_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)/comments", _list_comments),
        route("POST", _REPO + r"/issues/(?P<number>\d+)/comments", _create_comment),
    )


# --------------------------------------------------------------------------- artifact storage


class _StorageServer:
    """The host an artifact's download link points at: a listening socket of its own (another
    origin than the API), answering GET from :meth:`FakeGitHub._storage_get`."""

    def __init__(self, fake: FakeGitHub) -> None:
        self._server = _StorageHTTPServer(("127.0.0.1", 0), _StorageHandler)
        self._server.fake = fake
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeArtifactStorage", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _StorageHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (one abandoning a download over its limit) is not an error of the fake."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _StorageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _StorageHTTPServer

    def do_GET(self) -> None:
        status, body, content_type = self.server.fake._storage_get(self.path, self.headers.get("Authorization"))
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (e.g. a download over its size limit)

    def log_message(self, format: str, *args: Any) -> None:
        pass
