"""The rollback playbook (runbook, "Deployment & rollback"): find the previous manifest version,
re-run governance with it, re-tag the serving endpoint and note the rollback on the incident
tracker -- run by a real RQ worker against a real Redis and HTTP fakes of GitHub, the
feature-toggle service and Jira."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis

from responder import jobs
from responder.alerts import Alert, Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunRecord, RunStore, StepRecord
from responder.settings import Settings
from tests.conftest import ROOT, Worker, github_repo, integration_settings, make_settings, run_cli, tickets_of
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.github import manifest

STEPS = ["find-previous-version", "dispatch-governance", "retag-endpoint", "note-incident"]


# --------------------------------------------------------------------------- helpers


def arrange_history(fake: FakeGitHub) -> dict[str, str]:
    """fraud-scorer 2026.9.0, then 2026.10.3, then a commit changing only credit-limit, then 2026.11.1 (current)."""
    shas = {
        "2026.9.0": fake.set_manifest(manifest({"fraud-scorer": "2026.9.0", "credit-limit": "3.0.0"})),
        "2026.10.3": fake.set_manifest(manifest({"fraud-scorer": "2026.10.3", "credit-limit": "3.1.0"})),
        "credit-only": fake.set_manifest(manifest({"fraud-scorer": "2026.10.3", "credit-limit": "3.2.0"})),
        "2026.11.1": fake.set_manifest(manifest({"fraud-scorer": "2026.11.1", "credit-limit": "3.2.0"})),
    }
    return shas


def manual_alert(model_id: str, **labels: str) -> Alert:
    return Alert(
        status="firing",
        labels={"alertname": "rollback", "model_id": model_id, **labels},
        annotations={"reason": "bad precision after deploy"},
        startsAt=datetime.now(UTC),
        fingerprint=uuid.uuid4().hex[:16],
    )


def rollback(
    settings: Settings, redis: Redis, model_id: str = "fraud-scorer", *, dry_run: bool = False, **labels: str
) -> RunRecord:
    """Queue a manual rollback run as `responder run rollback` does, run it on a worker, return its record."""
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    record = intake.enqueue_manual(
        "rollback", manual_alert(model_id, **labels), dry_run=dry_run, requested_by="alice"
    )
    Worker(settings).drain()
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(record.id)


def open_drift_ticket(settings: Settings, redis: Redis) -> None:
    """Open the model's drift incident ticket by running the drift playbook."""
    alert = Alert(
        status="firing",
        labels={"alertname": "model_drift_detected", "model_id": "fraud-scorer", "segment": "apac"},
        annotations={"summary": "PSI above threshold"},
        startsAt=datetime.now(UTC),
        fingerprint=uuid.uuid4().hex[:16],
    )
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    record = intake.enqueue_manual("model_drift_detected", alert, dry_run=False)
    Worker(settings).drain()
    assert RunStore(redis, retention_seconds=60).get(record.id).status == "succeeded"


def step(record: RunRecord, name: str) -> StepRecord:
    found = record.step(name)
    assert found is not None, f"no step {name!r} in {[s.name for s in record.steps]}"
    return found


def unescaped(text: str) -> str:
    """Ticket text without the markdown/wiki-markup backslash escapes."""
    return re.sub(r"\\(.)", r"\1", text)


def writes(requests: list[Any]) -> list[Any]:
    return [r for r in requests if r.method != "GET"]


def jira_writes(fake: FakeJira) -> list[Any]:
    """Requests that change Jira (searches are POSTs too, but read-only)."""
    return [r for r in fake.requests if r.method != "GET" and "/search" not in r.path]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub, fake_toggles: FakeToggles,
             fake_jira: FakeJira) -> Iterator[Settings]:
    """Live settings against the fakes, tickets in GitHub issues."""
    yield integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira)
    jobs.install_runtime(None)


@pytest.fixture
def tracker_settings(tracker: str, redis: Redis, redis_url: str, fake_github: FakeGitHub, fake_toggles: FakeToggles,
                     fake_jira: FakeJira) -> Iterator[Settings]:
    """Live settings against the fakes, tickets in GitHub issues or in Jira."""
    yield integration_settings(redis_url, tracker, fake_github, fake_toggles, fake_jira)
    jobs.install_runtime(None)


# --------------------------------------------------------------------------- finding the previous version


