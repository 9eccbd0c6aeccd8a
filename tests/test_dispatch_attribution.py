"""A dispatch whose answer was lost, against a GitHub that behaves as the real one: a new run is
listed seconds after its dispatch, titled from the workflow's run-name, and a GitHub Enterprise
Server may not name the run it started. Real Redis, the GitHub fake over HTTP, PyGithub.

Issue 16: a lost dispatch must not adopt another model's run (1), an ambiguous retraining
dispatch keeps its cooldown (2), and two runs racing to create DEPLOY_FREEZE both succeed (5).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from redis import Redis
from rq import Queue

from responder.playbooks.runner import run_playbook
from responder.runs import RunRecord, RunStore
from responder.runtime import Runtime
from responder.settings import Settings
from tests.conftest import Worker, github_repo, load_example, make_settings, wait_until
from tests.fakes.github import FakeGitHub
from tests.support.github import GOVERNANCE, LIST_LAG_SECONDS, LOOKUP_SECONDS
from tests.support.runs import MANIFEST_DIGEST, RetryingWorker, integrity, manifest_digest, queue_runs

BACKOFF = [4, 4]  # a retry comes after the list lag (at least 3 s, with the jitter), as production's 10 s does


def github_settings(redis_url: str, fake: FakeGitHub, **values: Any) -> Settings:
    options: dict[str, Any] = {"job_retry_intervals": BACKOFF, "dispatch_lookup_seconds": LOOKUP_SECONDS}
    return make_settings(redis_url, github_api_url=fake.url, github_token=fake.token, github_repo=fake.full_name,
                         **(options | values))


def deliver(settings: Settings, redis: Redis, payload: dict[str, Any], worker: Worker | None = None) -> list[RunRecord]:
    """Queue the notification's runs and work them off, retries included; their records."""
    job_ids = queue_runs(settings, redis, payload)
    (worker or RetryingWorker(settings)).drain()
    return [RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(j) for j in job_ids]


def alert_for(sample: str, model_id: str, version: str, fingerprint: str) -> dict[str, Any]:
    """The sample's alert for ``model_id`` at ``version``; an integrity alert's deployed digest is
    the model's in the manifest (no rollback proposed)."""
    payload = load_example(sample)
    [alert] = payload["alerts"]
    if sample == "integrity-firing.json":
        alert["annotations"]["deployed_digest"] = manifest_digest(model_id)
    alert["labels"].update(model_id=model_id, model_version=version)
    alert["fingerprint"] = fingerprint
    return payload


def governance_models(fake: FakeGitHub) -> list[str]:
    return [d.inputs["MODEL_ID"] for d in fake.dispatches if d.workflow == GOVERNANCE]


@pytest.fixture(autouse=True)
def listing_lags(fake_github: FakeGitHub) -> None:
    """Whatever the fake's default, GitHub here lists a run LIST_LAG_SECONDS after its dispatch."""
    fake_github.list_lag_seconds = LIST_LAG_SECONDS


@pytest.fixture
def settings(redis, redis_url, fake_github) -> Settings:
    return github_settings(redis_url, fake_github)


def test_a_lost_dispatch_does_not_adopt_a_run_dispatched_by_hand_for_another_model(settings, redis, fake_github):
    """Someone runs governance for credit-limit by hand; fraud-scorer's dispatch gets a plain 502:
    the retry leaves credit-limit's run alone and dispatches fraud-scorer's once the list shows none."""
    github_repo(fake_github).get_workflow(GOVERNANCE).create_dispatch(
        "main", {"MODEL_ID": "credit-limit", "MODEL_VERSION": "3.2.0", "REASON": "manual"}, throw=True
    )
    fake_github.fail_next("POST", r"/dispatches$", status=502)
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
    step = run.step("dispatch-governance")
    assert ["credit-limit", "fraud-scorer"] == governance_models(fake_github)
    assert ("ok", fake_github.dispatches[1].html_url) == (step.status, step.url)
    assert "no run naming fraud-scorer" in step.detail


