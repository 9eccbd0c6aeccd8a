"""Change requests on GitHub: a branch, one commit of the manifest, a pull request, its review
requests and reviews, and the one evidence file read in full (the training summary).

Every write is looked for before it is made, so a write whose answer was lost (a 502 after it
happened, a timeout) is found by the next attempt instead of being made twice: the branch by its
ref, the commit by the file's content on the branch, the pull request by its head branch (open or
not), and a review request is idempotent on GitHub's side. Writes are paced (``pace``) and never
retried inside a call (``READ_RETRY`` retries GETs only); errors go through ``translated_errors``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

import github
from github import GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository

from responder.errors import PermanentError
from responder.integrations.github import SYSTEM, Pace, translated_errors

MAX_REVIEWS = 300  # reviews read per pull request (a change request gets a handful)


@dataclass(frozen=True)
class PullReview:
    id: int
    login: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    submitted_at: datetime | None


@dataclass(frozen=True)
class PullState:
    number: int
    html_url: str
    state: str  # open, closed
    merged: bool
    merged_by: str | None
    reviews: tuple[PullReview, ...] = ()


class PullRequests:
    """The branch, commit, pull request and reviews of change requests, over a PyGithub Repository."""

    def __init__(self, repo: Repository, *, owner: str, base: str, pace: Pace) -> None:
        self._repo = repo
        self._owner = owner
        self.base = base
        self._pace = pace

    def read_file(self, path: str, ref: str) -> tuple[str, str] | None:
        """``(text, blob sha)`` of ``path`` on ``ref``; None when it has no such file."""
        with translated_errors(f"read {path}@{ref}", self._repo):
            try:
                content = self._repo.get_contents(path, ref=ref)
            except github.UnknownObjectException:
                return None
        if isinstance(content, list):
            raise PermanentError(f"{path} is a directory, expected a file", system=SYSTEM)
        return base64.b64decode(content.content).decode("utf-8"), content.sha

    def ensure_branch(self, branch: str) -> bool:
        """``branch`` exists, made from the base's head if it did not; True when made now."""
        with translated_errors(f"create branch {branch}", self._repo):
            try:
                self._repo.get_git_ref(f"heads/{branch}").object.sha  # noqa: B018 (a lazy client reads it only now)
                return False
            except github.UnknownObjectException:
                pass
            head = self._repo.get_git_ref(f"heads/{self.base}").object.sha
            self._pace()
            try:
                self._repo.create_git_ref(ref=f"refs/heads/{branch}", sha=head)
            except GithubException as exc:
                if exc.status == 422 and "already exists" in str(exc.data).lower():
                    return False  # made by an attempt whose answer was lost
                raise
        return True

    def commit_file(self, path: str, branch: str, text: str, message: str) -> bool:
        """``path`` on ``branch`` holds ``text``, committed now unless it already did; True when committed."""
        current = self.read_file(path, branch)
        if current is None:
            raise PermanentError(f"{path} is not on branch {branch}", system=SYSTEM)
        if current[0] == text:
            return False
        with translated_errors(f"commit {path} on {branch}", self._repo):
            self._pace()
            self._repo.update_file(path, message, text.encode("utf-8"), current[1], branch=branch)
        return True

    def find_pull(self, branch: str) -> PullState | None:
        """The pull request from ``branch`` into the base, open or not (the newest)."""
        with translated_errors(f"find the pull request of {branch}", self._repo):
            found: Iterable[PullRequest] = islice(
                self._repo.get_pulls(state="all", head=f"{self._owner}:{branch}", base=self.base), 10
            )
            pulls = sorted(found, key=lambda p: p.number, reverse=True)
            return self._state(pulls[0], reviews=False) if pulls else None

    def open_pull(self, branch: str, title: str, body: str) -> PullState:
        """The pull request from ``branch``: the one there is, else a new one."""
        existing = self.find_pull(branch)
        if existing is not None:
            return existing
        with translated_errors(f"open a pull request from {branch}", self._repo):
            self._pace()
            try:
                pull = self._repo.create_pull(base=self.base, head=branch, title=title, body=body)
            except GithubException as exc:
                if exc.status == 422 and "already exists" in str(exc.data).lower():
                    found = self.find_pull(branch)
                    if found is not None:
                        return found
                raise
            return self._state(pull, reviews=False)

    def request_reviews(self, number: int, users: list[str], teams: list[str]) -> None:
        """Ask ``users`` and ``teams`` (slugs) to review; asking again is harmless on GitHub."""
        if not users and not teams:
            return
        with translated_errors(f"request reviews on #{number}", self._repo):
            pull = self._repo.get_pull(number)
            self._pace()
            pull.create_review_request(reviewers=users, team_reviewers=teams)

    def pull(self, number: int) -> PullState:
        """Pull request ``number`` now, with its reviews."""
        with translated_errors(f"read pull request #{number}", self._repo):
            return self._state(self._repo.get_pull(number), reviews=True)

    def team_members(self, org: str, slug: str) -> list[str]:
        """The logins of team ``org/slug``."""
        with translated_errors(f"read team {org}/{slug}", self._repo):
            _, data = self._repo.requester.requestJsonAndCheck(
                "GET", f"/orgs/{org}/teams/{slug}/members", parameters={"per_page": 100}
            )
        return [str(m["login"]) for m in data if isinstance(m, dict) and "login" in m] if isinstance(data, list) else []

    @staticmethod
    def _state(pull: PullRequest, *, reviews: bool) -> PullState:
        read: tuple[PullReview, ...] = ()
        if reviews:
            read = tuple(
                PullReview(r.id, r.user.login if r.user else "", r.state, r.submitted_at)
                for r in islice(pull.get_reviews(), MAX_REVIEWS)
            )
        merged_by = pull.merged_by.login if pull.merged and pull.merged_by else None
        return PullState(pull.number, pull.html_url, pull.state, bool(pull.merged), merged_by, read)
