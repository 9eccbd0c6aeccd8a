"""Pull requests, review requests, reviews, users and teams of :class:`tests.fakes.github.FakeGitHub`.

The API (the token's identity, ``login``) opens, lists, reads and edits pull requests and
requests reviews; the "other people" act through the test helpers: :meth:`PullsLayer.submit_review`,
:meth:`PullsLayer.merge_pull`, :meth:`PullsLayer.close_pull`, ``comment_as`` (issues layer).
Who may be asked for a review: the users :meth:`PullsLayer.add_user` made collaborators, the
members of the teams :meth:`PullsLayer.add_team` gave access, and those teams.

As on GitHub:

* ``POST .../pulls`` answers 201; 422 "Validation Failed" with a ``custom`` error "A pull request
  already exists for owner:branch." while one is open for the same head and base, "No commits
  between <base> and <head>" when the head adds nothing, and ``invalid`` ``head``/``base`` for an
  unknown branch. ``head`` is ``branch`` or ``owner:branch``.
* ``GET .../pulls`` filters by ``state`` (default open), ``base``, and ``head`` in the form
  ``owner:branch`` -- a ``head`` without the owner is ignored, as GitHub ignores it. List items
  leave out what GitHub computes per pull request only (``merged``, ``mergeable``, counts), which
  PyGithub then fetches lazily.
* A review request answers 201 with the pull request; 422 "Review cannot be requested from pull
  request author." and 422 "Reviews may only be requested from collaborators. ..." for anyone
  (user or team) without access. A user's request goes once they review.
* Reviews: the REST API says ``APPROVED``/``CHANGES_REQUESTED``/``COMMENTED``/``DISMISSED``,
  the ``pull_request_review`` webhook says ``approved``/``changes_requested``/``commented``/``dismissed``.
* Webhooks: ``pull_request`` ``opened``, ``closed`` (``merged`` true or false), ``reopened``,
  ``review_requested`` / ``review_request_removed`` (one delivery per user or team, with
  ``requested_reviewer`` or ``requested_team``); ``pull_request_review`` ``submitted``/``dismissed``.

Teams: ``GET /orgs/{org}/teams/{slug}`` and ``.../members``, and the same under the team's
``url`` (``/organizations/{org_id}/team/{team_id}``), which is where PyGithub goes once it
has the team.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from tests.fakes.github_common import (
    _REPO,
    DEFAULT_BRANCH,
    HTML_BASE,
    ORGANIZATION_ID,
    _custom_validation,
    _GitHubError,
    _not_found,
    _now,
    _validation_failed,
)
from tests.fakes.github_git import _Commit
from tests.fakes.github_issues import IssuesLayer, _StoredIssue
from tests.fakes.server import Request, Response, Route, route

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED"]
NOT_COLLABORATOR = (
    "Reviews may only be requested from collaborators. One or more of the users or teams you specified "
    "is not a collaborator of the {repo} repository."
)


@dataclass(frozen=True)
class Review:
    """Snapshot of a submitted review (``state`` as the REST API says it)."""

    id: int
    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    body: str
    commit_id: str


@dataclass(frozen=True)
class PullRequest:
    """Snapshot of a pull request as the fake currently stores it."""

    number: int
    title: str
    body: str | None
    state: str  # "open" | "closed"
    head: str  # branch name
    base: str
    head_sha: str
    merged: bool
    merged_by: str | None
    merge_commit_sha: str | None
    author: str
    draft: bool
    requested_reviewers: list[str]
    requested_teams: list[str]
    reviews: list[Review]
    comments: list[str]
    html_url: str


@dataclass
class _Review:
    id: int
    user: str
    state: str
    body: str
    submitted_at: str
    commit_id: str


@dataclass
class _Pull:
    number: int
    id: int
    head: str
    base: str
    head_sha: str  # the head branch's head while it exists
    base_sha: str
    author: str
    draft: bool = False
    maintainer_can_modify: bool = False
    requested_users: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)
    reviews: list[_Review] = field(default_factory=list)
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None


@dataclass
class _Team:
    id: int
    slug: str
    name: str
    members: list[str]


class PullsLayer(IssuesLayer):
    """Pull requests and their reviews; collaborators and teams. See the module docstring."""

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._pulls: dict[int, _Pull] = {}
            self._users: set[str] = set()
            self._teams: dict[str, _Team] = {}

    # ----------------------------------------------------------------- test API: people

    def add_user(self, login: str) -> None:
        """``login`` becomes a collaborator of the repository (may review, may be asked to)."""
        with self._lock:
            self._users.add(login)

    def add_team(self, slug: str, members: list[str], *, name: str | None = None) -> int:
        """An organization team with access to the repository, of ``members``; returns its id."""
        with self._lock:
            team = _Team(len(self._teams) + 3_100_001, slug, name or slug, list(members))
            self._teams[slug.lower()] = team
            return team.id

    # ----------------------------------------------------------------- test API: other people act

    def submit_review(self, number: int, login: str, state: ReviewState, body: str = "") -> int:
        """``login`` reviews pull request ``number`` at its head commit; their review request (not their
        team's) goes, and a ``pull_request_review`` ``submitted`` delivery follows. Returns the review id.
        ValueError where GitHub refuses: an unknown state, a comment or change request without a body,
        the author approving or requesting changes on their own pull request."""
        if state not in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED"):
            raise ValueError(f"unknown review state {state!r}")
        if state != "APPROVED" and not body:
            raise ValueError(f"a {state} review needs a body")
        with self._lock:
            pull, issue = self._find_pull(str(number))
            if login == self._pull_author(pull) and state != "COMMENTED":
                raise ValueError("Can not approve your own pull request" if state == "APPROVED"
                                 else "Can not request changes on your own pull request")
            self._refresh(pull, issue)
            review = _Review(next(self._ids), login, state, body, _now(), pull.head_sha)
            pull.reviews.append(review)
            if login in pull.requested_users:
                pull.requested_users.remove(login)
            issue.updated_at = review.submitted_at
            self._emit_review(pull, issue, review, "submitted", login)
            return review.id

    def dismiss_review(self, number: int, review_id: int, login: str, message: str = "dismissed") -> None:
        """``login`` dismisses a review: its state becomes DISMISSED (``pull_request_review`` ``dismissed``)."""
        with self._lock:
            pull, issue = self._find_pull(str(number))
            review = next((r for r in pull.reviews if r.id == review_id), None)
            if review is None:
                raise KeyError(review_id)
            review.state = "DISMISSED"
            self._emit_review(pull, issue, review, "dismissed", login)

    def merge_pull(self, number: int, login: str, *, method: Literal["merge", "squash"] = "merge",
                   delete_branch: bool = False) -> str:
        """``login`` merges pull request ``number`` (a merge commit, or one squashed commit, on the base);
        a ``pull_request`` ``closed`` delivery with ``merged: true`` follows. Returns the new commit's sha.
        ValueError when it is not open or its head conflicts with the base."""
        with self._lock:
            pull, issue = self._find_pull(str(number))
            if issue.state != "open":
                raise ValueError(f"pull request {number} is {issue.state}")
            self._refresh(pull, issue)
            files = self._merge_files(pull)
            head = self._commits[pull.head_sha]
            if method == "squash":
                commit = self._commit(pull.base, files, f"{issue.title} (#{number})", login)
            else:
                message = f"Merge pull request #{number} from {self.owner}/{pull.head}\n\n{issue.title}"
                commit = self._commit(pull.base, files, message, login, extra_parents=(head.sha,), changed=())
            now = _now()
            pull.merged_at, pull.merged_by, pull.merge_commit_sha = now, login, commit.sha
            issue.state, issue.closed_at, issue.updated_at = "closed", now, now
            if delete_branch and pull.head != DEFAULT_BRANCH:
                self._branches.pop(pull.head, None)
            self._emit("pull_request", "closed", {"number": number, "pull_request": self._pull_json(pull, issue)},
                       login)
            return commit.sha

    def close_pull(self, number: int, login: str) -> None:
        """``login`` closes pull request ``number`` without merging (``pull_request`` ``closed``, ``merged: false``)."""
        with self._lock:
            pull, issue = self._find_pull(str(number))
            if issue.state != "open":
                raise ValueError(f"pull request {number} is {issue.state}")
            self._set_state(pull, issue, "closed", login)

    @property
    def pulls(self) -> list[PullRequest]:
        """The pull requests, oldest first."""
        with self._lock:
            snapshots = []
            for pull in self._pulls.values():
                issue = self._find_issue(str(pull.number))
                self._refresh(pull, issue)
                snapshots.append(
                    PullRequest(
                        number=pull.number,
                        title=issue.title,
                        body=issue.body,
                        state=issue.state,
                        head=pull.head,
                        base=pull.base,
                        head_sha=pull.head_sha,
                        merged=pull.merged_at is not None,
                        merged_by=pull.merged_by,
                        merge_commit_sha=pull.merge_commit_sha,
                        author=self._pull_author(pull),
                        draft=pull.draft,
                        requested_reviewers=list(pull.requested_users),
                        requested_teams=list(pull.requested_teams),
                        reviews=[Review(r.id, r.user, r.state, r.body, r.commit_id) for r in pull.reviews],
                        comments=[c.body for c in issue.comments],
                        html_url=self._pull_html_url(pull.number),
                    )
                )
            return snapshots

    # ----------------------------------------------------------------- the model

    def _is_pull(self, number: int) -> bool:
        return number in self._pulls

    def _pull_link(self, number: int) -> dict[str, Any] | None:
        pull = self._pulls.get(number)
        if pull is None:
            return None
        api = f"{self._api_repo}/pulls/{number}"
        html = self._pull_html_url(number)
        return {"url": api, "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                "merged_at": pull.merged_at}

    def _pull_html_url(self, number: int) -> str:
        return f"{self._html_repo}/pull/{number}"

    def _pull_author(self, pull: _Pull) -> str:
        return self._author(pull.author)

    def _has_access(self, login: str) -> bool:
        return login == self.login or login in self._users or any(login in t.members for t in self._teams.values())

    def _find_pull(self, number: str) -> tuple[_Pull, _StoredIssue]:
        pull = self._pulls.get(int(number))
        if pull is None:
            raise _not_found()
        return pull, self._find_issue(number)

    def _refresh(self, pull: _Pull, issue: _StoredIssue) -> None:
        """An open pull request follows its branches (pushes to them move its head and base shas)."""
        if issue.state == "open":
            if pull.head in self._branches:
                pull.head_sha = self._branches[pull.head]
            if pull.base in self._branches:
                pull.base_sha = self._branches[pull.base]

    def _merge_base(self, a: _Commit, b: _Commit) -> _Commit | None:
        reachable = {c.sha for c in self._ancestors(b)}
        return next((c for c in self._ancestors(a) if c.sha in reachable), None)

    def _merge_files(self, pull: _Pull) -> dict[str, bytes]:
        """What merging the head into the base writes; ValueError on a conflict."""
        head, base = self._commits[pull.head_sha], self._commits[pull.base_sha]
        ancestor = self._merge_base(head, base)
        before = ancestor.tree if ancestor else {}
        files = {path: data for path, data in head.tree.items() if before.get(path) != data}
        conflicts = [p for p, data in files.items() if base.tree.get(p) not in (before.get(p), data)]
        if conflicts:
            raise ValueError(f"merge conflict in {', '.join(sorted(conflicts))}")
        return files

    def _ahead(self, head: _Commit, base: _Commit) -> bool:
        """Whether ``head`` has commits ``base`` has not."""
        return head.sha not in {c.sha for c in self._ancestors(base)}

    def _set_state(self, pull: _Pull, issue: _StoredIssue, state: str, sender: str) -> None:
        self._refresh(pull, issue)
        now = _now()
        issue.state, issue.updated_at = state, now
        issue.closed_at = now if state == "closed" else None
        action = "closed" if state == "closed" else "reopened"
        self._emit("pull_request", action, {"number": pull.number, "pull_request": self._pull_json(pull, issue)},
                   sender)

    def _emit_review(self, pull: _Pull, issue: _StoredIssue, review: _Review, action: str, sender: str) -> None:
        hook_review = {**self._review_json(pull, review), "state": review.state.lower()}  # GitHub's wart
        self._emit("pull_request_review", action,
                   {"review": hook_review, "pull_request": self._pull_json(pull, issue, listed=True)}, sender)

    # ----------------------------------------------------------------- JSON

    def _team_json(self, team: _Team) -> dict[str, Any]:
        url = f"{self.url}/organizations/{ORGANIZATION_ID}/team/{team.id}"
        return {
            "id": team.id,
            "node_id": f"T_fake{team.id}",
            "url": url,
            "html_url": f"{HTML_BASE}/orgs/{self.owner}/teams/{team.slug}",
            "name": team.name,
            "slug": team.slug,
            "description": None,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "members_url": f"{url}/members{{/member}}",
            "repositories_url": f"{url}/repos",
            "parent": None,
        }

    def _branch_json(self, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{self.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": {**self._user_json(self.owner), "id": ORGANIZATION_ID, "type": "Organization"},
            "repo": self._repository_json(),
        }

    def _pull_json(self, pull: _Pull, issue: _StoredIssue, *, listed: bool = False) -> dict[str, Any]:
        api = f"{self._api_repo}/pulls/{pull.number}"
        issue_api = f"{self._api_repo}/issues/{pull.number}"
        html = self._pull_html_url(pull.number)
        body: dict[str, Any] = {
            "url": api,
            "id": pull.id,
            "node_id": f"PR_fake{pull.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_api,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self._api_repo}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments",
            "statuses_url": f"{self._api_repo}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self._user_json(self._pull_author(pull)),
            "body": issue.body,
            "labels": [self._label_json(name) for name in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user_json(login) for login in pull.requested_users],
            "requested_teams": [self._team_json(self._teams[slug]) for slug in pull.requested_teams],
            "head": self._branch_json(pull.head, pull.head_sha),
            "base": self._branch_json(pull.base, pull.base_sha),
            "_links": {
                "self": {"href": api},
                "html": {"href": html},
                "issue": {"href": issue_api},
                "comments": {"href": f"{issue_api}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": f"{self._api_repo}/statuses/{pull.head_sha}"},
            },
            "author_association": "NONE",
            "auto_merge": None,
            "draft": pull.draft,
        }
        if listed:
            return body
        open_ = issue.state == "open"
        mergeable = True
        if open_:
            try:
                self._merge_files(pull)
            except ValueError:
                mergeable = False
        head, base = self._commits[pull.head_sha], self._commits[pull.base_sha]
        ancestor = self._merge_base(head, base)
        ahead = [c for c in self._ancestors(head) if ancestor is None or c.sha not in
                 {a.sha for a in self._ancestors(ancestor)}]
        changed = {p for c in ahead for p in c.changed}
        return body | {
            "merged": pull.merged_at is not None,
            "mergeable": mergeable if open_ else None,
            "rebaseable": mergeable if open_ else None,
            "mergeable_state": ("clean" if mergeable else "dirty") if open_ else "unknown",
            "merged_by": self._user_json(pull.merged_by) if pull.merged_by else None,
            "comments": len(issue.comments),
            "review_comments": 0,
            "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": len(ahead),
            "additions": 0,
            "deletions": 0,
            "changed_files": len(changed),
        }

    def _review_json(self, pull: _Pull, review: _Review) -> dict[str, Any]:
        api = f"{self._api_repo}/pulls/{pull.number}"
        html = f"{self._pull_html_url(pull.number)}#pullrequestreview-{review.id}"
        return {
            "id": review.id,
            "node_id": f"PRR_fake{review.id}",
            "user": self._user_json(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": api,
            "author_association": "COLLABORATOR",
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "submitted_at": review.submitted_at,
            "commit_id": review.commit_id,
        }

    # ----------------------------------------------------------------- pull request handlers

    def _head_branch(self, head: str) -> str | None:
        """The branch of ``head`` (``branch`` or ``owner:branch``); None for another owner's."""
        owner, sep, branch = head.rpartition(":")
        if sep and owner.lower() != self.owner.lower():
            return None
        return branch

    def _create_pull(self, req: Request) -> Response:
        body = self._body_dict(req)
        title, head, base, text = body.get("title"), body.get("head"), body.get("base"), body.get("body")
        if not isinstance(head, str) or not head:
            raise _validation_failed("PullRequest", "head")
        if not isinstance(base, str) or not base:
            raise _validation_failed("PullRequest", "base")
        if not isinstance(title, str) or not title.strip():
            raise _validation_failed("PullRequest", "title")
        if text is not None and not isinstance(text, str):
            raise _validation_failed("PullRequest", "body", "invalid")
        if base not in self._branches:
            raise _validation_failed("PullRequest", "base", "invalid")
        branch = self._head_branch(head)
        if branch is None or branch not in self._branches:
            raise _validation_failed("PullRequest", "head", "invalid")
        for other in self._pulls.values():
            other_issue = self._find_issue(str(other.number))
            if other_issue.state == "open" and (other.head, other.base) == (branch, base):
                raise _custom_validation("PullRequest", f"A pull request already exists for {self.owner}:{branch}.")
        head_commit, base_commit = self._commits[self._branches[branch]], self._commits[self._branches[base]]
        if not self._ahead(head_commit, base_commit):
            raise _custom_validation("PullRequest", f"No commits between {base} and {head}")
        issue = self._new_issue(title, text, [], "")
        pull = _Pull(issue.number, issue.id + 50_000_000, branch, base, head_commit.sha, base_commit.sha, "",
                     draft=body.get("draft") is True, maintainer_can_modify=body.get("maintainer_can_modify") is True)
        self._pulls[pull.number] = pull
        self._emit("pull_request", "opened", {"number": pull.number, "pull_request": self._pull_json(pull, issue)},
                   self.login)
        return Response(201, self._pull_json(pull, issue))

    def _list_pulls(self, req: Request) -> Response:
        state = req.params.get("state") or "open"
        if state not in ("open", "closed", "all"):
            raise _validation_failed("PullRequest", "state", "invalid")
        head = req.params.get("head") or ""
        head_branch = self._head_branch(head) if ":" in head else ""  # GitHub ignores a head without owner
        base = req.params.get("base") or None
        listed = []
        for pull in sorted(self._pulls.values(), key=lambda p: p.number,
                           reverse=req.params.get("direction", "desc") != "asc"):
            issue = self._find_issue(str(pull.number))
            self._refresh(pull, issue)
            if state not in ("all", issue.state) or base not in (None, pull.base):
                continue
            if head_branch is None or (head_branch and head_branch != pull.head):
                continue
            listed.append(self._pull_json(pull, issue, listed=True))
        return self._paginate(req, listed)

    def _get_pull(self, req: Request, number: str) -> Response:
        pull, issue = self._find_pull(number)
        self._refresh(pull, issue)
        return Response(200, self._pull_json(pull, issue))

    def _update_pull(self, req: Request, number: str) -> Response:
        pull, issue = self._find_pull(number)
        body = self._body_dict(req)
        title, text, state = self._edited(body, issue, "PullRequest")
        base = body.get("base", pull.base)
        if not isinstance(base, str) or base not in self._branches:
            raise _validation_failed("PullRequest", "base", "invalid")
        if state == "open" and issue.state == "closed":
            if pull.merged_at is not None:
                raise _custom_validation("PullRequest", "state cannot be changed. The pull request has been merged.")
            if pull.head not in self._branches:
                raise _custom_validation("PullRequest", "state cannot be changed. The head branch was deleted.")
        issue.title, issue.body, pull.base = title, text, base
        if isinstance(body.get("maintainer_can_modify"), bool):
            pull.maintainer_can_modify = body["maintainer_can_modify"]
        if state != issue.state:
            self._set_state(pull, issue, state, self.login)
        issue.updated_at = _now()
        self._refresh(pull, issue)
        return Response(200, self._pull_json(pull, issue))

    # ----------------------------------------------------------------- review requests and reviews

    def _request_reviewers(self, req: Request, number: str) -> Response:
        pull, issue = self._find_pull(number)
        body = self._body_dict(req)
        users, teams = body.get("reviewers", []), body.get("team_reviewers", [])
        if "reviewers" not in body and "team_reviewers" not in body:
            raise _invalid_reviewers()
        if not _strings(users) or not _strings(teams):
            raise _invalid_reviewers()
        if self._pull_author(pull) in users:
            raise _GitHubError(422, "Review cannot be requested from pull request author.")
        if any(not self._has_access(u) for u in users) or any(t.lower() not in self._teams for t in teams):
            raise _GitHubError(422, NOT_COLLABORATOR.format(repo=self.full_name))
        added_users = [u for u in dict.fromkeys(users) if u not in pull.requested_users]
        added_teams = [self._teams[t.lower()].slug.lower() for t in dict.fromkeys(teams)
                       if t.lower() not in pull.requested_teams]
        pull.requested_users += added_users
        pull.requested_teams += added_teams
        issue.updated_at = _now()
        for login in added_users:
            self._emit("pull_request", "review_requested",
                       {"number": pull.number, "pull_request": self._pull_json(pull, issue),
                        "requested_reviewer": self._user_json(login)}, self.login)
        for slug in added_teams:
            self._emit("pull_request", "review_requested",
                       {"number": pull.number, "pull_request": self._pull_json(pull, issue),
                        "requested_team": self._team_json(self._teams[slug])}, self.login)
        return Response(201, self._pull_json(pull, issue, listed=True))

    def _remove_reviewers(self, req: Request, number: str) -> Response:
        pull, issue = self._find_pull(number)
        body = self._body_dict(req)
        users, teams = body.get("reviewers", []), body.get("team_reviewers", [])
        if "reviewers" not in body or not _strings(users) or not _strings(teams):
            raise _GitHubError(422, 'Invalid request.\n\n"reviewers" wasn\'t supplied.')
        removed_users = [u for u in pull.requested_users if u in users]
        removed_teams = [t for t in pull.requested_teams if t in {x.lower() for x in teams}]
        pull.requested_users = [u for u in pull.requested_users if u not in removed_users]
        pull.requested_teams = [t for t in pull.requested_teams if t not in removed_teams]
        for login in removed_users:
            self._emit("pull_request", "review_request_removed",
                       {"number": pull.number, "pull_request": self._pull_json(pull, issue),
                        "requested_reviewer": self._user_json(login)}, self.login)
        for slug in removed_teams:
            self._emit("pull_request", "review_request_removed",
                       {"number": pull.number, "pull_request": self._pull_json(pull, issue),
                        "requested_team": self._team_json(self._teams[slug])}, self.login)
        return Response(200, self._pull_json(pull, issue, listed=True))

    def _list_requested_reviewers(self, req: Request, number: str) -> Response:
        pull, _ = self._find_pull(number)
        return Response(200, {"users": [self._user_json(u) for u in pull.requested_users],
                              "teams": [self._team_json(self._teams[t]) for t in pull.requested_teams]})

    def _list_reviews(self, req: Request, number: str) -> Response:
        pull, _ = self._find_pull(number)
        return self._paginate(req, [self._review_json(pull, r) for r in pull.reviews])

    # ----------------------------------------------------------------- teams

    def _find_team(self, slug_or_id: str, by_id: bool = False) -> _Team:
        for team in self._teams.values():
            if (str(team.id) == slug_or_id) if by_id else (team.slug.lower() == slug_or_id.lower()):
                return team
        raise _not_found()

    def _get_team(self, req: Request, org: str, slug: str) -> Response:
        team = self._find_team(slug)
        return Response(200, self._team_json(team) | {
            "members_count": len(team.members), "repos_count": 1,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "organization": self._organization_json(),
        })

    def _list_team_members(self, req: Request, org: str, slug: str) -> Response:
        return self._paginate(req, [self._user_json(m) for m in self._find_team(slug).members])

    def _get_team_by_id(self, req: Request, org_id: str, team_id: str) -> Response:
        if org_id != str(ORGANIZATION_ID):
            raise _not_found()
        return self._get_team(req, self.owner, self._find_team(team_id, by_id=True).slug)

    def _list_team_members_by_id(self, req: Request, org_id: str, team_id: str) -> Response:
        if org_id != str(ORGANIZATION_ID):
            raise _not_found()
        return self._list_team_members(req, self.owner, self._find_team(team_id, by_id=True).slug)

    ROUTES: ClassVar[tuple[Route, ...]] = (
        *IssuesLayer.ROUTES,
        route("POST", _REPO + r"/pulls", _create_pull),
        route("GET", _REPO + r"/pulls", _list_pulls),
        route("GET", _REPO + r"/pulls/(?P<number>\d+)", _get_pull),
        route("PATCH", _REPO + r"/pulls/(?P<number>\d+)", _update_pull),
        route("POST", _REPO + r"/pulls/(?P<number>\d+)/requested_reviewers", _request_reviewers),
        route("GET", _REPO + r"/pulls/(?P<number>\d+)/requested_reviewers", _list_requested_reviewers),
        route("DELETE", _REPO + r"/pulls/(?P<number>\d+)/requested_reviewers", _remove_reviewers),
        route("GET", _REPO + r"/pulls/(?P<number>\d+)/reviews", _list_reviews),
        route("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)", _get_team),
        route("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members", _list_team_members),
        route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)", _get_team_by_id),
        route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)/members", _list_team_members_by_id),
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _invalid_reviewers() -> _GitHubError:
    return _GitHubError(422, 'Invalid request.\n\nNo subschema in "anyOf" matched.\n"reviewers" wasn\'t supplied.')

