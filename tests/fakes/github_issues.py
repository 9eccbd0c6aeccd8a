"""Issues and issue comments of :class:`tests.fakes.github.FakeGitHub`.

As on GitHub, a pull request is an issue too: both share one number sequence, ``GET
.../issues`` lists pull requests (with a ``pull_request`` key) among the issues, ``GET
.../issues/{n}`` of a pull request's number answers it as an issue, and conversation comments
on a pull request go through ``.../issues/{n}/comments``. The :attr:`IssuesLayer.issues`
snapshot holds the plain issues only (pull requests are in ``pulls``).

Webhooks: ``issues`` ``opened``/``closed``/``reopened`` for changes made through the API,
``issue_comment`` ``created`` for every comment (the API's, and :meth:`IssuesLayer.comment_as`'s).
"""

from __future__ import annotations

import itertools
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tests.fakes.github_common import _REPO, _not_found, _now, _validation_failed
from tests.fakes.github_git import GitLayer
from tests.fakes.server import Request, Response, Route, route


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


@dataclass
class _Comment:
    id: int
    body: str
    created_at: str
    updated_at: str
    author: str = ""  # login; "" is the token's identity


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
    author: str = ""  # login; "" is the token's identity


class IssuesLayer(GitLayer):
    """Issues, labels (created implicitly) and issue comments."""

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._issues: list[_StoredIssue] = []
            self._labels: dict[str, tuple[int, str]] = {}  # lower-case name -> (id, name)
            self._ids = itertools.count(1001)

    @property
    def issues(self) -> list[Issue]:
        """The issues (not the pull requests), oldest first."""
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
                if not self._is_pull(i.number)
            ]

    def comment_as(self, number: int, login: str, body: str) -> int:
        """``login`` comments ``body`` on issue or pull request ``number`` (an ``issue_comment``
        ``created`` delivery follows); returns the comment id."""
        with self._lock:
            issue = self._find_issue(str(number))
            return self._add_comment(issue, body, login).id

    # ----------------------------------------------------------------- for the pull requests layer

    def _is_pull(self, number: int) -> bool:
        return False

    def _pull_link(self, number: int) -> dict[str, Any] | None:
        """The ``pull_request`` key of an issue that is a pull request."""
        return None

    def _new_issue(self, title: str, body: str | None, labels: list[str], author: str) -> _StoredIssue:
        now = _now()
        issue = _StoredIssue(next(self._ids), len(self._issues) + 1, title, body, labels, now, now, author=author)
        self._issues.append(issue)
        return issue

    def _add_comment(self, issue: _StoredIssue, text: str, author: str) -> _Comment:
        now = _now()
        comment = _Comment(next(self._ids), text, now, now, author if author != self.login else "")
        issue.comments.append(comment)
        issue.updated_at = now
        self._emit(
            "issue_comment", "created",
            {"issue": self._issue_json(issue), "comment": self._comment_json(issue, comment)}, author,
        )
        return comment

    def _author(self, login: str) -> str:
        return login or self.login

    # ----------------------------------------------------------------- JSON

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
        pull = self._pull_link(issue.number)
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
            "user": self._user_json(self._author(issue.author)),
            "author_association": "NONE",
            "url": url,
            "repository_url": self._api_repo,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": pull["html_url"] if pull else self._issue_html_url(issue.number),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            **({"draft": False, "pull_request": pull} if pull else {}),
        }

    def _comment_json(self, issue: _StoredIssue, comment: _Comment) -> dict[str, Any]:
        html = self._pull_link(issue.number)
        html_url = html["html_url"] if html else self._issue_html_url(issue.number)
        return {
            "id": comment.id,
            "node_id": f"IC_fake{comment.id}",
            "url": f"{self._api_repo}/issues/comments/{comment.id}",
            "html_url": f"{html_url}#issuecomment-{comment.id}",
            "issue_url": f"{self._api_repo}/issues/{issue.number}",
            "body": comment.body,
            "user": self._user_json(self._author(comment.author)),
            "author_association": "NONE" if not comment.author else "COLLABORATOR",
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
        }

    def _find_issue(self, number: str) -> _StoredIssue:
        for issue in self._issues:
            if issue.number == int(number):
                return issue
        raise _not_found()

    # ----------------------------------------------------------------- handlers

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
        issue = self._new_issue(title, text, labels, "")
        self._emit("issues", "opened", {"issue": self._issue_json(issue)}, self.login)
        return Response(201, self._issue_json(issue))

    @staticmethod
    def _edited(body: dict[str, Any], issue: _StoredIssue, resource: str) -> tuple[str, str | None, str]:
        """The title, body and state an edit of ``issue`` (or of a pull request's) asks for, validated."""
        title = body.get("title", issue.title)
        if not isinstance(title, str) or not title.strip():
            raise _validation_failed(resource, "title", "invalid")
        text = body.get("body", issue.body)
        if text is not None and not isinstance(text, str):
            raise _validation_failed(resource, "body", "invalid")
        state = body.get("state", issue.state)
        if state not in ("open", "closed"):
            raise _validation_failed(resource, "state", "invalid")
        return title, text, state

    def _get_issue(self, req: Request, number: str) -> Response:
        return Response(200, self._issue_json(self._find_issue(number)))

    def _update_issue(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        body = self._body_dict(req)
        # validate everything first: GitHub applies an edit entirely or not at all
        title, text, state = self._edited(body, issue, "Issue")
        labels = self._ensure_labels(body["labels"]) if "labels" in body else issue.labels

        issue.title, issue.body, issue.labels = title, text, labels
        changed_state = state != issue.state
        if changed_state:
            issue.state = state
            issue.closed_at = _now() if state == "closed" else None
            default_reason = "completed" if state == "closed" else "reopened"
            issue.state_reason = body.get("state_reason") or default_reason
        elif "state_reason" in body and issue.state == "closed":
            issue.state_reason = body["state_reason"]
        issue.updated_at = _now()
        if changed_state and not self._is_pull(issue.number):
            action = "closed" if state == "closed" else "reopened"
            self._emit("issues", action, {"issue": self._issue_json(issue)}, self.login)
        return Response(200, self._issue_json(issue))

    def _list_comments(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        return self._paginate(req, [self._comment_json(issue, c) for c in issue.comments])

    def _create_comment(self, req: Request, number: str) -> Response:
        issue = self._find_issue(number)
        text = self._body_dict(req).get("body")
        if not isinstance(text, str) or not text:
            raise _validation_failed("IssueComment", "body")
        return Response(201, self._comment_json(issue, self._add_comment(issue, text, self.login)))

    ROUTES: ClassVar[tuple[Route, ...]] = (
        *GitLayer.ROUTES,
        route("GET", _REPO + r"/issues", _list_issues),
        route("POST", _REPO + r"/issues", _create_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)", _get_issue),
        route("PATCH", _REPO + r"/issues/(?P<number>\d+)", _update_issue),
        route("GET", _REPO + r"/issues/(?P<number>\d+)/comments", _list_comments),
        route("POST", _REPO + r"/issues/(?P<number>\d+)/comments", _create_comment),
    )