def test_on_ghes_a_lost_dispatch_does_not_adopt_another_models_answered_dispatch(settings, redis, fake_github):
    """On a GitHub Enterprise Server that answers 204 without the run, credit-limit's dispatch leaves
    its run unnamed; fraud-scorer's dispatch then gets a plain 502 and does not take that run."""
    fake_github.run_details = "ignored"
    deliver(settings, redis, load_example("bias-firing.json"))  # governance and hotfix for credit-limit
    fake_github.fail_next("POST", r"/dispatches$", status=502)
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
    assert ["credit-limit", "fraud-scorer"] == governance_models(fake_github)
    assert "ok" == run.step("dispatch-governance").status


def test_a_retraining_dispatch_whose_answer_was_lost_keeps_its_cooldown(settings, redis, fake_github):
    """Two drifting segments of one model: the first run's retraining dispatch gets a 502 after
    GitHub created the run; the sibling run is held off by the cooldown and the first run adopts
    the run it started. One retraining run."""
    fake_github.fail_next("POST", r"/dispatches$", status=502, after_write=True)
    first, sibling = deliver(settings, redis, load_example("drift-two-segments-firing.json"))
    assert 1 == len(fake_github.dispatches)
    assert "after a lost answer" in first.step("dispatch-retraining").detail
    assert first.step("dispatch-retraining").url == fake_github.dispatches[0].html_url
    assert "skipped" == sibling.step("dispatch-retraining").status


def test_a_retraining_dispatch_that_github_never_got_is_sent_again_by_the_run_holding_the_cooldown(
    settings, redis, fake_github
):
    """A plain 502: the cooldown stays with the run that took it, which dispatches again once the
    run list has shown nothing for the lookup window; the sibling is skipped. One retraining run."""
    fake_github.fail_next("POST", r"/dispatches$", status=502)
    first, sibling = deliver(settings, redis, load_example("drift-two-segments-firing.json"))
    assert 1 == len(fake_github.dispatches)
    assert ("ok", fake_github.dispatches[0].html_url) == (first.step("dispatch-retraining").status,
                                                           first.step("dispatch-retraining").url)
    assert "skipped" == sibling.step("dispatch-retraining").status


def test_two_lost_dispatches_for_one_model_adopt_its_one_run_at_most_once_and_say_so(settings, redis, fake_github):
    """Two integrity runs of one model lose their dispatch answers; GitHub started one run. One
    run adopts it and says the other lost dispatch may have been its origin; the other dispatches again."""
    fake_github.fail_next("POST", r"/dispatches$", status=502, after_write=True)
    fake_github.fail_next("POST", r"/dispatches$", status=502)
    payload = integrity(MANIFEST_DIGEST)
    payload["alerts"].append(alert_for("integrity-firing.json", "fraud-scorer", "2026.11.1", "2222222222222222")
                             ["alerts"][0])
    runs = deliver(settings, redis, payload)
    steps = [r.step("dispatch-governance") for r in runs]
    assert 2 == len(fake_github.dispatches)
    assert {d.html_url for d in fake_github.dispatches} == {s.url for s in steps}
    [adopted] = [s for s in steps if "after a lost answer" in s.detail and "found run" in s.detail]
    assert "another dispatch" in adopted.detail


def test_a_workflow_without_run_name_cannot_be_attributed_and_is_dispatched_again(redis, redis_url):
    """Runs of a workflow without run-name are titled with its name only: the lost dispatch's run
    cannot be told from anybody's, so it is sent again and the step says why."""
    with FakeGitHub(run_names={GOVERNANCE: None}, list_lag_seconds=LIST_LAG_SECONDS) as fake:
        fake.set_manifest(load_example("model-manifest.json"))
        settings = github_settings(redis_url, fake)
        fake.fail_next("POST", r"/dispatches$", status=502, after_write=True)
        [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
        assert ["model-governance"] * 2 == [d.display_title for d in fake.dispatches]
        step = run.step("dispatch-governance")
        assert step.url == fake.dispatches[1].html_url
        assert "run-name" in step.detail


def test_waiting_for_the_run_list_is_rescheduled_not_held_in_the_worker(redis, redis_url, fake_github):
    """A retry that finds the list not caught up yet frees the worker: the run is retried when the
    lookup window ends, instead of a worker sleeping through it."""
    settings = github_settings(redis_url, fake_github, job_retry_intervals=[0, 0])
    fake_github.fail_next("POST", r"/dispatches$", status=502, after_write=True)
    started = time.monotonic()
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST), worker=Worker(settings))
    assert time.monotonic() - started < 2
    assert "retrying" == run.status
    assert "looking again in" in (run.step("dispatch-governance").error or "")
    [retry] = Queue(settings.queue, connection=redis).scheduled_job_registry.get_job_ids()
    assert retry == f"{run.id}-retry2"


