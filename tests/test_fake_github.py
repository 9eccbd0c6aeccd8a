"""Drive tests/fakes/github.py with the real PyGithub client over loopback HTTP.

These tests pin down that the fake answers the way GitHub does for the calls responder
makes, so that tests built on the fake exercise PyGithub's real request/response handling.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import github
import pytest
import requests

from tests.fakes.github import MANIFEST_PATH, FakeGitHub

GOVERNANCE = "model-governance.yml"
INPUTS = {"MODEL_ID": "churn-xgb", "MODEL_VERSION": "42", "REASON": "drift alert"}


def make_client(fake: FakeGitHub, **options: Any) -> github.Github:
    """A real PyGithub client aimed at the fake; no retries or throttling unless asked for."""
    options.setdefault("retry", None)
    # PyGithub sleeps 0.25 s between requests and 1 s between writes by default.
    options.setdefault("seconds_between_requests", 0)
    options.setdefault("seconds_between_writes", 0)
    return github.Github(base_url=fake.url, auth=github.Auth.Token(fake.token), **options)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def gh(fake: FakeGitHub) -> github.Github:
    return make_client(fake)


@pytest.fixture
def repo(gh: github.Github, fake: FakeGitHub) -> Any:
    return gh.get_repo(fake.full_name)


def paths(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# --------------------------------------------------------------------------- repository


def test_eager_get_repo_fetches_the_repository(fake: FakeGitHub, gh: github.Github) -> None:
    """An eager client fetches the repository at once and sees GitHub's repository fields."""
    repo = gh.get_repo(fake.full_name)

    assert paths(fake) == [("GET", "/repos/acme/ml-platform")]
    assert (repo.full_name, repo.name, repo.owner.login) == ("acme/ml-platform", "ml-platform", "acme")
    assert repo.default_branch == "main"
    assert repo.url == f"{fake.url}/repos/acme/ml-platform"
    assert repo.html_url == "http://github.fake/acme/ml-platform"


def test_lazy_get_repo_defers_the_request_until_an_attribute_is_read(fake: FakeGitHub) -> None:
    """A lazy client makes no request for get_repo and completes the object on first attribute access."""
    repo = make_client(fake, lazy=True).get_repo(fake.full_name)
    assert fake.requests == []

    assert repo.default_branch == "main"
    assert paths(fake) == [("GET", "/repos/acme/ml-platform")]


def test_other_repository_is_not_found(fake: FakeGitHub, gh: github.Github) -> None:
    """Any owner/repo other than the faked one answers 404 Not Found."""
    with pytest.raises(github.UnknownObjectException):
        gh.get_repo("acme/other-repo")


# --------------------------------------------------------------------------- actions variables


def test_variable_create_get_edit(fake: FakeGitHub, repo: Any) -> None:
    """A variable can be created, read back lazily by name and edited, like on GitHub."""
    created = repo.create_variable("MODEL_FREEZE", "false")
    assert created.value == "false"

    fetched = repo.get_variable("MODEL_FREEZE")
    assert (fetched.name, fetched.value) == ("MODEL_FREEZE", "false")
    assert fetched.updated_at.tzinfo is not None

    assert fetched.edit("true") is True
    assert fake.variables == {"MODEL_FREEZE": "true"}
    assert repo.get_variable("MODEL_FREEZE").value == "true"
    assert ("PATCH", "/repos/acme/ml-platform/actions/variables/MODEL_FREEZE") in paths(fake)


def test_unknown_variable_raises_unknown_object(repo: Any) -> None:
    """Reading a variable that does not exist raises UnknownObjectException (404)."""
    with pytest.raises(github.UnknownObjectException):
        _ = repo.get_variable("NOT_THERE").value


def test_creating_an_existing_variable_conflicts(repo: Any) -> None:
    """Creating a variable whose name is taken answers GitHub's 409 "Already exists", a plain GithubException."""
    repo.create_variable("MODEL_FREEZE", "false")

    with pytest.raises(github.GithubException) as raised:
        repo.create_variable("MODEL_FREEZE", "true")
    assert type(raised.value) is github.GithubException
    assert (raised.value.status, raised.value.message) == (409, "Already exists - Variable already exists")
    assert raised.value.data == {
        "message": "Already exists - Variable already exists",
        "documentation_url": "https://docs.github.com/rest/actions/variables#create-a-repository-variable",
        "status": "409",
    }


