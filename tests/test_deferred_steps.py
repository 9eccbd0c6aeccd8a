"""A transient failure defers only the step that failed (issue 16, B4): the incident ticket opens
in the same attempt, showing the step as "retrying at T"; steps after it that do not need its
result run now; the deferred step's result is commented on the ticket when it finishes. Steps that
need an earlier result (a ``stop_on_failure`` chain, a template reading its outputs) wait for it.

Real Redis, real RQ workers in this process, the GitHub, Jira and toggle fakes over HTTP; GitHub
lists a new run seconds after its dispatch, and retries come after realistic lags.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from responder.alerts import Alert
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.settings import Settings
from tests.conftest import ROOT, Worker, integration_settings, load_example, tickets_of
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.github import LIST_LAG_SECONDS, LOOKUP_SECONDS
from tests.support.runs import RetryingWorker, queue_runs, record_of

BACKOFF = [4, 4, 4]  # each retry after the list lag (at least 3 s with the jitter), as production's 10 s is
DISPATCHES = r"/dispatches$"
ISSUES = r"/issues$"


@pytest.fixture(autouse=True)
def listing_lags(fake_github: FakeGitHub) -> None:
    fake_github.list_lag_seconds = LIST_LAG_SECONDS


@pytest.fixture
def settings(tracker: str, redis_url: str, redis: Redis, fake_github: FakeGitHub, fake_toggles: FakeToggles,
             fake_jira: FakeJira) -> Settings:
    return integration_settings(redis_url, tracker, fake_github, fake_toggles, fake_jira,
                                job_retry_intervals=BACKOFF, dispatch_lookup_seconds=LOOKUP_SECONDS)


def first_attempt(settings: Settings, redis: Redis) -> str:
    """Queue the run of one drifting segment and run its first attempt only (a retry stays scheduled)."""
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    [run_id] = queue_runs(settings, redis, payload)
    Worker(settings).drain()
    return run_id


def test_the_ticket_opens_in_the_first_attempt_while_the_failed_dispatch_waits(tracker, settings, redis,
                                                                                fake_github, fake_jira):
    """Drift: the retraining dispatch gets a 502; the ticket still opens in that attempt and shows
    the dispatch retrying at the time its retry is scheduled."""
    fake_github.fail_next("POST", DISPATCHES, status=502)
    run_id = first_attempt(settings, redis)
    record = record_of(settings, redis, run_id)
    dispatch, ticket = record.step("dispatch-retraining"), record.step("open-incident")
    assert (record.status, dispatch.status, ticket.status) == ("retrying", "retrying", "ok")
    assert dispatch.retry_at == record.retry_at
    [opened] = tickets_of(tracker, fake_github, fake_jira)
    assert f"retrying at {record.retry_at:%H:%M:%S} UTC" in opened.body
    assert fake_github.dispatches == []


def test_the_dispatch_result_is_added_to_the_ticket_when_its_retry_finishes(tracker, settings, redis,
                                                                           fake_github, fake_jira):
    """Two 502s on the dispatch: the third attempt dispatches once and comments the step's result
    (status and run link) on the ticket the first attempt opened; the ticket is opened once."""
    fake_github.fail_next("POST", DISPATCHES, status=502, times=2)
    run_id = first_attempt(settings, redis)
    RetryingWorker(settings).drain(timeout=60)
    record = record_of(settings, redis, run_id)
    assert (record.status, record.attempts) == ("succeeded", 3)
    [dispatched] = fake_github.dispatches
    [ticket] = tickets_of(tracker, fake_github, fake_jira)
    [comment] = [c.replace("\\", "") for c in ticket.comments]  # as read: Markdown escapes left out
    assert "dispatch-retraining" in comment and "ok" in comment and dispatched.html_url in comment
    assert "open-incident" not in comment  # only the steps that finished on the retry
    assert record.untold == []


def test_a_rate_limited_ticket_does_not_wait_for_the_dispatch_retries(tracker, settings, redis, fake_github,
                                                                      fake_jira):
    """The issue's case: two 502s on the dispatch, then a 429 on the ticket. Before, the whole run
    was retried and the ticket appeared after the dispatch's retries (minutes); now the ticket
    waits only for its own Retry-After and opens at the first retry, while the dispatch still waits."""
    fake_github.fail_next("POST", DISPATCHES, status=502, times=2)
    if tracker == "jira":
        fake_jira.fail_next("POST", r"/rest/api/2/issue$", status=429, headers={"Retry-After": "1"})
    else:
        fake_github.fail_next("POST", ISSUES, status=429, headers={"Retry-After": "1"},
                              body={"message": "You have exceeded a secondary rate limit"})
    run_id = first_attempt(settings, redis)
    assert record_of(settings, redis, run_id).step("open-incident").status == "retrying"
    RetryingWorker(settings).drain_scheduled(lambda job_id: job_id == f"{run_id}-retry1", timeout=30)
    record = record_of(settings, redis, run_id)
    assert (record.step("open-incident").status, record.step("dispatch-retraining").status) == ("ok", "retrying")
    assert len(tickets_of(tracker, fake_github, fake_jira)) == 1


def test_a_ticket_comment_that_fails_is_told_by_the_next_attempt_without_running_a_step_again(
    tracker, settings, redis, fake_github, fake_jira
):
    """The dispatch finishes on its retry but the comment telling the ticket gets a 503: the next
    attempt only comments (once), and the dispatch is not sent again."""
    fake_github.fail_next("POST", DISPATCHES, status=429, headers={"Retry-After": "1"})
    run_id = first_attempt(settings, redis)
    if tracker == "jira":
        fake_jira.fail_next("POST", r"/comment$", status=503)
    else:
        fake_github.fail_next("POST", r"/comments$", status=503)
    RetryingWorker(settings).drain(timeout=60)
    record = record_of(settings, redis, run_id)
    assert (record.status, record.attempts, record.untold) == ("succeeded", 3, [])
    assert len(fake_github.dispatches) == 1
    [ticket] = tickets_of(tracker, fake_github, fake_jira)
    assert len(ticket.comments) == 1


# --------------------------------------------------------------------------- steps that need a result


def test_rollback_steps_wait_for_the_dispatch_they_follow(redis, redis_url, fake_github, fake_toggles, fake_jira):
    """Rollback's dispatch (stop_on_failure) is rate limited: the re-tag and the note wait for it
    (recorded as waiting, not run), and all run once after it."""
    settings = integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira,
                                    job_retry_intervals=BACKOFF)
    fake_github.fail_next("POST", DISPATCHES, status=429, headers={"Retry-After": "1"})
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    labels = {"alertname": "rollback", "model_id": "fraud-scorer", "to_version": "2026.9.0"}
    alert = Alert(status="firing", labels=labels, annotations={"reason": "bad precision"},
                  startsAt=datetime.now(UTC), fingerprint=uuid.uuid4().hex[:16])
    run_id = intake.enqueue_manual("rollback", alert, dry_run=False, requested_by="alice").id
    Worker(settings).drain()
    waiting = record_of(settings, redis, run_id)
    assert [waiting.step(n).status for n in ("dispatch-governance", "retag-endpoint", "note-incident")] == [
        "retrying", "skipped", "skipped"]
    assert waiting.step("retag-endpoint").detail.startswith("waits for dispatch-governance (retrying at ")
    assert fake_toggles.requests == []
    RetryingWorker(settings).drain(timeout=30)
    done = record_of(settings, redis, run_id)
    assert done.status == "succeeded", done.error
    assert (len(fake_github.dispatches), fake_toggles.endpoints["fraud-scorer"]["version"]) == (1, "2026.9.0")


CHAIN = """
name: chained
alertname: model_drift_detected
steps:
  - name: freeze
    kind: freeze_deploys
  - name: dispatch
    kind: dispatch_workflow
    with:
      workflow: "{{ settings.retraining_workflow }}"
      reason: "freeze-{{ steps['freeze'].value }}"
  - name: open-incident
    kind: open_incident