def test_on_the_final_attempt_the_step_waits_for_the_run_list(redis, redis_url, fake_github):
    """With no retry left, the step reads the list in the worker until the lost dispatch's run shows."""
    settings = github_settings(redis_url, fake_github, job_retry_intervals=[0])
    fake_github.fail_next("POST", r"/dispatches$", status=502, after_write=True)
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
    assert 1 == len(fake_github.dispatches)
    assert ("succeeded", 2) == (run.status, run.attempts)
    assert run.step("dispatch-governance").url == fake_github.dispatches[0].html_url


def test_a_ghes_refusing_return_run_details_is_dispatched_without_it(settings, redis, fake_github):
    """A GitHub Enterprise Server that answers 422 to return_run_details gets the dispatch again without it."""
    fake_github.run_details = "rejected"
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
    posts = [r for r in fake_github.requests if r.method == "POST" and r.path.endswith("/dispatches")]
    assert [422, 204] == [r.status for r in posts]
    assert [True, False] == ["return_run_details" in r.body for r in posts]
    assert ("ok", 1) == (run.step("dispatch-governance").status, len(fake_github.dispatches))


def test_a_dispatch_answered_before_its_worker_died_is_not_sent_again(settings, redis, fake_github):
    """The worker died after GitHub answered the dispatch but before the step's result was saved:
    the step runs again and returns that answer instead of dispatching a second time."""
    [run] = deliver(settings, redis, integrity(MANIFEST_DIGEST))
    store = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    answered = run.step("dispatch-governance")
    run.steps = [s for s in run.steps if s.name != "dispatch-governance"]  # as if never checkpointed
    store.save(run)
    rerun = run_playbook(Runtime.build(settings), run.id, final_attempt=True)
    assert 1 == len(fake_github.dispatches)
    assert (answered.detail, answered.url) == (rerun.step("dispatch-governance").detail,
                                               rerun.step("dispatch-governance").url)


def test_two_integrity_runs_racing_to_create_the_freeze_both_succeed(redis, redis_url, fake_github):
    """Both runs read DEPLOY_FREEZE absent; one creates it, the other's create gets GitHub's 409
    "Already exists": it reads again, finds "true" and succeeds."""
    settings = github_settings(redis_url, fake_github, job_retry_intervals=[])
    first_id, second_id = (
        queue_runs(settings, redis, alert_for("integrity-firing.json", model, version, fingerprint))[0]
        for model, version, fingerprint in (("fraud-scorer", "2026.11.1", "1111111111111111"),
                                            ("credit-limit", "3.2.0", "2222222222222222"))
    )
    # The first run's read is answered late, with what was true when it arrived: no variable yet.
    fake_github.fail_next("GET", r"/actions/variables/DEPLOY_FREEZE$", status=None, delay=1.5)
    records: dict[str, RunRecord] = {}

    def work(run_id: str) -> None:  # each run on a runtime of its own, as on two workers
        records[run_id] = run_playbook(Runtime.build(settings), run_id, final_attempt=True)

    first = threading.Thread(target=work, args=(first_id,))
    first.start()
    wait_until(lambda: any("DEPLOY_FREEZE" in r.path for r in fake_github.requests), "the first run's read")
    work(second_id)
    first.join(timeout=30)
    creates = [r.status for r in fake_github.requests if r.method == "POST" and r.path.endswith("/variables")]
    assert [201, 409] == creates
    assert ("succeeded", "succeeded") == (records[first_id].status, records[second_id].status)
    assert "DEPLOY_FREEZE=true (already set)" == records[first_id].step("freeze-deploys").detail
    assert {"DEPLOY_FREEZE": "true"} == fake_github.variables
