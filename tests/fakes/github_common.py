"""The GitHub-ness shared by every part of :class:`tests.fakes.github.FakeGitHub`.

:class:`GitHubCore` is the bottom layer of the fake: the one repository's identity, the
request pipeline's GitHub specifics (authentication, the ``/api/v3``-style prefix, 404 for
any other repository or organization, rate-limit headers, per-path counts), GitHub-style
errors, pagination with ``Link`` headers and the JSON of users, the organization and the
repository. The other layers build on it, each in a module of its own::

    GitHubCore      (github_common)  this module
    WebhooksLayer   (github_hooks)   signed webhook deliveries from a background thread
    GitLayer        (github_git)     commits, branches, git refs, contents reads and writes
    IssuesLayer     (github_issues)  issues and issue comments
    PullsLayer      (github_pulls)   pull requests, review requests, reviews, users and teams
    FakeGitHub      (github)         Actions: variables, workflows, runs, artifacts

Each layer's routing table extends the one below (``ROUTES = Lower.ROUTES + (...)``) and its
``reset`` calls ``super().reset()``. Stdlib only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from tests.fakes.server import ApiError, FakeServer, Request, Response, Route, route

HTML_BASE = "http://github.fake"
RAW_BASE = "http://raw.github.fake"
DOCS_URL = "https://docs.github.com/rest"
DEFAULT_BRANCH = "main"
RATE_LIMIT = 5000
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
REPOSITORY_ID = 500_001
ORGANIZATION_ID = 700_001

_REPO = r"/repos/[^/]+/[^/]+"
_REPO_PATH = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?:/|$)")
_ORG_PATH = re.compile(r"/orgs/(?P<org>[^/]+)(?:/|$)")


@dataclass(frozen=True)
class PathCounts:
    """Requests the fake answered for one path (no query string), and how many of them were 304s."""

    requests: int
    not_modified: int


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _blob_sha(content: bytes) -> str:
    """Git's blob id of ``content`` (what the contents API calls a file's ``sha``)."""
    return _sha1(b"blob %d\0" % len(content) + content)


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


def _custom_validation(resource: str, message: str) -> _GitHubError:
    """GitHub's 422 whose one error is a sentence (``"code": "custom"``), e.g. a duplicate pull request."""
    return _GitHubError(422, "Validation Failed", errors=[{"resource": resource, "code": "custom", "message": message}])


def _invalid_request(missing: str) -> _GitHubError:
    """GitHub's schema refusal of a request that lacks a required field."""
    return _GitHubError(422, f'Invalid request.\n\n"{missing}" wasn\'t supplied.')


class GitHubCore(FakeServer):
    """The one repository, its owner organization and the GitHub request pipeline; see the module docstring."""

    login = "responder[bot]"  # the identity the token belongs to (author of what the API creates)

    def __init__(self, *, token: str, owner: str, repo: str, prefix: str) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must look like '/api/v3', got {prefix!r}")
        self.token = token
        self.owner = owner
        self.repo = repo
        self.prefix = prefix
        super().__init__()

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._path_counts: Counter[str] = Counter()
            self._not_modified_counts: Counter[str] = Counter()
            self._rate_remaining = RATE_LIMIT
            self._rate_reset = int(time.time()) + 3600

    @property
    def url(self) -> str:
        """API base URL to pass to ``Github(base_url=...)`` (includes the prefix)."""
        return super().url + self.prefix

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def path_counts(self) -> dict[str, PathCounts]:
        """Per path (without query string or prefix): requests answered, and how many were 304s."""
        with self._lock:
            return {
                path: PathCounts(count, self._not_modified_counts[path]) for path, count in self._path_counts.items()
            }

    @property
    def rate_remaining(self) -> int:
        """The core rate limit left (a 304 does not spend any, as on GitHub)."""
        with self._lock:
            return self._rate_remaining

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
        """Route the request; any owner/repo but the one repository, any organization but its owner, is 404."""
        repository = _REPO_PATH.match(request.path)
        if repository is not None:
            owner, repo = (urllib.parse.unquote(part).lower() for part in repository.group("owner", "repo"))
            if (owner, repo) != (self.owner.lower(), self.repo.lower()):
                raise _not_found()
        organization = _ORG_PATH.match(request.path)
        if organization is not None and urllib.parse.unquote(organization.group("org")).lower() != self.owner.lower():
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
            "node_id": f"U_fake{_sha1(login.encode())[:10]}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.url}/users/{urllib.parse.quote(login)}",
            "html_url": f"{HTML_BASE}/{urllib.parse.quote(login)}",
        }

    def _organization_json(self) -> dict[str, Any]:
        """The owner organization, as webhook payloads (``organization``) and ``GET /orgs/{org}`` show it."""
        api = f"{self.url}/orgs/{self.owner}"
        return {
            "login": self.owner,
            "id": ORGANIZATION_ID,
            "node_id": "O_kgDOfake",
            "url": api,
            "repos_url": f"{api}/repos",
            "hooks_url": f"{api}/hooks",
            "members_url": f"{api}/members{{/member}}",
            "description": None,
        }

    def _pushed_at(self) -> str:
        """When the repository was last pushed to (the git layer knows)."""
        return "2024-01-01T00:00:00Z"

    def _repository_json(self) -> dict[str, Any]:
        api = self._api_repo
        return {
            "id": REPOSITORY_ID,
            "node_id": "R_kgDOfake",
            "name": self.repo,
            "full_name": self.full_name,
            "owner": {**self._user_json(self.owner), "id": ORGANIZATION_ID, "type": "Organization"},
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
            "pulls_url": f"{api}/pulls{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "has_issues": True,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": _now(),
            "pushed_at": self._pushed_at(),
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

    # ----------------------------------------------------------------- repository and organization

    def _get_repository(self, req: Request) -> Response:
        return Response(200, self._repository_json())

    def _get_organization(self, req: Request, org: str) -> Response:
        html_url = f"{HTML_BASE}/{self.owner}"
        return Response(200, {**self._organization_json(), "html_url": html_url, "type": "Organization"})

    ROUTES: ClassVar[tuple[Route, ...]] = (
        route("GET", _REPO, _get_repository),
        route("GET", r"/orgs/(?P<org>[^/]+)", _get_organization),
    )