def test_previous_version_is_the_newest_earlier_revision_with_another_version(settings, redis, fake_github):
    """The target is the model's version in the newest manifest revision whose version of it differs."""
    shas = arrange_history(fake_github)
    record = rollback(settings, redis)
    found = step(record, "find-previous-version")
    assert found.status == "ok"
    assert (found.outputs["from_version"], found.outputs["to_version"]) == ("2026.11.1", "2026.10.3")
    assert found.outputs["revision"] == shas["credit-only"]
    assert found.outputs["endpoint"] == "fraud-scorer-prod"
    assert found.detail == f"fraud-scorer: 2026.11.1 -> 2026.10.3 (manifest revision {shas['credit-only'][:7]})"


def test_revisions_that_change_only_another_model_are_skipped(settings, redis, fake_github):
    """Newer revisions that changed only credit-limit keep fraud-scorer's version, so they are passed over."""
    older = fake_github.set_manifest(manifest({"fraud-scorer": "2026.10.3", "credit-limit": "3.1.0"}))
    fake_github.set_manifest(manifest({"fraud-scorer": "2026.11.1", "credit-limit": "3.1.0"}))
    fake_github.set_manifest(manifest({"fraud-scorer": "2026.11.1", "credit-limit": "3.2.0"}))
    fake_github.set_manifest(manifest({"fraud-scorer": "2026.11.1", "credit-limit": "3.3.0"}))
    found = step(rollback(settings, redis), "find-previous-version")
    assert (found.outputs["to_version"], found.outputs["revision"]) == ("2026.10.3", older)


def test_the_other_models_previous_version_is_its_own(settings, redis, fake_github):
    """Rolling back credit-limit looks at credit-limit's versions, not at fraud-scorer's."""
    arrange_history(fake_github)
    found = step(rollback(settings, redis, "credit-limit"), "find-previous-version")
    assert (found.outputs["from_version"], found.outputs["to_version"]) == ("3.2.0", "3.1.0")


def test_to_version_label_is_used_as_given(settings, redis, fake_github, fake_toggles):
    """With a to_version label no history is needed: that version is dispatched and re-tagged."""
    record = rollback(settings, redis, to_version="2026.9.0")
    assert record.status == "succeeded", record.error
    found = step(record, "find-previous-version")
    assert found.outputs["to_version"] == "2026.9.0"
    assert "revision" not in found.outputs
    assert found.detail == "fraud-scorer: 2026.11.1 -> 2026.9.0 (given)"
    assert [d.inputs["MODEL_VERSION"] for d in fake_github.dispatches] == ["2026.9.0"]
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.9.0"


def test_to_version_equal_to_the_current_version_fails(settings, redis, fake_github, fake_toggles):
    """Rolling back to the version already deployed fails and changes nothing."""
    record = rollback(settings, redis, to_version="2026.11.1")
    assert record.status == "failed"
    assert step(record, "find-previous-version").error == "fraud-scorer is already at 2026.11.1"
    assert fake_github.dispatches == []
    assert fake_toggles.requests == []


def test_unsafe_to_version_label_is_refused(settings, redis, fake_github, fake_toggles):
    """A to_version that is not a safe identifier fails the run before anything is written."""
    record = rollback(settings, redis, to_version="../2026.9.0")
    assert record.status == "failed"
    assert "is not a valid identifier" in (step(record, "find-previous-version").error or "")
    assert fake_github.dispatches == []
    assert fake_toggles.requests == []


def test_no_previous_version_fails_and_skips_every_later_step(settings, redis, fake_github, fake_toggles):
    """With one manifest revision the run fails; the later steps are recorded as skipped, blocked by it."""
    record = rollback(settings, redis)
    assert record.status == "failed"
    assert [(s.name, s.status) for s in record.steps] == [
        ("find-previous-version", "failed"), *[(name, "skipped") for name in STEPS[1:]]
    ]
    assert "no previous version of fraud-scorer" in (step(record, "find-previous-version").error or "")
    for name in STEPS[1:]:
        assert step(record, name).detail == "not run: find-previous-version failed"
        assert step(record, name).blocked


def test_no_previous_version_dispatches_retags_and_tickets_nothing(settings, redis, fake_github, fake_toggles):
    """With no previous version nothing is dispatched, the toggle service is not called and no ticket is opened."""
    rollback(settings, redis)
    assert fake_github.dispatches == []
    assert fake_toggles.requests == []
    assert fake_github.issues == []
    assert writes(fake_github.requests) == []