def test_variables_are_listed(repo: Any) -> None:
    """The variables list endpoint returns every variable with its value."""
    repo.create_variable("B_VAR", "2")
    repo.create_variable("A_VAR", "1")

    assert [(v.name, v.value) for v in repo.get_variables()] == [("A_VAR", "1"), ("B_VAR", "2")]


def test_variable_delete(fake: FakeGitHub, repo: Any) -> None:
    """Deleting a variable answers 204 and removes it."""
    repo.create_variable("MODEL_FREEZE", "false")

    assert repo.delete_variable("MODEL_FREEZE") is True
    assert fake.variables == {}


# --------------------------------------------------------------------------- workflows


def test_dispatch_with_run_details_returns_run_and_records_inputs(fake: FakeGitHub, repo: Any) -> None:
    """A dispatch asking for run details returns a WorkflowRun with html_url and is recorded verbatim."""
    workflow = repo.get_workflow(GOVERNANCE)
    assert workflow.path == ".github/workflows/model-governance.yml"

    run = workflow.create_dispatch("main", INPUTS, throw=True, return_run_details=True)

    [dispatch] = fake.dispatches
    assert (dispatch.workflow, dispatch.ref, dispatch.inputs) == (GOVERNANCE, "main", INPUTS)
    assert run.id == dispatch.run_id
    assert run.html_url == dispatch.html_url == f"http://github.fake/acme/ml-platform/actions/runs/{run.id}"
    assert run.url == f"{fake.url}/repos/acme/ml-platform/actions/runs/{run.id}"


def test_dispatch_without_run_details_answers_204(fake: FakeGitHub, repo: Any) -> None:
    """A plain dispatch answers 204 with no body, which PyGithub reports as True."""
    assert repo.get_workflow(GOVERNANCE).create_dispatch("main", INPUTS) is True
    assert [r.status for r in fake.requests][-1] == 204
    assert len(fake.dispatches) == 1


def test_ghes_ignoring_return_run_details_answers_204(fake: FakeGitHub, repo: Any) -> None:
    """In "ignored" mode (a GHES that does not know the field) a dispatch asking for run details answers 204."""
    fake.run_details = "ignored"
    assert repo.get_workflow(GOVERNANCE).create_dispatch("main", INPUTS, throw=True, return_run_details=True) is True
    assert [r.status for r in fake.requests][-1] == 204
    assert len(fake.dispatches) == 1


def test_ghes_rejecting_return_run_details_answers_422_and_dispatches_nothing(fake: FakeGitHub, repo: Any) -> None:
    """In "rejected" mode the field is refused with GitHub's 422 for an unknown key; without it the dispatch works."""
    fake.run_details = "rejected"
    workflow = repo.get_workflow(GOVERNANCE)
    with pytest.raises(github.GithubException) as raised:
        workflow.create_dispatch("main", INPUTS, throw=True, return_run_details=True)
    assert raised.value.status == 422
    assert raised.value.data["message"] == 'Invalid request.\n\n"return_run_details" is not a permitted key.'
    assert fake.dispatches == []
    assert workflow.create_dispatch("main", INPUTS, throw=True) is True


def test_a_dispatched_run_is_listed_after_the_list_lag() -> None:
    """The runs list shows a dispatched run only list_lag_seconds after the dispatch, as GitHub does."""
    with FakeGitHub(list_lag_seconds=0.5) as lagging:
        workflow = make_client(lagging).get_repo(lagging.full_name).get_workflow(GOVERNANCE)
        workflow.create_dispatch("main", INPUTS, throw=True)
        assert [] == list(workflow.get_runs(event="workflow_dispatch"))
        time.sleep(0.6)
        [run] = workflow.get_runs(event="workflow_dispatch")
        assert run.id == lagging.dispatches[0].run_id


