"""Jira Cloud's search lags writes (issue 16, item 3): responder still opens one ticket per
(alertname, model_id), and never comments on a ticket that was closed.

Real Redis, a real RQ worker in-process, and FakeJira over HTTP with its enhanced search
``LAG`` seconds behind writes, as Jira Cloud's is (``reconcileIssues`` excepted); the Data
Center search is consistent.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from redis import Redis

from responder.errors import TransientError
from responder.integrations.base import TicketKey
from responder.integrations.jira import JiraTracker
from responder.integrations.jira_ledger import RECONCILE_MAX, TicketLedger
from tests.conftest import Worker, integration_settings
from tests.fakes.jira import FakeJira
from tests.support.jira import CLOUD_SEARCH, DC_SEARCH, DRIFT, make_draft, make_ledger, make_tracker, raised
from tests.support.runs import MANIFEST_DIGEST, integrity, refired, run_in_env

LAG = 2.0
ISSUE_PATH = "/rest/api/2/issue"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    """A Jira Cloud fake whose enhanced search is LAG seconds behind."""
    with FakeJira(search_lag_seconds=LAG) as fake:
        yield fake


@pytest.fixture
def jira_dc() -> Iterator[FakeJira]:
    """A Jira Data Center fake (its v2 search is consistent whatever the lag says)."""
    with FakeJira(user=None, token="dc-personal-access-token", search_lag_seconds=LAG) as fake:
        yield fake


@pytest.fixture
def ledger(redis: Redis) -> TicketLedger:
    return make_ledger(redis)


@pytest.fixture
def tracker(jira: FakeJira, ledger: TicketLedger) -> JiraTracker:
    return make_tracker(jira, ledger)


@pytest.fixture(params=["cloud", "data-center"])
def env(request, redis, redis_url, fake_github, fake_toggles, jira, jira_dc) -> dict[str, Any]:
    """Responder with tickets in Jira Cloud or Data Center, a worker, and the fakes."""
    cloud = request.param == "cloud"
    fake = jira if cloud else jira_dc
    settings = integration_settings(redis_url, "jira", fake_github, fake_toggles, fake)
    return {
        "settings": settings,
        "redis": redis,
        "worker": Worker(settings),
        "github": fake_github,
        "jira": fake,
        "search_lag": LAG if cloud else 0.0,  # how far the search responder uses lags writes
    }


def authorization(fake: FakeJira) -> dict[str, str]:
    """The Authorization header the fake takes: Basic user:token on Cloud, Bearer token on Data Center."""
    if fake.user is None:
        return {"Authorization": f"Bearer {fake.token}"}
    return {"Authorization": "Basic " + base64.b64encode(f"{fake.user}:{fake.token}".encode()).decode()}


def searches(fake: FakeJira, path: str = CLOUD_SEARCH) -> list[Any]:
    return [r.body for r in fake.requests if r.path.split("?")[0] == path]


def search(fake: FakeJira, **body: Any) -> list[str]:
    """Keys of the open responder tickets the enhanced search answers (POST with ``body`` added)."""
    jql = 'project = "MLOPS" AND labels = "responder" AND statusCategory != Done'
    answer = requests.post(fake.url + CLOUD_SEARCH, json={"jql": jql, **body}, headers=authorization(fake), timeout=5)
    answer.raise_for_status()
    return [issue["key"] for issue in answer.json()["issues"]]


def create_issue_by_hand(fake: FakeJira, key: TicketKey) -> str:
    """An issue carrying ``key``'s labels, created by a person (responder has no record of it)."""
    fields = {
        "project": {"key": fake.project},
        "summary": "made by hand",
        "issuetype": {"name": "Task"},
        "labels": ["responder", key.alertname, f"model-{key.model_id}"],
    }
    answer = requests.post(fake.url + ISSUE_PATH, json={"fields": fields}, headers=authorization(fake), timeout=5)
    answer.raise_for_status()
    return str(answer.json()["key"])