def test_unknown_model_fails_naming_the_model_and_does_nothing(settings, redis, fake_github, fake_toggles):
    """A model absent from the manifest fails the first step with its name; nothing else runs or is written."""
    record = rollback(settings, redis, "ghost")
    assert record.status == "failed"
    error = step(record, "find-previous-version").error or ""
    assert "model ghost is not in artifacts/ml/model-manifest.json" in error
    assert [s.detail for s in record.steps[1:]] == ["not run: find-previous-version failed"] * 3
    assert fake_github.dispatches == []
    assert fake_toggles.requests == []
    assert fake_github.issues == []


# --------------------------------------------------------------------------- the actions


def test_governance_is_dispatched_once_with_the_previous_version(settings, redis, fake_github):
    """Governance is dispatched exactly once with MODEL_ID, MODEL_VERSION=<previous> and REASON=rollback."""
    arrange_history(fake_github)
    record = rollback(settings, redis)
    assert record.status == "succeeded", record.error
    assert [(d.workflow, d.ref, d.inputs) for d in fake_github.dispatches] == [
        ("model-governance.yml", "main",
         {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": "2026.10.3", "REASON": "rollback"}),
    ]


def test_endpoint_is_retagged_to_the_previous_version_with_the_token(settings, redis, fake_github, fake_toggles):
    """The toggle service gets PUT /endpoints/<model_id> with version=<previous>, reason rollback and the token."""
    arrange_history(fake_github)
    record = rollback(settings, redis)
    [request] = fake_toggles.requests
    assert (request.method, request.path, request.status) == ("PUT", "/endpoints/fraud-scorer", 200)
    assert request.body == {"model_id": "fraud-scorer", "version": "2026.10.3", "reason": "rollback"}
    assert request.headers["Authorization"] == f"Bearer {fake_toggles.token}"
    assert step(record, "retag-endpoint").status == "ok"


def test_rollback_is_noted_on_the_models_open_incident_ticket(tracker, tracker_settings, redis, fake_github,
                                                              fake_jira):
    """With an open incident ticket for the model, the rollback is a comment naming both versions on it."""
    arrange_history(fake_github)
    open_drift_ticket(tracker_settings, redis)
    record = rollback(tracker_settings, redis)
    assert record.status == "succeeded", record.error
    [ticket] = tickets_of(tracker, fake_github, fake_jira)
    assert ticket.is_open
    [comment] = ticket.comments
    assert "Rolled back" in comment
    assert "2026.11.1" in unescaped(comment)
    assert "2026.10.3" in unescaped(comment)
    assert record.id in unescaped(comment)
    assert step(record, "note-incident").status == "ok"


def test_rollback_is_noted_on_an_issue_opened_by_hand(settings, redis, fake_github):
    """An open incident issue carrying the model's label is found too, whatever alert it is for."""
    arrange_history(fake_github)
    github_repo(fake_github).create_issue(
        title="fraud-scorer drifting", body="opened by on-call",
        labels=["incident", "model_drift_detected", "model:fraud-scorer"],
    )
    rollback(settings, redis)
    [issue] = fake_github.issues
    [comment] = issue.comments
    assert "`2026.11.1`" in comment and "`2026.10.3`" in comment


def test_rollback_does_not_note_on_another_models_ticket(settings, redis, fake_github):
    """Another model's open ticket is left alone; a rollback ticket is opened instead."""
    arrange_history(fake_github)
    github_repo(fake_github).create_issue(
        title="credit-limit drifting", labels=["incident", "model_drift_detected", "model:credit-limit"]
    )
    rollback(settings, redis)
    other, opened = fake_github.issues
    assert other.comments == []
    assert opened.title.startswith("[rollback] fraud-scorer")


@pytest.mark.parametrize(
    ("tracker", "labels"),
    [
        ("github", ["incident", "rollback", "model:fraud-scorer"]),
        ("jira", ["responder", "rollback", "model-fraud-scorer"]),
    ],
    ids=["github", "jira"],
)
def test_without_an_open_ticket_a_rollback_ticket_is_opened(tracker, labels, tracker_settings, redis, fake_github,
                                                            fake_jira):
    """With no open ticket for the model, a "[rollback]" ticket naming both versions is opened."""
    arrange_history(fake_github)
    record = rollback(tracker_settings, redis)
    assert record.status == "succeeded", record.error
    [ticket] = tickets_of(tracker, fake_github, fake_jira)
    assert ticket.title == "[rollback] fraud-scorer: rolled back from 2026.11.1 to 2026.10.3"
    assert sorted(ticket.labels) == sorted(labels)
    assert ticket.is_open
    assert "bad precision after deploy" in unescaped(ticket.body)
    assert "alice" in ticket.body


def test_governance_failure_stops_the_retag(settings, redis, fake_github, fake_toggles):
    """When the governance dispatch fails the endpoint is not re-tagged to a version whose workflow never started."""
    arrange_history(fake_github)
    fake_github.fail_next("POST", r"/dispatches", status=422, body={"message": "Unexpected inputs provided"})
    record = rollback(settings, redis)
    assert record.status == "failed"
    assert "Unexpected inputs provided" in (step(record, "dispatch-governance").error or "")
    assert step(record, "retag-endpoint").detail == "not run: dispatch-governance failed"
    assert fake_toggles.requests == []


def test_toggle_404_fails_the_retag_with_the_service_message_and_still_notes(settings, redis, fake_github,
                                                                             fake_toggles):
    """A 404 from the toggle service fails the re-tag step with its message; the note step still runs."""
    arrange_history(fake_github)
    fake_toggles.fail_next("PUT", r"^/endpoints/", status=404, body={"message": "no endpoint named fraud-scorer"})
    record = rollback(settings, redis)
    retag = step(record, "retag-endpoint")
    assert record.status == "failed"
    assert retag.status == "failed"
    assert "toggle service answered 404: no endpoint named fraud-scorer" in (retag.error or "")
    assert step(record, "note-incident").status == "ok"
    [issue] = fake_github.issues
    assert issue.title == "[rollback] fraud-scorer: rolled back from 2026.11.1 to 2026.10.3"


def test_a_transient_toggle_failure_retries_without_dispatching_again(redis, redis_url, fake_github, fake_toggles,
                                                                     fake_jira):
    """A 502 from the toggle service retries the run; governance is still dispatched only once."""
    arrange_history(fake_github)
    settings = integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira, job_retry_intervals=[0])
    fake_toggles.fail_next("PUT", r"^/endpoints/", status=502)
    try:
        record = rollback(settings, redis)
    finally:
        jobs.install_runtime(None)
    assert record.status == "succeeded", record.error
    assert record.attempts == 2
    assert len(fake_github.dispatches) == 1
    assert [r.status for r in fake_toggles.requests] == [502, 200]
    assert len(fake_github.issues) == 1


def test_retrying_a_failed_rollback_only_retags(settings, redis, fake_github, fake_toggles):
    """Retrying a rollback whose re-tag failed re-tags, without dispatching or noting again."""
    arrange_history(fake_github)
    fake_toggles.fail_next("PUT", r"^/endpoints/", status=404, body={"message": "no endpoint named fraud-scorer"})
    failed = rollback(settings, redis)
    Intake(redis, settings, load_catalog(settings.playbooks_dir)).requeue(failed)
    Worker(settings).drain()
    record = RunStore(redis, retention_seconds=60).get(failed.id)
    assert record.status == "succeeded", record.error
    assert len(fake_github.dispatches) == 1
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.10.3"
    [issue] = fake_github.issues
    assert issue.comments == []


def test_without_a_toggle_service_the_retag_fails_saying_what_to_set(redis, redis_url, fake_github):
    """With no RESPONDER_TOGGLE_URL the re-tag step fails naming the setting; the rollback is still noted."""
    arrange_history(fake_github)
    settings = make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                             github_repo=fake_github.full_name)
    try:
        record = rollback(settings, redis)
    finally:
        jobs.install_runtime(None)
    assert "RESPONDER_TOGGLE_URL is not set" in (step(record, "retag-endpoint").error or "")
    assert step(record, "note-incident").status == "ok"
    assert len(fake_github.dispatches) == 1


