"""Drive the change-request part of tests/fakes/github.py (branches, contents writes, pull requests,
review requests, reviews, teams) with the real PyGithub client over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import github
import pytest

from tests.fakes.github import MANIFEST_PATH, FakeGitHub

MANIFEST = b'{\n  "model_id": "churn-xgb",\n  "model_version": "41",\n  "note": "caf\xc3\xa9 \\u00e9"\n}\n'
BRANCH = "responder/churn-xgb-42"


def make_client(fake: FakeGitHub) -> github.Github:
    return github.Github(
        base_url=fake.url,
        auth=github.Auth.Token(fake.token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.set_file(MANIFEST_PATH, MANIFEST, "add manifest")
        server.set_file("README.md", "hello")
        yield server


@pytest.fixture
def repo(fake: FakeGitHub) -> Any:
    return make_client(fake).get_repo(fake.full_name)


def open_change(fake: FakeGitHub, repo: Any, branch: str = BRANCH) -> Any:
    """A branch from main with one manifest commit, and a pull request for it."""
    main = repo.get_git_ref("heads/main")
    repo.create_git_ref(f"refs/heads/{branch}", main.object.sha)
    current = repo.get_contents(MANIFEST_PATH, ref=branch)
    changed = current.decoded_content.replace(b'"41"', b'"42"')
    repo.update_file(MANIFEST_PATH, "churn-xgb: 41 -> 42", changed, current.sha, branch=branch)
    return repo.create_pull(base="main", head=f"{fake.owner}:{branch}", title="churn-xgb 42", body="why")


# --------------------------------------------------------------------------- branches and contents


def test_get_branch_and_git_ref_show_the_head_commit(fake: FakeGitHub, repo: Any) -> None:
    """GET branches/{b} and git/ref/heads/{b} name the branch's head commit."""
    head = fake.branches["main"]
    assert repo.get_branch("main").commit.sha == head
    ref = repo.get_git_ref("heads/main")
    assert (ref.ref, ref.object.sha, ref.object.type) == ("refs/heads/main", head, "commit")


def test_unknown_branch_is_not_found(repo: Any) -> None:
    with pytest.raises(github.UnknownObjectException) as raised:
        repo.get_branch("nope")
    assert raised.value.data["message"] == "Branch not found"


def test_creating_an_existing_ref_is_422(fake: FakeGitHub, repo: Any) -> None:
    with pytest.raises(github.GithubException) as raised:
        repo.create_git_ref("refs/heads/main", fake.branches["main"])
    assert (raised.value.status, raised.value.data["message"]) == (422, "Reference already exists")


def test_committing_a_manifest_change_on_a_new_branch_keeps_every_other_byte(fake: FakeGitHub, repo: Any) -> None:
    """A branch made from main gets one commit; main is untouched and only the edited bytes differ."""
    main_head = fake.branches["main"]
    repo.create_git_ref(f"refs/heads/{BRANCH}", main_head)
    current = repo.get_contents(MANIFEST_PATH, ref=BRANCH)
    changed = current.decoded_content.replace(b'"41"', b'"42"')

    result = repo.update_file(MANIFEST_PATH, "bump", changed, current.sha, branch=BRANCH)

    assert fake.file_at(MANIFEST_PATH, BRANCH) == MANIFEST.replace(b'"41"', b'"42"')
    assert fake.file_at(MANIFEST_PATH, "main") == MANIFEST
    assert fake.branches["main"] == main_head
    assert fake.branches[BRANCH] == result["commit"].sha
    assert result["content"].sha == repo.get_contents(MANIFEST_PATH, ref=BRANCH).sha
    assert fake.file_at("README.md", BRANCH) == b"hello"
    [newest, *_] = repo.get_commits(sha=BRANCH, path=MANIFEST_PATH)
    assert (newest.sha, newest.commit.message) == (result["commit"].sha, "bump")


