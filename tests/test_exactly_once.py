"""Exactly-once side effects per firing instance under retries and ambiguous failures
(the write happened, the answer was lost)."""

from __future__ import annotations

import pytest

from tests.conftest import integration_settings, load_example, tickets_of
from tests.support.github import LOOKUP_SECONDS
from tests.support.runs import MANIFEST_DIGEST, RetryingWorker, integrity, manifest_digest, run_in_env


@pytest.fixture(params=["github", "jira"])
def env(request, redis, redis_url, fake_github, fake_toggles, fake_jira):
    # GitHub lists a dispatched run seconds later: a lost dispatch is settled by a retry scheduled
    # for the end of the lookup window, which the worker here runs when it comes due.
    settings = integration_settings(redis_url, request.param, fake_github, fake_toggles, fake_jira,
                                    job_retry_intervals=[0, 0], dispatch_lookup_seconds=LOOKUP_SECONDS)
    return {"settings": settings, "redis": redis, "worker": RetryingWorker(settings), "tracker": request.param,
            "github": fake_github, "jira": fake_jira}


def fail_ticket_create_after_write(env) -> None:
    if env["tracker"] == "jira":
        env["jira"].fail_next("POST", r"/rest/api/2/issue$", status=502, after_write=True)
    else:
        env["github"].fail_next("POST", r"/issues$", status=502, after_write=True)


def test_lost_answer_to_ticket_create_opens_one_ticket(env):
    """A 502 after the tracker created the ticket: the retry finds it; one ticket, no "fired again"."""
    fail_ticket_create_after_write(env)
    [run] = run_in_env(env, integrity(MANIFEST_DIGEST))
    [ticket] = tickets_of(env["tracker"], env["github"], env["jira"])
    assert ticket.comments == []
    assert run.status == "succeeded"
    assert "found again after a lost answer" in run.step("open-incident").detail


def test_retry_after_lost_ticket_answer_repeats_no_done_step(env):
    """The retry of that run dispatches and sets the variable no second time."""
    fail_ticket_create_after_write(env)
    run_in_env(env, integrity(MANIFEST_DIGEST))
    variable_writes = [r for r in env["github"].requests if "/actions/variables" in r.path and r.method != "GET"]
    assert len(env["github"].dispatches) == 1
    assert len(variable_writes) == 1


def test_lost_answer_to_variable_create_is_found_on_retry(env):
    """A 502 after GitHub created DEPLOY_FREEZE: the retry reads it back as already set."""
    env["github"].fail_next("POST", r"/actions/variables$", status=502, after_write=True)
    [run] = run_in_env(env, integrity(MANIFEST_DIGEST))
    assert run.step("freeze-deploys").detail == "DEPLOY_FREEZE=true (already set)"
    assert env["github"].variables == {"DEPLOY_FREEZE": "true"}


def test_lost_answer_to_a_dispatch_dispatches_once(env):
    """A 502 after GitHub accepted the dispatch: the retry finds the run it started and sends no second one."""
    env["github"].fail_next("POST", r"/dispatches$", status=502, after_write=True)
    [run] = run_in_env(env, integrity(MANIFEST_DIGEST))
    assert len(env["github"].dispatches) == 1
    step = run.step("dispatch-governance")
    assert step.status == "ok"
    assert step.url == env["github"].dispatches[0].html_url
    assert "after a lost answer" in step.detail


def test_a_claimed_dispatch_run_is_forgotten_after_the_retention(env):
    """Claims are one key per workflow run, each expiring on its own: nothing grows without bound."""
    env["github"].fail_next("POST", r"/dispatches$", status=502, after_write=True)
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_id = env["github"].dispatches[0].html_url.rsplit("/", 1)[1]
    ttl = env["redis"].ttl(f"responder:dispatch-claimed:{run_id}")
    assert 0 < ttl <= env["settings"].dedup_retention_seconds


def test_dispatch_that_never_reached_github_is_sent_on_retry(env):
    """A 502 before GitHub did anything: the retry finds no run and dispatches."""
    env["github"].fail_next("POST", r"/dispatches$", status=502)
    [run] = run_in_env(env, integrity(MANIFEST_DIGEST))
    assert len(env["github"].dispatches) == 1
    assert run.step("dispatch-governance").status == "ok"


def test_a_lost_dispatch_does_not_claim_another_runs_dispatch(env):
    """A run already answered for another alert is not taken as the lost one."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    other = integrity(MANIFEST_DIGEST)
    other["alerts"][0]["labels"]["model_id"] = "credit-limit"
    other["alerts"][0]["labels"]["model_version"] = "3.2.0"
    other["alerts"][0]["fingerprint"] = "1111111111111111"
    other["alerts"][0]["annotations"]["deployed_digest"] = manifest_digest("credit-limit")
    env["github"].fail_next("POST", r"/dispatches$", status=502)
    run_in_env(env, other)
    assert [d.inputs["MODEL_ID"] for d in env["github"].dispatches] == ["fraud-scorer", "credit-limit"]


def test_a_lost_retraining_dispatch_found_on_retry_holds_the_cooldown(env):
    """A retraining dispatch whose answer was lost, found by the retry, counts as dispatched: a
    re-fire of that model within the cooldown is skipped, not dispatched again."""
    env["github"].fail_next("POST", r"/dispatches$", status=502, after_write=True)
    payload = load_example("drift-two-segments-firing.json")
    payload["alerts"] = payload["alerts"][:1]
    [run] = run_in_env(env, payload)
    assert "after a lost answer" in run.step("dispatch-retraining").detail
    payload["alerts"][0]["startsAt"] = "2031-01-01T00:00:00Z"  # a new firing instance of the same model
    payload["alerts"][0]["fingerprint"] = "2222222222222222"
    [refire] = run_in_env(env, payload)
    assert refire.step("dispatch-retraining").status == "skipped"
    assert "cooldown until" in refire.step("dispatch-retraining").detail
    assert len(env["github"].dispatches) == 1