def test_dry_run_plans_dispatch_retag_and_note_without_writing(settings, redis, fake_github, fake_toggles):
    """A dry-run rollback finds the version for real and plans the dispatch, re-tag and note; nothing is written."""
    arrange_history(fake_github)
    record = rollback(settings, redis, dry_run=True)
    assert record.status == "succeeded", record.error
    assert [(s.name, s.status) for s in record.steps] == [
        ("find-previous-version", "ok"), ("dispatch-governance", "planned"),
        ("retag-endpoint", "planned"), ("note-incident", "planned"),
    ]
    assert "MODEL_VERSION=2026.10.3" in step(record, "dispatch-governance").detail
    assert step(record, "retag-endpoint").detail == (
        "would re-tag fraud-scorer to 2026.10.3 (PUT /endpoints/fraud-scorer)"
    )
    assert writes(fake_github.requests) == []
    assert fake_toggles.requests == []
    assert fake_github.issues == []


def test_dry_run_with_jira_writes_nothing_to_jira(redis, redis_url, fake_github, fake_toggles, fake_jira):
    """A dry-run rollback with the Jira tracker only searches Jira."""
    arrange_history(fake_github)
    settings = integration_settings(redis_url, "jira", fake_github, fake_toggles, fake_jira)
    try:
        record = rollback(settings, redis, dry_run=True)
    finally:
        jobs.install_runtime(None)
    assert step(record, "note-incident").status == "planned"
    assert jira_writes(fake_jira) == []
    assert fake_jira.issues == []