def test_a_dispatched_run_is_titled_from_the_run_name() -> None:
    """display_title renders the run-name convention; the run has its workflow's name and a created_at in seconds."""
    with FakeGitHub(list_lag_seconds=0) as fake:
        workflow = make_client(fake).get_repo(fake.full_name).get_workflow(GOVERNANCE)
        workflow.create_dispatch("main", INPUTS, throw=True)
        [run] = workflow.get_runs(branch="main", event="workflow_dispatch")
        assert run.display_title == "model-governance churn-xgb 42 (drift alert)"
        assert run.name == "model-governance"
        assert run.created_at.microsecond == 0
        assert run.created_at.isoformat() == fake.dispatches[0].created_at.replace("Z", "+00:00")


def test_a_run_of_a_workflow_without_run_name_is_titled_with_its_name() -> None:
    """Without a run-name, GitHub titles a dispatched run with the workflow's name."""
    with FakeGitHub(list_lag_seconds=0, run_names={GOVERNANCE: None}) as fake:
        workflow = make_client(fake).get_repo(fake.full_name).get_workflow(GOVERNANCE)
        workflow.create_dispatch("main", INPUTS, throw=True)
        assert ["model-governance"] == [run.display_title for run in workflow.get_runs()]


def test_runs_are_filtered_by_creation_time_and_listed_newest_first(fake: FakeGitHub, repo: Any) -> None:
    """created=>=T leaves out older runs; a run added by hand has the title it was given."""
    old = fake.add_run(GOVERNANCE, display_title="old", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    manual = fake.add_run(GOVERNANCE, display_title="manual run by alice")
    runs = repo.get_workflow(GOVERNANCE).get_runs(created=">=2026-06-01T00:00:00Z")
    assert [(manual, "manual run by alice")] == [(run.id, run.display_title) for run in runs]
    assert [manual, old] == [run.id for run in repo.get_workflow(GOVERNANCE).get_runs()]


def test_dispatch_with_undeclared_input_is_rejected(fake: FakeGitHub, repo: Any) -> None:
    """An input the workflow does not declare answers 422 "Unexpected inputs provided"."""
    workflow = repo.get_workflow(GOVERNANCE)

    with pytest.raises(github.GithubException) as raised:
        workflow.create_dispatch("main", {**INPUTS, "DRY_RUN": "true"}, throw=True)

    assert raised.value.status == 422
    assert raised.value.data["message"] == 'Unexpected inputs provided: ["DRY_RUN"]'
    assert fake.dispatches == []


def test_dispatch_on_unknown_ref_is_rejected(repo: Any) -> None:
    """Dispatching on a ref that does not exist answers 422 "No ref found for"."""
    with pytest.raises(github.GithubException) as raised:
        repo.get_workflow(GOVERNANCE).create_dispatch("release", INPUTS, throw=True)

    assert raised.value.status == 422
    assert raised.value.data["message"] == "No ref found for: release"


def test_unknown_workflow_is_not_found(repo: Any) -> None:
    """Looking up a workflow file that does not exist raises UnknownObjectException."""
    with pytest.raises(github.UnknownObjectException):
        repo.get_workflow("deploy.yml")


# --------------------------------------------------------------------------- run progress and artifacts


def api_get(fake: FakeGitHub, path: str, **headers: str) -> requests.Response:
    """A GET on the fake's API with the token, redirects not followed."""
    return requests.get(
        f"{fake.url}{path}",
        headers={"Authorization": f"token {fake.token}", **headers},
        allow_redirects=False,
        timeout=5,
    )


def test_a_run_moves_from_queued_through_in_progress_to_completed() -> None:
    """A run is queued, then in progress, then completed with a conclusion; updated_at and run_started_at follow."""
    with FakeGitHub(queued_seconds=1.0, running_seconds=1.0) as fake:
        repo = make_client(fake).get_repo(fake.full_name)
        run_id = fake.add_run(GOVERNANCE, display_title="manual")
        queued = repo.get_workflow_run(run_id)
        time.sleep(1.1)
        running = repo.get_workflow_run(run_id)
        time.sleep(1.0)
        done = repo.get_workflow_run(run_id)

    assert [("queued", None), ("in_progress", None), ("completed", "success")] == [
        (run.status, run.conclusion) for run in (queued, running, done)
    ]
    assert queued.created_at == queued.updated_at == queued.run_started_at
    assert running.run_started_at == running.updated_at == queued.created_at + timedelta(seconds=1)
    assert done.updated_at == queued.created_at + timedelta(seconds=2)


def test_conclusions_come_from_the_run_or_else_its_workflow() -> None:
    """A run's own conclusion (add_run or set_conclusion) wins over its workflow's; the default is success."""
    conclusions = {GOVERNANCE: "failure"}
    with FakeGitHub(queued_seconds=0, running_seconds=0, conclusions=conclusions, list_lag_seconds=0) as fake:
        repo = make_client(fake).get_repo(fake.full_name)
        by_workflow = fake.add_run(GOVERNANCE, display_title="a")
        by_run = fake.add_run(GOVERNANCE, display_title="b", conclusion="cancelled")
        repo.get_workflow("model-retraining.yml").create_dispatch("main", INPUTS, throw=True)
        dispatched = fake.dispatches[0].run_id
        fake.set_conclusion(dispatched, "timed_out")
        other = fake.add_run("model-retraining.yml", display_title="c")

        assert ["failure", "cancelled", "timed_out", "success"] == [
            repo.get_workflow_run(run_id).conclusion for run_id in (by_workflow, by_run, dispatched, other)
        ]


def test_a_run_answers_304_to_its_current_etag_without_spending_rate_limit(fake: FakeGitHub) -> None:
    """GET a run carries a weak ETag; If-None-Match with it (weak or not) answers 304 with no body, counted per path."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    path = f"/repos/acme/ml-platform/actions/runs/{run_id}"
    first = api_get(fake, path)
    etag = first.headers["ETag"]

    weak = api_get(fake, path, **{"If-None-Match": etag})
    strong = api_get(fake, path, **{"If-None-Match": etag.removeprefix("W/")})
    other = api_get(fake, path, **{"If-None-Match": 'W/"something-else"'})

    assert (200, True) == (first.status_code, etag.startswith('W/"'))
    assert [(304, b"", etag), (304, b"", etag), (200, etag)] == [
        (weak.status_code, weak.content, weak.headers["ETag"]),
        (strong.status_code, strong.content, strong.headers["ETag"]),
        (other.status_code, other.headers["ETag"]),
    ]
    assert first.headers["X-RateLimit-Remaining"] == weak.headers["X-RateLimit-Remaining"]
    assert (4, 2) == (fake.path_counts[path].requests, fake.path_counts[path].not_modified)


def test_a_run_changes_its_etag_when_it_changes_state() -> None:
    """Once the run moves on, the old ETag no longer matches: the client gets the new state."""
    with FakeGitHub(queued_seconds=0.2, running_seconds=10) as fake:
        run_id = fake.add_run(GOVERNANCE, display_title="manual")
        path = f"/repos/acme/ml-platform/actions/runs/{run_id}"
        etag = api_get(fake, path).headers["ETag"]
        time.sleep(0.3)
        later = api_get(fake, path, **{"If-None-Match": etag})

    assert (200, "in_progress") == (later.status_code, later.json()["status"])
    assert etag != later.headers["ETag"]


def test_run_artifacts_are_listed_in_githubs_shape(fake: FakeGitHub, repo: Any) -> None:
    """PyGithub lists a run's artifacts with their id, name, size, expiry and download URL."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "model-integrity.json", {"model-integrity.json": {"status": "pass"}})
    fake.add_artifact(run_id, "bias-report.json", {"bias-report.json": {"status": "fail"}}, expired=True)

    artifacts = list(repo.get_workflow_run(run_id).get_artifacts())

    assert [("model-integrity.json", False), ("bias-report.json", True)] == [(a.name, a.expired) for a in artifacts]
    assert artifact_id == artifacts[0].id
    assert artifacts[0].archive_download_url == f"{fake.url}/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip"
    assert artifacts[0].size_in_bytes > 0
    assert artifacts[0].workflow_run.id == run_id


def test_an_artifact_zip_redirects_to_another_origin_that_serves_it_without_authorization(fake: FakeGitHub) -> None:
    """The zip endpoint answers 302 to a signed link on the storage server, which serves the zip to a bare GET."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "model-integrity.json", {"model-integrity.json": {"status": "pass"}})

    redirect = api_get(fake, f"/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip")
    location = redirect.headers["Location"]
    download = requests.get(location, timeout=5)

    assert 302 == redirect.status_code
    assert location.startswith(fake.storage_url + "/") and not location.startswith(fake.url)
    assert "sig=" in location and "se=" in location
    assert (200, "application/zip") == (download.status_code, download.headers["Content-Type"])
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert {"status": "pass"} == json.loads(archive.read("model-integrity.json"))
    assert [(None, 200)] == [(r.authorization, r.status) for r in fake.storage_requests]


def test_storage_refuses_a_request_that_carries_authorization(fake: FakeGitHub) -> None:
    """Like Azure blob storage, the storage answers 400 to a signed link sent with an Authorization header."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "a", {"a.json": {"status": "pass"}})
    location = api_get(fake, f"/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip").headers["Location"]

    refused = requests.get(location, headers={"Authorization": f"token {fake.token}"}, timeout=5)

    assert (400, "InvalidAuthenticationInfo") == (refused.status_code, refused.text.split("<Code>")[1].split("<")[0])
    assert [(f"token {fake.token}", 400)] == [(r.authorization, r.status) for r in fake.storage_requests]


def test_requests_drops_authorization_when_following_the_redirect(fake: FakeGitHub) -> None:
    """requests strips Authorization on a redirect to another port (should_strip_auth), so the download works."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "a", {"a.json": {"status": "pass"}})

    followed = requests.get(
        f"{fake.url}/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip",
        headers={"Authorization": f"token {fake.token}"},
        timeout=5,
    )

    assert 200 == followed.status_code
    assert [None] == [r.authorization for r in fake.storage_requests]


def test_storage_refuses_an_expired_or_unknown_link() -> None:
    """A link past artifact_link_seconds, or one the fake never signed, answers 403."""
    with FakeGitHub(artifact_link_seconds=0.1) as fake:
        run_id = fake.add_run(GOVERNANCE, display_title="manual")
        artifact_id = fake.add_artifact(run_id, "a", {"a.json": {"status": "pass"}})
        location = api_get(fake, f"/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip").headers["Location"]
        time.sleep(0.2)

        expired = requests.get(location, timeout=5)
        forged = requests.get(location.replace("sig=", "sig=x"), timeout=5)

    assert [403, 403] == [expired.status_code, forged.status_code]
    assert "Signature not valid in the specified time frame." in expired.text


def test_an_expired_artifact_answers_410(fake: FakeGitHub) -> None:
    """Downloading an artifact past its retention answers 410 "Artifact has expired"."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "a", {"a.json": {"status": "pass"}})
    fake.expire_artifacts()

    gone = api_get(fake, f"/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip")

    assert (410, "Artifact has expired") == (gone.status_code, gone.json()["message"])
    assert fake.storage_requests == []


def test_reset_forgets_artifacts_storage_requests_and_counts(fake: FakeGitHub) -> None:
    """reset() also forgets artifacts, download links, storage requests and per-path counts."""
    run_id = fake.add_run(GOVERNANCE, display_title="manual")
    artifact_id = fake.add_artifact(run_id, "a", {"a.json": {"status": "pass"}})
    location = api_get(fake, f"/repos/acme/ml-platform/actions/artifacts/{artifact_id}/zip").headers["Location"]
    requests.get(location, timeout=5)

    fake.reset()

    assert ({}, []) == (fake.path_counts, fake.storage_requests)
    assert 403 == requests.get(location, timeout=5).status_code


# --------------------------------------------------------------------------- contents and commits


def test_contents_returns_the_latest_manifest(fake: FakeGitHub, repo: Any) -> None:
    """Reading the manifest without a ref returns the newest revision on main."""
    fake.set_manifest({"model_version": "1"})
    fake.set_manifest({"model_version": "2"})

    content = repo.get_contents(MANIFEST_PATH)

    assert json.loads(content.decoded_content) == {"model_version": "2"}
    assert (content.path, content.name, content.type) == (MANIFEST_PATH, "model-manifest.json", "file")
    assert content.url.startswith(f"{fake.url}/repos/acme/ml-platform/contents/")


def test_contents_at_an_older_commit_returns_the_older_revision(fake: FakeGitHub, repo: Any) -> None:
    """Reading with ref=<older commit sha> returns the file as of that commit."""
    older = fake.set_manifest({"model_version": "1"})
    fake.set_file("README.md", "unrelated change")
    fake.set_manifest({"model_version": "2"})

    content = repo.get_contents(MANIFEST_PATH, ref=older)

    assert json.loads(content.decoded_content) == {"model_version": "1"}


def test_contents_are_base64_in_60_character_lines(fake: FakeGitHub, repo: Any) -> None:
    """File content is base64 wrapped at 60 characters per line, like GitHub's contents API."""
    fake.set_file("data/blob.bin", bytes(range(256)))

    content = repo.get_contents("data/blob.bin")

    assert content.encoding == "base64"
    assert {len(line) for line in content.content.splitlines()[:-1]} == {60}
    assert base64.b64decode(content.content) == bytes(range(256))


def test_missing_file_is_not_found(fake: FakeGitHub, repo: Any) -> None:
    """Reading a path that was never committed raises UnknownObjectException."""
    fake.set_file("README.md", "hello")

    with pytest.raises(github.UnknownObjectException):
        repo.get_contents(MANIFEST_PATH)


def test_commits_for_a_path_are_newest_first_across_pages(fake: FakeGitHub, repo: Any) -> None:
    """get_commits(path=...) lists only that path's revisions, newest first, following Link pages."""
    shas = []
    for version in range(35):
        shas.append(fake.set_manifest({"model_version": str(version)}))
        fake.set_file("README.md", f"noise {version}")

    commits = list(repo.get_commits(path=MANIFEST_PATH))

    assert [c.sha for c in commits] == shas[::-1]
    assert commits[0].commit.message == "update model manifest"
    assert commits[0].html_url == f"http://github.fake/acme/ml-platform/commit/{shas[-1]}"
    commit_pages = [p for _, p in paths(fake) if "/commits" in p]
    assert len(commit_pages) == 2 and "page=2" in commit_pages[1].split("?")[1].split("&")


def test_commits_honour_per_page(fake: FakeGitHub) -> None:
    """A client with per_page=10 pages through 25 revisions in three requests."""
    shas = [fake.set_manifest({"model_version": str(v)}) for v in range(25)]
    repo = make_client(fake, per_page=10).get_repo(fake.full_name)

    assert [c.sha for c in repo.get_commits(path=MANIFEST_PATH)] == shas[::-1]
    assert len([p for _, p in paths(fake) if "/commits" in p]) == 3


# --------------------------------------------------------------------------- issues


def test_issue_create_records_title_body_and_labels(fake: FakeGitHub, repo: Any) -> None:
    """Creating an issue answers 201 with GitHub's issue fields and creates its labels implicitly."""
    issue = repo.create_issue("Model drift: churn-xgb", body="details", labels=["incident", "model:churn-xgb"])

    assert issue.number == 1
    assert issue.html_url == "http://github.fake/acme/ml-platform/issues/1"
    assert issue.url == f"{fake.url}/repos/acme/ml-platform/issues/1"
    assert [label.name for label in issue.labels] == ["incident", "model:churn-xgb"]
    assert issue.user.login == "responder[bot]"
    [stored] = fake.issues
    assert (stored.title, stored.body, stored.labels, stored.state) == (
        "Model drift: churn-xgb",
        "details",
        ["incident", "model:churn-xgb"],
        "open",
    )


def test_issues_are_filtered_by_all_listed_labels(repo: Any) -> None:
    """get_issues(labels=...) returns only issues carrying every listed label, newest first."""
    repo.create_issue("a", labels=["incident", "model:a"])
    repo.create_issue("b", labels=["incident", "model:b"])
    repo.create_issue("c", labels=["incident", "model:a"])

    titles = [i.title for i in repo.get_issues(labels=["incident", "model:a"])]

    assert titles == ["c", "a"]


def test_issues_list_open_by_default_and_closed_on_request(repo: Any) -> None:
    """Listing issues returns open ones by default and closed ones with state="closed"."""
    repo.create_issue("stays open")
    repo.create_issue("gets closed").edit(state="closed")

    assert [i.title for i in repo.get_issues()] == ["stays open"]
    assert [i.title for i in repo.get_issues(state="closed")] == ["gets closed"]
    assert [i.title for i in repo.get_issues(state="all")] == ["gets closed", "stays open"]


def test_issue_comment_is_recorded_and_listed(fake: FakeGitHub, repo: Any) -> None:
    """A comment answers 201 with an html_url anchored on the issue and shows up in the comment list."""
    issue = repo.create_issue("Model drift")

    comment = issue.create_comment("still firing")

    assert comment.html_url == f"{issue.html_url}#issuecomment-{comment.id}"
    assert [c.body for c in repo.get_issue(1).get_comments()] == ["still firing"]
    assert repo.get_issue(1).comments == 1
    assert fake.issues[0].comments == ["still firing"]


def test_issue_close(fake: FakeGitHub, repo: Any) -> None:
    """Editing an issue with state="closed" closes it and stamps closed_at."""
    issue = repo.create_issue("Model drift")

    issue.edit(state="closed")

    assert issue.state == "closed"
    assert issue.closed_at is not None
    assert fake.issues[0].state == "closed"


def test_unknown_issue_is_not_found(repo: Any) -> None:
    """Fetching an issue number that does not exist raises UnknownObjectException."""
    with pytest.raises(github.UnknownObjectException):
        repo.get_issue(7)


# --------------------------------------------------------------------------- protocol


def test_ghes_prefix_serves_the_api_under_api_v3() -> None:
    """With prefix="/api/v3" the fake behaves like GitHub Enterprise Server and urls carry the prefix."""
    with FakeGitHub(prefix="/api/v3") as fake:
        assert fake.url.endswith("/api/v3")
        repo = make_client(fake).get_repo(fake.full_name)
        issue = repo.create_issue("on GHES")
        issue.create_comment("works")

        assert repo.url == f"{fake.url}/repos/acme/ml-platform"
        assert issue.url.startswith(f"{fake.url}/repos/")
        assert paths(fake) == [
            ("GET", "/repos/acme/ml-platform"),
            ("POST", "/repos/acme/ml-platform/issues"),
            ("POST", "/repos/acme/ml-platform/issues/1/comments"),
        ]


def test_ghes_prefix_is_required() -> None:
    """A client that omits the GHES prefix gets 404, as a real GHES host would answer."""
    with FakeGitHub(prefix="/api/v3") as fake:
        client = github.Github(
            base_url=fake.url.removesuffix("/api/v3"), auth=github.Auth.Token(fake.token), retry=None
        )
        with pytest.raises(github.UnknownObjectException):
            client.get_repo(fake.full_name)


def test_bad_token_raises_bad_credentials(fake: FakeGitHub) -> None:
    """A wrong token answers 401 "Bad credentials", which PyGithub raises as BadCredentialsException."""
    client = github.Github(base_url=fake.url, auth=github.Auth.Token("wrong"), retry=None)

    with pytest.raises(github.BadCredentialsException):
        client.get_repo(fake.full_name)
    assert [r.status for r in fake.requests] == [401]


def test_bearer_authorization_is_accepted(fake: FakeGitHub) -> None:
    """An "Authorization: Bearer <token>" header authenticates as well as "token <token>"."""
    request = urllib.request.Request(
        f"{fake.url}/repos/acme/ml-platform", headers={"Authorization": f"Bearer {fake.token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert json.load(response)["full_name"] == "acme/ml-platform"


def test_missing_authorization_is_rejected(fake: FakeGitHub) -> None:
    """A request with no Authorization header answers 401 with GitHub's error body."""
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{fake.url}/repos/acme/ml-platform", timeout=5)

    assert raised.value.code == 401
    assert json.load(raised.value)["message"] == "Bad credentials"


def test_responses_carry_rate_limit_headers(gh: github.Github, fake: FakeGitHub) -> None:
    """Responses carry X-RateLimit-* headers, which PyGithub picks up as rate_limiting."""
    gh.get_repo(fake.full_name)
    gh.get_repo(fake.full_name)

    assert gh.rate_limiting == (4998, 5000)
    assert gh.rate_limiting_resettime > 0
    assert len(fake.requests) == 2


def test_unexpected_endpoint_is_not_found_and_recorded(fake: FakeGitHub, repo: Any) -> None:
    """An endpoint the fake does not implement answers 404 and is logged, so tests notice the call."""
    with pytest.raises(github.UnknownObjectException):
        list(repo.get_labels())

    assert (fake.requests[-1].method, fake.requests[-1].path, fake.requests[-1].status) == (
        "GET",
        "/repos/acme/ml-platform/labels",
        404,
    )


def test_requests_record_headers_and_parsed_body(fake: FakeGitHub, repo: Any) -> None:
    """Each recorded request keeps its headers and JSON body for assertions."""
    repo.create_issue("Model drift", body="details", labels=["incident"])

    recorded = fake.requests[-1]
    assert (recorded.method, recorded.path, recorded.status) == ("POST", "/repos/acme/ml-platform/issues", 201)
    assert recorded.headers["Authorization"] == f"token {fake.token}"
    assert recorded.body == {"title": "Model drift", "body": "details", "labels": ["incident"]}


# --------------------------------------------------------------------------- fault injection


def test_fail_next_after_write_creates_the_issue_yet_answers_502(fake: FakeGitHub, repo: Any) -> None:
    """With after_write=True the issue is created but the client sees a 502 (an ambiguous failure)."""
    fake.fail_next("POST", r"/issues$", after_write=True)

    with pytest.raises(github.GithubException) as raised:
        repo.create_issue("Model drift", labels=["incident"])

    assert raised.value.status == 502
    assert [i.title for i in fake.issues] == ["Model drift"]


def test_fail_next_without_after_write_leaves_state_untouched(fake: FakeGitHub, repo: Any) -> None:
    """A plain injected failure returns the error without applying the request, then clears."""
    fake.fail_next("POST", r"/dispatches$", status=500, body={"message": "boom"})
    workflow = repo.get_workflow(GOVERNANCE)

    with pytest.raises(github.GithubException) as raised:
        workflow.create_dispatch("main", INPUTS, throw=True)
    assert (raised.value.status, raised.value.data) == (500, {"message": "boom"})
    assert fake.dispatches == []

    assert workflow.create_dispatch("main", INPUTS, throw=True) is True
    assert len(fake.dispatches) == 1


def test_default_retry_replays_an_ambiguous_post_and_duplicates_the_issue(fake: FakeGitHub) -> None:
    """PyGithub's default retry re-sends a POST that got a 502 after the write, so the issue is created twice."""
    repo = make_client(fake, retry=github.GithubRetry()).get_repo(fake.full_name)
    fake.fail_next("POST", r"/issues$", after_write=True)

    repo.create_issue("Model drift")

    assert [i.number for i in fake.issues] == [1, 2]


def test_fail_next_delay_trips_the_client_timeout(fake: FakeGitHub) -> None:
    """A delayed answer makes a client with a shorter timeout raise a requests timeout."""
    client = make_client(fake, timeout=1)
    fake.fail_next("GET", r"^/repos/acme/ml-platform$", status=None, delay=3.0)

    with pytest.raises(requests.exceptions.Timeout):
        client.get_repo(fake.full_name)


def test_reset_clears_state_and_faults(fake: FakeGitHub, repo: Any) -> None:
    """reset() forgets variables, dispatches, issues, files, requests and pending faults."""
    repo.create_variable("MODEL_FREEZE", "true")
    repo.create_issue("Model drift")
    repo.get_workflow(GOVERNANCE).create_dispatch("main", INPUTS)
    fake.set_manifest({"model_version": "1"})
    fake.fail_next("GET", r".*", times=5)

    fake.reset()

    assert (fake.variables, fake.dispatches, fake.issues, fake.requests) == ({}, [], [], [])
    with pytest.raises(github.GithubException) as raised:
        repo.get_contents(MANIFEST_PATH)
    assert (raised.value.status, raised.value.data["message"]) == (404, "This repository is empty.")