# --------------------------------------------------------------------------- responder end to end


def test_two_alerts_of_one_model_seconds_apart_open_one_issue(env):
    """A second firing of the model before the search shows the first ticket comments on it."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    run_in_env(env, refired(integrity(MANIFEST_DIGEST)))

    assert [(i.key, len(i.comments)) for i in env["jira"].issues] == [("MLOPS-1", 1)]


def test_a_ticket_closed_by_a_person_gets_a_new_ticket_on_the_next_firing(env):
    """Closed a moment ago (the search still shows it open), the ticket gets no comment: a new one is opened."""
    run_in_env(env, integrity(MANIFEST_DIGEST))
    time.sleep(env["search_lag"])  # the search has caught up with the create, so it will lag only the close
    env["jira"].set_status("MLOPS-1", "Done")

    run_in_env(env, refired(integrity(MANIFEST_DIGEST)))

    assert [(i.key, i.status_category, len(i.comments)) for i in env["jira"].issues] == [
        ("MLOPS-1", "done", 0),
        ("MLOPS-2", "new", 0),
    ]


# --------------------------------------------------------------------------- the tracker on Cloud


def test_a_cloud_search_reconciles_the_issue_just_created(jira: FakeJira, tracker: JiraTracker) -> None:
    """The search after a create lists the new issue's id in reconcileIssues, and finds it."""
    opened = tracker.open(make_draft())

    found = tracker.search_open(alertname=DRIFT.alertname)

    assert found == [opened]
    assert searches(jira)[-1]["reconcileIssues"] == [10001]


def test_reconcile_issues_holds_the_newest_fifty_issues_written(jira: FakeJira, tracker: JiraTracker) -> None:
    """Jira reconciles at most 50 issues: the ids of the 50 newest writes are sent, newest first."""
    for n in range(RECONCILE_MAX + 1):
        tracker.open(make_draft(TicketKey(f"Alert{n}", "churn-xgb")))

    tracker.search_open(model_id="churn-xgb")

    assert searches(jira)[-1]["reconcileIssues"] == list(range(10051, 10001, -1))


def test_find_open_reads_the_remembered_ticket_by_key_without_searching(jira: FakeJira, tracker: JiraTracker) -> None:
    """The ticket responder opened for a key is read back by its key, which Jira answers consistently."""
    opened = tracker.open(make_draft())

    assert tracker.find_open(DRIFT) == opened
    assert [(r.method, r.path.split("?")[0]) for r in jira.requests] == [
        ("POST", ISSUE_PATH),
        ("GET", "/rest/api/2/issue/MLOPS-1"),
    ]


def test_a_remembered_ticket_without_its_key_labels_is_not_the_keys_ticket(
    jira: FakeJira, tracker: JiraTracker
) -> None:
    """A person took the model label off the remembered ticket: it is no longer this key's ticket."""
    opened = tracker.open(make_draft())
    jira.set_labels(opened.ref, "responder", DRIFT.alertname)

    assert tracker.find_open(DRIFT) is None


def test_a_ticket_responder_closed_is_not_listed_by_the_next_search(jira: FakeJira, tracker: JiraTracker) -> None:
    """Closing notes the issue as written, so the next search sees it closed although the index lags."""
    key = create_issue_by_hand(jira, DRIFT)
    time.sleep(LAG)  # the search shows the hand-made issue now, and has no newer write of it to lag
    [ticket] = tracker.search_open(alertname=DRIFT.alertname)

    tracker.close(ticket)

    assert (ticket.ref, tracker.search_open(alertname=DRIFT.alertname)) == (key, [])


def test_after_a_lost_create_answer_find_open_waits_for_the_search_to_show_it(
    jira: FakeJira, tracker: JiraTracker
) -> None:
    """A create that happened but whose answer was lost is found, though the search shows it only later."""
    jira.fail_next("POST", r"^/rest/api/2/issue$", status=502, after_write=True)
    assert isinstance(raised(lambda: tracker.open(make_draft())), TransientError)

    found = tracker.find_open(DRIFT)

    assert found is not None and found.ref == "MLOPS-1"


