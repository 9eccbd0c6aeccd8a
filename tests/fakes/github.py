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
    GET    /repos/{o}/{r}/contents/{path}?ref=                   (github_git)
    PUT    /repos/{o}/{r}/contents/{path}                        (200 update, 201 create, 409 stale sha)
    GET    /repos/{o}/{r}/commits?path=&sha=
    GET    /repos/{o}/{r}/branches/{branch}
    GET    /repos/{o}/{r}/git/ref/heads/{branch}                 (and git/refs/heads/{branch})
    POST   /repos/{o}/{r}/git/refs                               (422 "Reference already exists")
    DELETE /repos/{o}/{r}/git/refs/heads/{branch}
    GET    /repos/{o}/{r}/issues?state=&labels=                  (github_issues; pull requests too)
    POST   /repos/{o}/{r}/issues
    GET    /repos/{o}/{r}/issues/{n}
    PATCH  /repos/{o}/{r}/issues/{n}
    GET    /repos/{o}/{r}/issues/{n}/comments
    POST   /repos/{o}/{r}/issues/{n}/comments
    POST   /repos/{o}/{r}/pulls                                  (github_pulls)
    GET    /repos/{o}/{r}/pulls?state=&head=owner:branch&base=
    GET    /repos/{o}/{r}/pulls/{n}
    PATCH  /repos/{o}/{r}/pulls/{n}                              (title, body, state, base)
    POST   /repos/{o}/{r}/pulls/{n}/requested_reviewers
    GET    /repos/{o}/{r}/pulls/{n}/requested_reviewers
    DELETE /repos/{o}/{r}/pulls/{n}/requested_reviewers
    GET    /repos/{o}/{r}/pulls/{n}/reviews
    GET    /orgs/{org}                                           (github_common; the owner only)
    GET    /orgs/{org}/teams/{slug}                              (github_pulls)
    GET    /orgs/{org}/teams/{slug}/members
    GET    /organizations/{org_id}/team/{team_id}                (a team's ``url``)
    GET    /organizations/{org_id}/team/{team_id}/members

The fake is built in layers, one module each (see :mod:`tests.fakes.github_common`): the
GitHub request pipeline (``github_common``), signed webhook deliveries from a background
thread (``github_hooks``: :meth:`~FakeGitHub.hook`, :attr:`~FakeGitHub.deliveries`,
:meth:`~FakeGitHub.redeliver`, :meth:`~FakeGitHub.wait_for_deliveries`), commits and branches
(``github_git``: :meth:`~FakeGitHub.set_file`, :meth:`~FakeGitHub.create_branch`,
:meth:`~FakeGitHub.file_at`, :attr:`~FakeGitHub.branches`), issues (``github_issues``:
:meth:`~FakeGitHub.comment_as`), pull requests, reviews, users and teams (``github_pulls``:
:meth:`~FakeGitHub.add_user`, :meth:`~FakeGitHub.add_team`, :meth:`~FakeGitHub.submit_review`,
:meth:`~FakeGitHub.merge_pull`, :meth:`~FakeGitHub.close_pull`, :attr:`~FakeGitHub.pulls`),
and this module's Actions. Each module's docstring says how closely it follows GitHub.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self

from tests.fakes.github_common import (
    _REPO,
    DEFAULT_BRANCH,
    DOCS_URL,
    HTML_BASE,
    RATE_LIMIT,
    RAW_BASE,
    PathCounts,
    _GitHubError,
    _iso,
    _not_found,
    _now,
    _sha1,
    _validation_failed,
)
from tests.fakes.github_git import MANIFEST_PATH
from tests.fakes.github_hooks import Delivery
from tests.fakes.github_issues import Issue
from tests.fakes.github_pulls import PullRequest, PullsLayer, Review
from tests.fakes.server import Recorded as Recorded  # re-exported: one request the fake received
from tests.fakes.server import Request, Response, Route, route

__all__ = [  # what tests import from here (the layers live in tests/fakes/github_*.py)
    "DEFAULT_BRANCH",
    "HTML_BASE",
    "MANIFEST_PATH",
    "RAW_BASE",
    "Delivery",
    "Dispatch",
    "FakeGitHub",
    "Issue",
    "PathCounts",
    "PullRequest",
    "Recorded",
    "Review",
    "StorageRequest",
]

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
class StorageRequest:
    """One request the artifact storage server received."""

    path: str  # with the query string
    authorization: str | None  # the Authorization header, if the client sent one (it must not)
    status: int


# --------------------------------------------------------------------------- internals


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

# --------------------------------------------------------------------------- the fake


class FakeGitHub(PullsLayer):
    """A single-repository GitHub REST API served on 127.0.0.1; see the module docstring."""

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
        super().__init__(token=token, owner=owner, repo=repo, prefix=prefix)

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
            self._run_ids = itertools.count(9_000_000_001)
            self._artifacts: list[_Artifact] = []
            self._artifact_ids = itertools.count(4_000_000_001)
            self._links: dict[str, tuple[int, float]] = {}  # signature -> (artifact id, monotonic expiry)
            self._storage_requests: list[StorageRequest] = []
            self._storage_faults: list[int] = []  # statuses the next storage requests answer

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
    def storage_requests(self) -> list[StorageRequest]:
        with self._lock:
            return list(self._storage_requests)

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

    def deliver_workflow_run_completed(self, run_id: int, *, sender: str | None = None) -> None:
        """GitHub's ``workflow_run`` ``completed`` webhook for run ``run_id``, as when it completes (the
        run is shown completed with its conclusion, whatever the fake's clock says); ``sender``: who
        triggered it (default: the token's identity, which dispatched it)."""
        with self._lock:
            run = self._find_run(str(run_id))
            shown = self._run_json(run, self._run_number(run))
            conclusion = run.conclusion or self.conclusions.get(run.workflow, "success")
            finished = _iso(run.created_at + timedelta(seconds=run.queued_seconds + run.running_seconds))
            shown |= {"status": "completed", "conclusion": conclusion, "updated_at": finished}
            objects = {"workflow_run": shown, "workflow": self._workflow_json(run.workflow)}
            self._emit("workflow_run", "completed", objects, sender or self.login)

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

    # ----------------------------------------------------------------- routing table

    ROUTES: ClassVar[tuple[Route, ...]] = (
        *PullsLayer.ROUTES,
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
