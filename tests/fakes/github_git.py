"""The repository's git data in :class:`tests.fakes.github.FakeGitHub`: commits, branches, refs, contents.

Every commit holds the whole tree (path -> bytes, stored exactly as given), its parents and the
paths it changed; every branch is a name pointing at a head commit. Tests commit with
:meth:`GitLayer.set_file` / :meth:`GitLayer.set_manifest` (on ``main`` unless told otherwise),
the API with ``PUT .../contents/{path}``. A ref in a read (``?ref=`` of the contents,
``?sha=`` of the commits) is a branch name, ``refs/heads/<branch>`` or a commit sha (7+ hex
digits of it). The commits list follows every parent, newest first, and filters by ``path``
as ``git log -- path`` does (a merge commit that took a file from the branch is not listed for
it; the branch's commit is).

Not modelled: tags, trees and blobs endpoints, directories in the contents API, ``push`` and
``create`` webhook events, force pushes.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar

from tests.fakes.github_common import (
    _REPO,
    DEFAULT_BRANCH,
    RAW_BASE,
    _base64_lines,
    _blob_sha,
    _GitHubError,
    _invalid_request,
    _not_found,
    _now,
    _sha1,
)
from tests.fakes.github_hooks import WebhooksLayer
from tests.fakes.server import Request, Response, Route, route

MANIFEST_PATH = "artifacts/ml/model-manifest.json"


@dataclass(frozen=True)
class _Commit:
    sha: str
    seq: int  # creation order (newest commits list first)
    tree: dict[str, bytes]  # every file at this commit
    changed: tuple[str, ...]  # paths this commit changed, as `git log -- path` sees it
    message: str
    date: str
    parents: tuple[str, ...]
    author: str  # login


class GitLayer(WebhooksLayer):
    """Commits, branches, git refs, the contents API (reads and writes) and the commits list."""

    committer = "ml-platform-bot"  # author of commits made with set_file()

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._commits: dict[str, _Commit] = {}
            self._branches: dict[str, str] = {}  # name -> head commit sha

    # ----------------------------------------------------------------- test API

    def set_file(
        self, path: str, content: bytes | str, message: str = "update", *, branch: str = DEFAULT_BRANCH
    ) -> str:
        """Commit a new revision of ``path`` on ``branch`` (default: the default branch, created by the
        first commit); returns the commit sha. KeyError for another branch that does not exist."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        with self._lock:
            return self._commit(branch, {path.strip("/"): data}, message, self.committer).sha

    def set_manifest(self, manifest: dict[str, Any], *, branch: str = DEFAULT_BRANCH) -> str:
        """Commit a new revision of the model manifest; returns the commit sha."""
        return self.set_file(MANIFEST_PATH, json.dumps(manifest, indent=2), "update model manifest", branch=branch)

    def create_branch(self, name: str, from_ref: str = DEFAULT_BRANCH) -> str:
        """A new branch at ``from_ref`` (a branch or a commit sha), as someone pushing it; returns its head sha."""
        with self._lock:
            if name in self._branches:
                raise ValueError(f"branch {name!r} exists")
            head = self._resolve(from_ref)
            self._branches[name] = head.sha
            return head.sha

    def delete_branch(self, name: str) -> None:
        with self._lock:
            del self._branches[name]

    def file_at(self, path: str, ref: str = DEFAULT_BRANCH) -> bytes:
        """The bytes of ``path`` at ``ref`` (a branch or a commit sha); KeyError if it is not there."""
        with self._lock:
            try:
                commit = self._resolve(ref)
            except _GitHubError:
                raise KeyError(ref) from None
            return commit.tree[path.strip("/")]

    @property
    def branches(self) -> dict[str, str]:
        """Branch name -> head commit sha."""
        with self._lock:
            return dict(self._branches)

    # ----------------------------------------------------------------- the model

    def _commit(
        self,
        branch: str,
        files: dict[str, bytes],
        message: str,
        author: str,
        *,
        extra_parents: tuple[str, ...] = (),
        changed: tuple[str, ...] | None = None,
    ) -> _Commit:
        """A new commit on ``branch`` writing ``files``; the branch moves to it."""
        if branch not in self._branches and (self._branches or branch != DEFAULT_BRANCH):
            raise KeyError(branch)
        parent = self._commits[self._branches[branch]] if branch in self._branches else None
        tree = {**(parent.tree if parent else {}), **files}
        parents = ((parent.sha,) if parent else ()) + extra_parents
        seq = len(self._commits)
        seed = f"{seq}\0{','.join(parents)}\0{sorted(files)}\0{message}\0".encode() + b"".join(files.values())
        commit = _Commit(
            _sha1(seed), seq, tree, tuple(files) if changed is None else changed, message, _now(), parents, author
        )
        self._commits[commit.sha] = commit
        self._branches[branch] = commit.sha
        return commit

    def _resolve(self, ref: str | None) -> _Commit:
        """The commit ``ref`` names: None (the default branch), a branch, ``refs/heads/<branch>`` or a sha."""
        if not self._commits:
            raise _GitHubError(409, "Git Repository is empty.")
        name = (ref or DEFAULT_BRANCH).removeprefix("refs/heads/")
        if name in self._branches:
            return self._commits[self._branches[name]]
        if ref is not None and len(ref) >= 7:
            for commit in sorted(self._commits.values(), key=lambda c: c.seq):
                if commit.sha.startswith(ref):
                    return commit
        raise _GitHubError(404, f"No commit found for SHA: {ref}")

    def _ancestors(self, head: _Commit) -> list[_Commit]:
        """``head`` and every commit reachable from it, newest first."""
        seen: dict[str, _Commit] = {}
        todo = [head.sha]
        while todo:
            sha = todo.pop()
            if sha not in seen:
                seen[sha] = self._commits[sha]
                todo.extend(seen[sha].parents)
        return sorted(seen.values(), key=lambda c: c.seq, reverse=True)

    def _pushed_at(self) -> str:
        newest = max(self._commits.values(), key=lambda c: c.seq, default=None)
        return newest.date if newest else super()._pushed_at()

    # ----------------------------------------------------------------- JSON

    def _person(self, commit: _Commit) -> dict[str, Any]:
        if commit.author == self.committer:
            return {"name": "ML Platform Bot", "email": "ml-platform-bot@example.com", "date": commit.date}
        return {"name": commit.author, "email": f"{commit.author}@users.noreply.github.fake", "date": commit.date}

    def _parents_json(self, commit: _Commit) -> list[dict[str, Any]]:
        return [
            {"sha": sha, "url": f"{self._api_repo}/commits/{sha}", "html_url": f"{self._html_repo}/commit/{sha}"}
            for sha in commit.parents
        ]

    def _git_commit_json(self, commit: _Commit) -> dict[str, Any]:
        """The git-data shape of a commit (what a contents write answers in ``commit``)."""
        tree_sha = _sha1(commit.sha.encode())
        api = self._api_repo
        return {
            "sha": commit.sha,
            "node_id": f"C_fake{commit.sha[:12]}",
            "url": f"{api}/git/commits/{commit.sha}",
            "html_url": f"{self._html_repo}/commit/{commit.sha}",
            "author": self._person(commit),
            "committer": self._person(commit),
            "message": commit.message,
            "tree": {"sha": tree_sha, "url": f"{api}/git/trees/{tree_sha}"},
            "parents": self._parents_json(commit),
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _commit_json(self, commit: _Commit) -> dict[str, Any]:
        person = self._person(commit)
        api = self._api_repo
        tree_sha = _sha1(commit.sha.encode())
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
            "author": self._user_json(commit.author),
            "committer": self._user_json(commit.author),
            "parents": self._parents_json(commit),
        }

    def _content_json(self, path: str, data: bytes, ref: str, *, with_content: bool = True) -> dict[str, Any]:
        blob_sha = _blob_sha(data)
        api_url = f"{self._api_repo}/contents/{urllib.parse.quote(path)}?ref={urllib.parse.quote(ref)}"
        git_url = f"{self._api_repo}/git/blobs/{blob_sha}"
        html_url = f"{self._html_repo}/blob/{ref}/{path}"
        body: dict[str, Any] = {"type": "file"}
        if with_content:
            body |= {"encoding": "base64", "content": _base64_lines(data)}
        return {
            **body,
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob_sha,
            "url": api_url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": f"{RAW_BASE}/{self.owner}/{self.repo}/{ref}/{path}",
            "_links": {"self": api_url, "git": git_url, "html": html_url},
        }

    def _ref_json(self, branch: str) -> dict[str, Any]:
        sha = self._branches[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_fake{_sha1(branch.encode())[:12]}",
            "url": f"{self._api_repo}/git/refs/heads/{urllib.parse.quote(branch)}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._api_repo}/git/commits/{sha}"},
        }

    # ----------------------------------------------------------------- contents and commits

    def _get_contents(self, req: Request, path: str) -> Response:
        path = path.strip("/")
        ref = req.params.get("ref") or None
        try:
            commit = self._resolve(ref)
        except _GitHubError as error:
            if error.response.status == 409:
                raise _not_found("This repository is empty.") from None
            raise _not_found(f"No commit found for the ref {ref}") from None
        if path not in commit.tree:
            raise _not_found()
        return Response(200, self._content_json(path, commit.tree[path], ref or DEFAULT_BRANCH))

    def _put_contents(self, req: Request, path: str) -> Response:
        """Create (201) or update (200) a file on a branch: one commit by the token's identity."""
        path = path.strip("/")
        body = self._body_dict(req)
        message, content, sha = body.get("message"), body.get("content"), body.get("sha")
        if not isinstance(message, str):
            raise _invalid_request("message")
        if not isinstance(content, str):
            raise _invalid_request("content")
        branch = body.get("branch") or DEFAULT_BRANCH
        if not isinstance(branch, str):
            raise _GitHubError(422, "Invalid request.\n\nFor 'properties/branch', is not a string.")
        branch = branch.removeprefix("refs/heads/")
        if branch not in self._branches and (self._branches or branch != DEFAULT_BRANCH):
            raise _not_found(f"Branch {branch} not found")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise _GitHubError(422, "content is not valid Base64") from None
        current = self._commits[self._branches[branch]].tree.get(path) if branch in self._branches else None
        if current is not None:
            if sha is None:
                raise _invalid_request("sha")
            if sha != _blob_sha(current):
                raise _GitHubError(409, f"{path} does not match {sha}")
        commit = self._commit(branch, {path: data}, message, self.login)
        answer = {"content": self._content_json(path, data, branch, with_content=False),
                  "commit": self._git_commit_json(commit)}
        return Response(201 if current is None else 200, answer)

    def _list_commits(self, req: Request) -> Response:
        head = self._resolve(req.params.get("sha") or None)
        path = (req.params.get("path") or "").strip("/")
        history = [
            self._commit_json(commit)
            for commit in self._ancestors(head)
            if not path or any(p == path or p.startswith(path + "/") for p in commit.changed)
        ]
        return self._paginate(req, history)

    # ----------------------------------------------------------------- branches and refs

    def _get_branch(self, req: Request, branch: str) -> Response:
        if branch not in self._branches:
            raise _not_found("Branch not found")
        url = f"{self._api_repo}/branches/{urllib.parse.quote(branch)}"
        return Response(
            200,
            {
                "name": branch,
                "commit": self._commit_json(self._commits[self._branches[branch]]),
                "_links": {"self": url, "html": f"{self._html_repo}/tree/{branch}"},
                "protected": False,
                "protection": {"enabled": False, "required_status_checks": {"enforcement_level": "off",
                                                                            "contexts": [], "checks": []}},
                "protection_url": f"{url}/protection",
            },
        )

    def _get_ref(self, req: Request, ref: str) -> Response:
        """A branch's ref, named ``heads/<branch>`` (the fake keeps no tags)."""
        if not ref.startswith("heads/") or ref.removeprefix("heads/") not in self._branches:
            raise _not_found()
        return Response(200, self._ref_json(ref.removeprefix("heads/")))

    def _create_ref(self, req: Request) -> Response:
        body = self._body_dict(req)
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str):
            raise _invalid_request("ref")
        if not isinstance(sha, str):
            raise _invalid_request("sha")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise _GitHubError(422, f"{ref} is not a valid ref name.")
        if not ref.startswith("refs/heads/"):
            raise _GitHubError(422, "Reference update failed")  # the fake keeps branches only
        commit = self._commits.get(sha)
        if commit is None:
            raise _GitHubError(422, "Object does not exist")
        branch = ref.removeprefix("refs/heads/")
        if branch in self._branches:
            raise _GitHubError(422, "Reference already exists")
        self._branches[branch] = commit.sha
        return Response(201, self._ref_json(branch))

    def _delete_ref(self, req: Request, ref: str) -> Response:
        branch = ref.removeprefix("heads/")
        if not ref.startswith("heads/") or branch not in self._branches:
            raise _GitHubError(422, "Reference does not exist")
        del self._branches[branch]
        return Response(204)

    ROUTES: ClassVar[tuple[Route, ...]] = (
        *WebhooksLayer.ROUTES,
        route("GET", _REPO + r"/contents/(?P<path>.+)", _get_contents),
        route("PUT", _REPO + r"/contents/(?P<path>.+)", _put_contents),
        route("GET", _REPO + r"/commits", _list_commits),
        route("GET", _REPO + r"/branches/(?P<branch>.+)", _get_branch),
        route("GET", _REPO + r"/git/ref/(?P<ref>.+)", _get_ref),
        route("GET", _REPO + r"/git/refs/(?P<ref>.+)", _get_ref),
        route("DELETE", _REPO + r"/git/refs/(?P<ref>.+)", _delete_ref),
        route("POST", _REPO + r"/git/refs", _create_ref),
    )

