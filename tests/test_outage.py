"""A GitHub outage that fails every call for 10 minutes, then recovers (issue 16, "Done when"):
every alert's ticket is opened and every dispatch is done exactly once.

Time runs 60 times faster here: the default retry schedule (10 s, 1, 5, 15, 30 min) becomes
(1/6, 1, 5, 15, 30 s) and the outage 10 s. During it GitHub answers every request 502; every
second write it receives is carried out before it fails (its answer lost), so a retry cannot
tell from the error whether its dispatch, variable or issue exists. The run list still lags
behind dispatches (GitHub lists a new run seconds after it), and the lookup window for lost
dispatches keeps its ratio to that lag. Real Redis, an RQ worker in this process, the GitHub
and Jira fakes over HTTP.
"""

from __future__ import annotations

from collections import Counter

import pytest
from redis import Redis

from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import Worker, integration_settings, load_example, tickets_of
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.toggles import FakeToggles
from tests.support.runs import RetryingWorker, queue_runs

SCALE = 60  # one minute of the real schedule is one second here
OUTAGE_SECONDS = 10 * 60 / SCALE
DEFAULT_INTERVALS = Settings.model_fields["job_retry_intervals"].default
GOVERNANCE, RETRAINING = "model-governance.yml", "model-retraining.yml"
EXPECTED_DISPATCHES = {
    (GOVERNANCE, "fraud-scorer"),  # model_integrity_failed
    (GOVERNANCE, "credit-limit"),  # model_bias_alert
    (RETRAINING, "credit-limit"),  # model_bias_alert, critical: hotfix retraining
    (RETRAINING, "fraud-scorer"),  # model_drift_detected, two segments: one retraining (cooldown)
}
SAMPLES = ("integrity-firing.json", "bias-firing.json", "drift-two-segments-firing.json")
TICKETS = {("model_integrity_failed", "fraud-scorer"), ("model_bias_alert", "credit-limit"),
           ("model_drift_detected", "fraud-scorer")}


@pytest.fixture
def settings(tracker: str, redis_url: str, redis: Redis, fake_github: FakeGitHub, fake_toggles: FakeToggles,
             fake_jira: FakeJira) -> Settings:
    fake_github.list_lag_seconds = 0.5
    return integration_settings(
        redis_url, tracker, fake_github, fake_toggles, fake_jira,
        job_retry_intervals=[seconds / SCALE for seconds in DEFAULT_INTERVALS],
        dispatch_lookup_seconds=1.5,  # three times the list's lag, as the default 60 s is to GitHub's seconds
        github_writes_per_second=0,
    )


def alert_all(settings: Settings, redis: Redis) -> list[str]:
    return [run_id for sample in SAMPLES for run_id in queue_runs(settings, redis, load_example(sample))]


def records(settings: Settings, redis: Redis, run_ids: list[str]) -> list[RunRecord]:
    store = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    return [store.get(run_id) for run_id in run_ids]


def ticket_keys(tracker: str, github: FakeGitHub, jira: FakeJira) -> list[tuple[str, str]]:
    """(alertname, model_id) of each ticket, from the labels responder gives them."""
    keys = []
    for ticket in tickets_of(tracker, github, jira):
        alertname = next(label for label in ticket.labels if label.startswith("model_"))
        model = next(label[len("model:") :] for label in ticket.labels if label.startswith(("model:", "model-")))
        keys.append((alertname, model))
    return keys


def test_after_a_ten_minute_github_outage_every_ticket_is_open_and_every_dispatch_done_once(
    tracker, settings, redis, fake_github, fake_jira
):
    fake_github.outage(OUTAGE_SECONDS, status=502, lose_every=2)
    run_ids = alert_all(settings, redis)
    RetryingWorker(settings).drain(timeout=120)

    done = records(settings, redis, run_ids)
    assert [r.status for r in done] == ["succeeded"] * len(done), [(r.id, r.error) for r in done]
    dispatched = Counter((d.workflow, d.inputs["MODEL_ID"]) for d in fake_github.dispatches)
    assert dispatched == Counter(EXPECTED_DISPATCHES)
    assert sorted(ticket_keys(tracker, fake_github, fake_jira)) == sorted(TICKETS)
    assert fake_github.variables["DEPLOY_FREEZE"] == "true"
    carried_out, _ = fake_github.outage_writes
    assert carried_out > 0  # the outage did lose answers of writes it carried out


def test_with_tickets_in_jira_they_open_during_the_github_outage(redis, redis_url, fake_github, fake_toggles,
                                                                 fake_jira):
    """GitHub down, Jira up: each alert's ticket opens in its run's first attempt, before GitHub is back."""
    settings = integration_settings(redis_url, "jira", fake_github, fake_toggles, fake_jira,
                                    job_retry_intervals=[seconds / SCALE for seconds in DEFAULT_INTERVALS])
    fake_github.outage(120, status=502, lose_every=0)  # longer than the first attempts take (reads retry in the call)
    alert_all(settings, redis)
    Worker(settings).drain()  # first attempts only
    assert sorted(ticket_keys("jira", fake_github, fake_jira)) == sorted(TICKETS)
    assert fake_github.dispatches == []