def test_updating_with_a_stale_sha_is_409(fake: FakeGitHub, repo: Any) -> None:
    """The file changed since it was read: GitHub's 409 "<path> does not match <sha>"; nothing is written."""
    stale = repo.get_contents(MANIFEST_PATH).sha
    fake.set_manifest({"model_version": "43"})

    with pytest.raises(github.GithubException) as raised:
        repo.update_file(MANIFEST_PATH, "bump", b"{}", stale)
    assert raised.value.status == 409
    assert raised.value.data["message"] == f"{MANIFEST_PATH} does not match {stale}"
    assert json.loads(fake.file_at(MANIFEST_PATH)) == {"model_version": "43"}


def test_updating_an_existing_file_without_sha_is_422(repo: Any) -> None:
    with pytest.raises(github.GithubException) as raised:
        repo.create_file(MANIFEST_PATH, "overwrite", b"{}")
    assert (raised.value.status, raised.value.data["message"]) == (422, 'Invalid request.\n\n"sha" wasn\'t supplied.')


def test_creating_a_file_answers_201_and_on_an_unknown_branch_404(fake: FakeGitHub, repo: Any) -> None:
    created = repo.create_file("docs/new.md", "add", b"new\x00bytes")
    assert created["content"].path == "docs/new.md"
    assert fake.file_at("docs/new.md") == b"new\x00bytes"
    assert fake.requests[-1].status == 201
    with pytest.raises(github.UnknownObjectException):
        repo.create_file("docs/other.md", "add", b"x", branch="nope")


# --------------------------------------------------------------------------- pull requests


def test_a_pull_request_is_opened_listed_and_read(fake: FakeGitHub, repo: Any) -> None:
    """create_pull answers 201 with GitHub's fields; it shares the issue numbers and lists by owner:branch."""
    repo.create_issue("an incident")
    pull = open_change(fake, repo)

    assert pull.number == 2
    assert (pull.state, pull.title, pull.body, pull.draft, pull.merged) == ("open", "churn-xgb 42", "why", False, False)
    assert (pull.head.ref, pull.head.label, pull.base.ref) == (BRANCH, f"acme:{BRANCH}", "main")
    assert pull.head.sha == fake.branches[BRANCH]
    assert pull.user.login == fake.login
    assert pull.html_url == "http://github.fake/acme/ml-platform/pull/2"
    listed = repo.get_pulls(state="open", head=f"acme:{BRANCH}", base="main")
    assert [p.number for p in listed] == [2]
    assert list(repo.get_pulls(state="open", head="acme:other")) == []
    assert repo.get_pull(2).mergeable is True
    assert repo.get_issue(2).pull_request is not None


def test_a_duplicate_pull_request_is_422(fake: FakeGitHub, repo: Any) -> None:
    open_change(fake, repo)
    with pytest.raises(github.GithubException) as raised:
        repo.create_pull(base="main", head=f"acme:{BRANCH}", title="again")
    assert raised.value.status == 422
    assert raised.value.data["errors"] == [
        {"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for acme:{BRANCH}."}
    ]


def test_a_head_without_new_commits_or_unknown_is_422(fake: FakeGitHub, repo: Any) -> None:
    repo.create_git_ref("refs/heads/empty", fake.branches["main"])
    with pytest.raises(github.GithubException) as raised:
        repo.create_pull(base="main", head="empty", title="nothing")
    assert raised.value.data["errors"][0]["message"] == "No commits between main and empty"
    with pytest.raises(github.GithubException) as unknown:
        repo.create_pull(base="main", head="missing", title="nothing")
    assert unknown.value.data["errors"] == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]


def test_closing_through_the_api(fake: FakeGitHub, repo: Any) -> None:
    pull = open_change(fake, repo)
    pull.edit(state="closed")
    assert pull.state == "closed"
    [snapshot] = fake.pulls
    assert (snapshot.state, snapshot.merged) == ("closed", False)
    assert list(repo.get_pulls(state="open")) == []