"""


def test_a_step_reading_a_deferred_steps_outputs_waits_and_the_others_run(tmp_path: Path, redis, redis_url,
                                                                         fake_github, fake_toggles, fake_jira):
    """Reading the freeze variable keeps getting 503s: the dispatch, whose REASON reads the freeze's outputs, waits for
    it; the ticket (which does not) opens now. The retry freezes, then dispatches once."""
    playbooks = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", playbooks)
    (playbooks / "model_drift_detected.yaml").write_text(CHAIN)
    settings = integration_settings(redis_url, "github", fake_github, fake_toggles, fake_jira,
                                    job_retry_intervals=BACKOFF, playbooks_dir=str(playbooks))
    # 4: the read's own three retries fail too
    fake_github.fail_next("GET", r"/actions/variables/DEPLOY_FREEZE$", status=503, times=4)
    run_id = first_attempt(settings, redis)
    record = record_of(settings, redis, run_id)
    assert [record.step(n).status for n in ("freeze", "dispatch", "open-incident")] == ["retrying", "retrying", "ok"]
    assert "needs the result of freeze" in (record.step("dispatch").error or "")
    assert fake_github.dispatches == []
    RetryingWorker(settings).drain(timeout=30)
    assert record_of(settings, redis, run_id).status == "succeeded"
    [dispatched] = fake_github.dispatches
    assert dispatched.inputs["REASON"] == "freeze-true"