# --------------------------------------------------------------------------- as a step of another playbook


def test_rollback_included_by_an_alert_playbook_runs_prefixed_steps(tmp_path, redis, redis_url, fake_github,
                                                                    fake_toggles, fake_jira):
    """An alert playbook including rollback runs its steps as `rollback.<step>`, with the step outputs wired."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    shutil.copy(ROOT / "playbooks" / "rollback.yaml", playbooks / "rollback.yaml")
    (playbooks / "bad_deploy.yaml").write_text(
        "name: bad_deploy\n"
        "alertname: model_bad_deploy\n"
        "steps:\n"
        "  - {name: rollback, kind: include, with: {playbook: rollback}}\n"
    )
    arrange_history(fake_github)
    settings = integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira, playbooks_dir=playbooks)
    notification = Notification(
        version="4", groupKey="{}:{}", status="firing", receiver="responder",
        alerts=[Alert(status="firing", labels={"alertname": "model_bad_deploy", "model_id": "fraud-scorer"},
                      startsAt=datetime.now(UTC), fingerprint="0123456789abcdef")],
    )
    [decision] = Intake(redis, settings, load_catalog(playbooks)).accept(notification)
    assert decision.job_id is not None
    try:
        Worker(settings).drain()
    finally:
        jobs.install_runtime(None)
    record = RunStore(redis, retention_seconds=60).get(decision.job_id)
    assert [(s.name, s.status) for s in record.steps] == [(f"rollback.{name}", "ok") for name in STEPS]
    assert [d.inputs["MODEL_VERSION"] for d in fake_github.dispatches] == ["2026.10.3"]
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.10.3"
    assert fake_github.issues[0].title == "[rollback] fraud-scorer: rolled back from 2026.11.1 to 2026.10.3"


def test_retag_step_works_without_a_find_previous_version_step(tmp_path, redis, redis_url, fake_github, fake_toggles,
                                                               fake_jira):
    """A retag_endpoint step in a playbook without find-previous-version re-tags: its endpoint default is optional."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "pin.yaml").write_text(
        "name: pin\n"
        "steps:\n"
        "  - {name: retag, kind: retag_endpoint, with: {version: \"{{ labels.version }}\", reason: pin}}\n"
    )
    settings = integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira, playbooks_dir=playbooks)
    alert = manual_alert("fraud-scorer", version="2026.9.0")
    record = Intake(redis, settings, load_catalog(playbooks)).enqueue_manual("pin", alert, dry_run=False)
    try:
        Worker(settings).drain()
    finally:
        jobs.install_runtime(None)
    record = RunStore(redis, retention_seconds=60).get(record.id)
    assert record.status == "succeeded", record.steps[0].error
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.9.0"


# --------------------------------------------------------------------------- the command


def test_cli_rollback_waits_and_exits_0(cli_env, worker_process, fake_github, fake_toggles):
    """`run rollback --label model_id=X --wait` rolls back, prints the record and exits 0."""
    arrange_history(fake_github)
    result = run_cli(cli_env, "run", "rollback", "--label", "model_id=fraud-scorer", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout
    assert "fraud-scorer: 2026.11.1 -> 2026.10.3" in result.stdout
    assert fake_toggles.endpoints["fraud-scorer"]["version"] == "2026.10.3"


def test_cli_rollback_of_unknown_model_exits_1_with_the_reason(cli_env, worker_process, fake_github, fake_toggles):
    """`run rollback --label model_id=ghost --wait` exits 1 and prints why."""
    result = run_cli(cli_env, "run", "rollback", "--label", "model_id=ghost", "--wait", "--timeout", "60")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    assert "model ghost is not in artifacts/ml/model-manifest.json" in result.stdout
    assert "not run: find-previous-version failed" in result.stdout
    assert "Traceback" not in result.stderr
    assert fake_github.dispatches == []
    assert fake_toggles.requests == []