def test_commenting_on_a_pull_request_uses_the_issue_comments(fake: FakeGitHub, repo: Any) -> None:
    pull = open_change(fake, repo)
    pull.create_issue_comment("plan attached")
    fake.comment_as(pull.number, "alice", "looks fine")
    assert [c.body for c in pull.get_issue_comments()] == ["plan attached", "looks fine"]
    assert fake.pulls[0].comments == ["plan attached", "looks fine"]
    assert fake.issues == []  # the snapshot of issues leaves pull requests out


# --------------------------------------------------------------------------- reviews


def test_review_requests_for_users_and_teams(fake: FakeGitHub, repo: Any) -> None:
    fake.add_user("alice")
    fake.add_team("ml-reviewers", ["bob", "carol"], name="ML reviewers")
    pull = open_change(fake, repo)

    pull.create_review_request(reviewers=["alice"], team_reviewers=["ml-reviewers"])

    users, teams = pull.get_review_requests()
    assert [u.login for u in users] == ["alice"]
    assert [(t.slug, t.name) for t in teams] == [("ml-reviewers", "ML reviewers")]
    assert (fake.pulls[0].requested_reviewers, fake.pulls[0].requested_teams) == (["alice"], ["ml-reviewers"])


def test_team_members_are_read_by_slug(fake: FakeGitHub) -> None:
    fake.add_team("ml-reviewers", ["bob", "carol"])
    team = make_client(fake).get_organization("acme").get_team_by_slug("ml-reviewers")
    assert [m.login for m in team.get_members()] == ["bob", "carol"]


def test_an_unknown_user_review_request_is_422(fake: FakeGitHub, repo: Any) -> None:
    pull = open_change(fake, repo)
    with pytest.raises(github.GithubException) as raised:
        pull.create_review_request(reviewers=["mallory"])
    assert raised.value.status == 422
    assert raised.value.data["message"].startswith("Reviews may only be requested from collaborators.")
    with pytest.raises(github.GithubException) as team:
        pull.create_review_request(team_reviewers=["no-such-team"])
    assert team.value.status == 422


def test_the_author_cannot_be_asked_for_a_review(fake: FakeGitHub, repo: Any) -> None:
    pull = open_change(fake, repo)
    with pytest.raises(github.GithubException) as raised:
        pull.create_review_request(reviewers=[fake.login])
    assert raised.value.data["message"] == "Review cannot be requested from pull request author."


def test_reviews_are_listed_upper_case_and_a_review_removes_its_request(fake: FakeGitHub, repo: Any) -> None:
    fake.add_user("alice")
    fake.add_user("bob")
    pull = open_change(fake, repo)
    pull.create_review_request(reviewers=["alice", "bob"])

    fake.submit_review(pull.number, "alice", "CHANGES_REQUESTED", "pin the version")
    fake.submit_review(pull.number, "bob", "APPROVED")

    reviews = list(pull.get_reviews())
    assert [(r.user.login, r.state, r.body) for r in reviews] == [
        ("alice", "CHANGES_REQUESTED", "pin the version"),
        ("bob", "APPROVED", ""),
    ]
    assert reviews[0].commit_id == fake.branches[BRANCH]
    assert [u.login for u in pull.get_review_requests()[0]] == []


def test_merging_puts_the_change_on_main(fake: FakeGitHub, repo: Any) -> None:
    pull = open_change(fake, repo)
    merge_sha = fake.merge_pull(pull.number, "alice")

    merged = repo.get_pull(pull.number)
    assert (merged.state, merged.merged, merged.merged_by.login, merged.merge_commit_sha) == (
        "closed", True, "alice", merge_sha,
    )
    assert fake.file_at(MANIFEST_PATH, "main") == MANIFEST.replace(b'"41"', b'"42"')
    history = [c.commit.message for c in repo.get_commits(path=MANIFEST_PATH)]
    assert history == ["churn-xgb: 41 -> 42", "add manifest"]