def test_after_a_refused_create_find_open_does_not_wait(jira: FakeJira, tracker: JiraTracker) -> None:
    """A create Jira refused (a 4xx) created nothing: find_open searches once and answers none."""
    jira.fail_next("POST", r"^/rest/api/2/issue$", status=400)
    raised(lambda: tracker.open(make_draft()))

    assert tracker.find_open(DRIFT) is None
    assert len(searches(jira)) == 1


# --------------------------------------------------------------------------- the tracker on Data Center


def test_data_center_searches_carry_no_reconcile_issues_and_find_the_new_ticket(
    jira_dc: FakeJira, ledger: TicketLedger
) -> None:
    """The v2 search is consistent: no reconcileIssues is sent, and the ticket just opened is found."""
    tracker = make_tracker(jira_dc, ledger)
    opened = tracker.open(make_draft())

    assert tracker.search_open(alertname=DRIFT.alertname) == [opened]
    assert "reconcileIssues" not in searches(jira_dc, DC_SEARCH)[-1]


# --------------------------------------------------------------------------- the fake itself


def test_the_fake_search_hides_an_issue_younger_than_its_lag(jira: FakeJira) -> None:
    """An issue created a moment ago is not in the enhanced search's answer."""
    create_issue_by_hand(jira, DRIFT)

    assert search(jira) == []


def test_the_fake_search_shows_a_young_issue_listed_in_reconcile_issues(jira: FakeJira) -> None:
    """Listing the new issue's id in reconcileIssues makes the search show it at once."""
    create_issue_by_hand(jira, DRIFT)

    assert search(jira, reconcileIssues=[10001]) == ["MLOPS-1"]


def test_the_fake_get_search_takes_reconcile_issues_as_query_parameters(jira: FakeJira) -> None:
    """GET /search/jql reconciles the ids of repeated or comma-separated reconcileIssues parameters."""
    for _ in range(3):
        create_issue_by_hand(jira, DRIFT)
    query = {"jql": 'project = "MLOPS" ORDER BY created ASC', "reconcileIssues": ["10001,10002", "10003"]}

    answer = requests.get(jira.url + CLOUD_SEARCH, params=query, headers=authorization(jira), timeout=5)

    assert [issue["key"] for issue in answer.json()["issues"]] == ["MLOPS-1", "MLOPS-2", "MLOPS-3"]


def test_the_fake_search_shows_a_recently_closed_issue_still_open(jira: FakeJira) -> None:
    """A transition to done a moment ago is not seen by the search, unless the issue is reconciled."""
    create_issue_by_hand(jira, DRIFT)
    time.sleep(LAG)
    jira.set_status("MLOPS-1", "Done")

    assert (search(jira), search(jira, reconcileIssues=[10001])) == (["MLOPS-1"], [])


def test_the_fake_refuses_more_than_fifty_reconcile_issues(jira: FakeJira) -> None:
    """Like Jira Cloud, the fake reconciles at most 50 issues per search and answers 400 beyond."""
    with pytest.raises(requests.HTTPError) as info:
        search(jira, reconcileIssues=list(range(10001, 10052)))

    assert info.value.response.status_code == 400


def test_the_fake_data_center_search_is_consistent(jira_dc: FakeJira) -> None:
    """The v2 search shows an issue created a moment ago, whatever the enhanced search's lag."""
    create_issue_by_hand(jira_dc, DRIFT)

    answer = requests.post(
        jira_dc.url + DC_SEARCH,
        json={"jql": 'project = "MLOPS"'},
        headers=authorization(jira_dc),
        timeout=5,
    )

    assert [issue["key"] for issue in answer.json()["issues"]] == ["MLOPS-1"]
