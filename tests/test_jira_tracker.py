"""JiraTracker against FakeJira over loopback HTTP: tickets, search, transitions and errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from redis import Redis

from responder.document import Document, Heading, Table, para, render_jira
from responder.errors import PermanentError, TransientError
from responder.integrations.base import Ticket, TicketKey, Tracker
from responder.integrations.jira import JiraTracker
from responder.integrations.jira_ledger import TicketLedger
from tests.conftest import free_port
from tests.fakes.jira import FakeJira, Transition
from tests.support.jira import CLOUD_SEARCH, DC_SEARCH, DRIFT, make_draft, make_ledger, make_tracker, raised


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    """A Jira Cloud fake (Basic auth with an account e-mail and API token)."""
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def jira_dc() -> Iterator[FakeJira]:
    """A Jira Data Center fake (Bearer personal access token, no user)."""
    with FakeJira(user=None, token="dc-personal-access-token") as fake:
        yield fake


@pytest.fixture
def ledger(redis: Redis) -> TicketLedger:
    """A ticket ledger on the flushed test Redis, waiting out a search lag a little longer than the fake's."""
    return make_ledger(redis)


@pytest.fixture
def tracker(jira: FakeJira, ledger: TicketLedger) -> JiraTracker:
    return make_tracker(jira, ledger)


def searches(fake: FakeJira, path: str) -> list[Any]:
    """Bodies of the search requests sent to ``path``."""
    return [r.body for r in fake.requests if r.path.split("?")[0] == path]


# --------------------------------------------------------------------------- open


def test_open_creates_an_issue_with_the_key_labels_and_the_draft_labels(jira: FakeJira, tracker: JiraTracker) -> None:
    """Opening a ticket creates a Task labelled responder, the alertname, model-<id> and the draft's labels."""
    ticket = tracker.open(make_draft(labels=("sev-2",)))

    [issue] = jira.issues
    assert ticket == Ticket(ref="MLOPS-1", url=f"{jira.url}/browse/MLOPS-1", title="Drift on churn-xgb", state="open")
    assert issue.labels == ["responder", "ModelDrift", "model-churn-xgb", "sev-2"]
    assert (issue.issue_type, issue.status, issue.status_category) == ("Task", "To Do", "new")


def test_labels_with_whitespace_get_dashes_when_written_and_searched(jira: FakeJira, tracker: JiraTracker) -> None:
    """Whitespace in any label becomes '-', and the ticket is still found by its key."""
    key = TicketKey("Model Drift", "churn xgb")
    ticket = tracker.open(make_draft(key, labels=("needs  triage",)))

    assert jira.issues[0].labels == ["responder", "Model-Drift", "model-churn-xgb", "needs-triage"]
    assert tracker.search_open(alertname=key.alertname, model_id=key.model_id) == [ticket]


def test_a_long_title_is_cut_to_255_characters_ending_with_an_ellipsis(jira: FakeJira, tracker: JiraTracker) -> None:
    """A summary longer than Jira's 255 characters is cut and ends with '…'."""
    ticket = tracker.open(make_draft(title="x" * 300))

    summary = jira.issues[0].summary
    assert (len(summary), summary[-1], ticket.title) == (255, "…", summary)


def test_the_description_is_wiki_markup_with_untrusted_text_escaped(jira: FakeJira, tracker: JiraTracker) -> None:
    """Alert text in the description cannot form a macro, a mention or bold text."""
    hostile = "{code}x{code} [~admin] *bold*"
    body = Document.of(Heading("Alert"), Table(("label", "value"), (("team", hostile),)), para("Seen: ", hostile))
    tracker.open(make_draft(body=body))

    description = jira.issues[0].description
    assert description == render_jira(body)
    assert description is not None
    for markup in ("{code}", "[~admin]", "*bold*"):
        assert markup not in description


# --------------------------------------------------------------------------- find and search


def test_find_open_returns_the_open_ticket_of_the_key(jira: FakeJira, tracker: JiraTracker) -> None:
    """find_open finds the ticket opened for the same alertname and model."""
    opened = tracker.open(make_draft())

    assert tracker.find_open(DRIFT) == opened


def test_find_open_ignores_another_models_ticket_and_done_tickets(jira: FakeJira, tracker: JiraTracker) -> None:
    """find_open neither returns another model's ticket nor one already Done."""
    tracker.open(make_draft(TicketKey("ModelDrift", "fraud-lgbm")))
    done = tracker.open(make_draft())
    jira.set_status(done.ref, "Done")

    assert tracker.find_open(DRIFT) is None


def test_search_open_by_model_only_returns_every_open_ticket_of_the_model(tracker: JiraTracker) -> None:
    """Filtering by model only finds that model's open tickets of any alert, newest first."""
    drift = tracker.open(make_draft())
    bias = tracker.open(make_draft(TicketKey("ModelBias", "churn-xgb")))
    tracker.open(make_draft(TicketKey("ModelDrift", "fraud-lgbm")))

    assert [t.ref for t in tracker.search_open(model_id="churn-xgb")] == [bias.ref, drift.ref]


def test_search_open_by_alertname_only_returns_that_alerts_tickets(tracker: JiraTracker) -> None:
    """Filtering by alertname only finds that alert's open tickets of any model, newest first."""
    churn = tracker.open(make_draft())
    tracker.open(make_draft(TicketKey("ModelBias", "churn-xgb")))
    fraud = tracker.open(make_draft(TicketKey("ModelDrift", "fraud-lgbm")))

    assert [t.ref for t in tracker.search_open(alertname="ModelDrift")] == [fraud.ref, churn.ref]


def test_search_open_returns_the_summary_as_title(tracker: JiraTracker) -> None:
    """A found ticket carries its summary as title and its browse URL."""
    opened = tracker.open(make_draft(title="Drift  on\nchurn-xgb"))

    [found] = tracker.search_open()
    assert (found.title, found.url) == ("Drift on churn-xgb", opened.url)


def test_jql_string_literals_escape_quotes_and_backslashes(jira: FakeJira, tracker: JiraTracker) -> None:
    """An alertname holding '"' and '\\' is quoted correctly in JQL and still matches its ticket."""
    key = TicketKey('Drift"Q\\', "churn-xgb")
    opened = tracker.open(make_draft(key))

    assert tracker.search_open(alertname=key.alertname, model_id=key.model_id) == [opened]
    assert 'labels = "Drift\\"Q\\\\"' in searches(jira, CLOUD_SEARCH)[-1]["jql"]


# --------------------------------------------------------------------------- Cloud and Data Center


def test_cloud_uses_basic_auth_and_the_enhanced_search(jira: FakeJira, tracker: JiraTracker) -> None:
    """With a user, requests carry Basic user:token and search uses /rest/api/3/search/jql."""
    tracker.search_open(alertname="ModelDrift", model_id="churn-xgb")

    [request] = jira.requests
    basic = base64.b64encode(f"{jira.user}:{jira.token}".encode()).decode()
    assert (request.method, request.path) == ("POST", CLOUD_SEARCH)
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert request.body == {
        "jql": 'project = "MLOPS" AND labels = "responder" AND labels = "ModelDrift" '
        'AND labels = "model-churn-xgb" AND statusCategory != Done ORDER BY created DESC',
        "fields": ["summary"],
        "maxResults": 50,
    }


def test_data_center_uses_a_bearer_token_and_the_v2_search(jira_dc: FakeJira, ledger: TicketLedger) -> None:
    """Without a user, requests carry Bearer <token> and search uses /rest/api/2/search."""
    tracker = make_tracker(jira_dc, ledger)
    opened = tracker.open(make_draft())

    assert tracker.search_open(alertname=DRIFT.alertname, model_id=DRIFT.model_id) == [opened]
    request = jira_dc.requests[-1]
    assert (request.method, request.path) == ("POST", DC_SEARCH)
    assert request.headers["Authorization"] == "Bearer dc-personal-access-token"
    assert request.body["startAt"] == 0


def test_search_path_overrides_the_search_endpoint(jira: FakeJira, ledger: TicketLedger) -> None:
    """search_path sends Cloud searches to the given endpoint, paged the way that endpoint pages."""
    tracker = make_tracker(jira, ledger, search_path=DC_SEARCH)
    opened = tracker.open(make_draft())

    assert tracker.search_open(alertname=DRIFT.alertname, model_id=DRIFT.model_id) == [opened]
    assert [r.path for r in jira.requests] == ["/rest/api/2/issue", DC_SEARCH]


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud-nextPageToken", "data-center-startAt"])
def test_search_follows_every_page(jira: FakeJira, jira_dc: FakeJira, ledger: TicketLedger, cloud: bool) -> None:
    """Search results spread over several pages are all returned, newest first."""
    fake, path = (jira, CLOUD_SEARCH) if cloud else (jira_dc, DC_SEARCH)
    fake.max_results_cap = 2
    tracker = make_tracker(fake, ledger)
    opened = [tracker.open(make_draft(TicketKey(f"Alert{n}", "churn-xgb"))) for n in range(5)]

    found = tracker.search_open(model_id="churn-xgb")

    assert [t.ref for t in found] == [t.ref for t in reversed(opened)]
    pages = searches(fake, path)
    if cloud:
        assert ["nextPageToken" in page for page in pages] == [False, True, True]
    else:
        assert [page["startAt"] for page in pages] == [0, 2, 4]


# --------------------------------------------------------------------------- comment and close


def test_comment_posts_wiki_markup_and_links_to_the_comment(jira: FakeJira, tracker: JiraTracker) -> None:
    """A comment is posted as wiki markup and the outcome links to it."""
    ticket = tracker.open(make_draft())
    body = Document.paragraph("Rolled back to *v41*.")

    outcome = tracker.comment(ticket, body)

    assert jira.issues[0].comments == [render_jira(body)]
    assert outcome.detail == "commented on MLOPS-1"
    assert outcome.url == f"{jira.url}/browse/MLOPS-1?focusedCommentId=10100"


def test_close_transitions_the_ticket_to_done(jira: FakeJira, tracker: JiraTracker) -> None:
    """Closing applies the Done transition and the ticket is no longer open."""
    ticket = tracker.open(make_draft())

    outcome = tracker.close(ticket)

    assert outcome.detail == "transitioned MLOPS-1 to Done"
    assert (jira.issues[0].status, jira.issues[0].status_category) == ("Done", "done")
    assert tracker.find_open(DRIFT) is None


def test_the_done_transition_name_matches_case_insensitively(jira: FakeJira, ledger: TicketLedger) -> None:
    """A transition named like done_transition in any case wins over the first one into a done status."""
    jira.set_transitions(Transition("21", "Resolve", "Resolved", "done"), Transition("31", "DONE", "Done", "done"))
    tracker = make_tracker(jira, ledger, done_transition="done")
    ticket = tracker.open(make_draft())

    tracker.close(ticket)

    assert [r.body for r in jira.requests if r.method == "POST" and r.path.endswith("/transitions")] == [
        {"transition": {"id": "31"}}
    ]


def test_without_a_named_match_the_first_transition_into_done_is_used(jira: FakeJira, tracker: JiraTracker) -> None:
    """When no transition has the configured name, the first one into the done category is applied."""
    jira.set_transitions(
        Transition("11", "Start Progress", "In Progress", "indeterminate"),
        Transition("21", "Resolve", "Resolved", "done"),
    )
    ticket = tracker.open(make_draft())

    outcome = tracker.close(ticket)

    assert outcome.detail == "transitioned MLOPS-1 to Resolved"
    assert jira.issues[0].status_category == "done"


def test_closing_without_a_done_transition_is_a_permanent_error(jira: FakeJira, tracker: JiraTracker) -> None:
    """With no transition into done, close fails permanently and names the transitions there are."""
    jira.set_transitions(Transition("11", "Start Progress", "In Progress", "indeterminate"))
    ticket = tracker.open(make_draft())

    error = raised(lambda: tracker.close(ticket))

    assert isinstance(error, PermanentError)
    assert "'Start Progress'" in str(error)
    assert jira.issues[0].status == "To Do"


def test_closing_a_ticket_already_done_changes_nothing(jira: FakeJira, tracker: JiraTracker) -> None:
    """Close is retry-safe: after a lost answer to the transition, a second close reports it done."""
    ticket = tracker.open(make_draft())
    jira.fail_next("POST", r"/transitions$", status=502, after_write=True)

    assert isinstance(raised(lambda: tracker.close(ticket)), TransientError)
    outcome = tracker.close(ticket)

    assert outcome.detail == "MLOPS-1 already Done"
    assert jira.issues[0].status == "Done"


# --------------------------------------------------------------------------- errors


def test_a_502_is_a_transient_error(jira: FakeJira, tracker: JiraTracker) -> None:
    """A 502 from Jira is transient and names the system and the status."""
    jira.fail_next("POST", r"^/rest/api/2/issue$", status=502)

    error = raised(lambda: tracker.open(make_draft()))

    assert isinstance(error, TransientError)
    assert (error.system, error.status) == ("jira", 502)
    assert jira.issues == []


def test_a_429_is_transient_and_carries_retry_after(jira: FakeJira, tracker: JiraTracker) -> None:
    """A 429 is transient and its Retry-After becomes retry_after."""
    jira.fail_next("POST", CLOUD_SEARCH, status=429, headers={"Retry-After": "7"})

    error = raised(lambda: tracker.find_open(DRIFT))

    assert isinstance(error, TransientError)
    assert (error.status, error.retry_after) == (429, 7.0)


def test_a_400_is_permanent_and_quotes_jira(jira: FakeJira, redis: Redis) -> None:
    """A 400 is permanent and its message carries Jira's error text and the status."""
    tracker = make_tracker(jira, make_ledger(redis, "NOPE"), project="NOPE")

    error = raised(lambda: tracker.open(make_draft()))

    assert isinstance(error, PermanentError)
    assert error.status == 400
    assert "400" in str(error) and "project: project is required" in str(error)


def test_a_refused_connection_is_a_transient_error(ledger: TicketLedger) -> None:
    """Nothing listening at the URL is transient."""
    url = f"http://127.0.0.1:{free_port()}"
    tracker = JiraTracker(base_url=url, project="MLOPS", token="t", ledger=ledger, timeout=2)

    assert isinstance(raised(lambda: tracker.find_open(DRIFT)), TransientError)


def test_a_timeout_is_a_transient_error(jira: FakeJira, ledger: TicketLedger) -> None:
    """An answer slower than the client's timeout is transient."""
    tracker = make_tracker(jira, ledger, timeout=0.2)
    jira.fail_next("POST", CLOUD_SEARCH, status=None, delay=1.0)

    error = raised(lambda: tracker.find_open(DRIFT))

    assert isinstance(error, TransientError)
    assert "Timeout" in str(error)


def test_no_error_message_holds_the_token(jira: FakeJira, jira_dc: FakeJira, ledger: TicketLedger) -> None:
    """No error message carries the token or the Authorization header, even when Jira echoes them."""
    cloud_basic = base64.b64encode(f"{jira.user}:{jira.token}".encode()).decode()
    echo = {"errorMessages": [f"bad header Authorization: Basic {cloud_basic} ({jira.token})"], "errors": {}}
    jira.fail_next("POST", CLOUD_SEARCH, status=400, body=echo)
    jira.fail_next("POST", CLOUD_SEARCH, status=503, body=echo)
    jira_dc.fail_next("POST", DC_SEARCH, status=400, body={"errorMessages": [f"Bearer {jira_dc.token}"]})
    cloud, dc = make_tracker(jira, ledger), make_tracker(jira_dc, ledger)
    nowhere = f"http://127.0.0.1:{free_port()}"
    calls = [
        lambda: cloud.find_open(DRIFT),
        lambda: cloud.find_open(DRIFT),
        lambda: dc.find_open(DRIFT),
        lambda: make_tracker(jira, ledger, token="wrong-secret-token").find_open(DRIFT),
        lambda: make_tracker(jira_dc, ledger, token="wrong-secret-token").find_open(DRIFT),
        lambda: JiraTracker(base_url=nowhere, project="X", token=jira.token, ledger=ledger).find_open(DRIFT),
    ]

    messages = [str(raised(call)) for call in calls]

    for secret in (jira.token, cloud_basic, jira_dc.token, "wrong-secret-token"):
        assert not [m for m in messages if secret in m]
    assert "401" in messages[3] and "RESPONDER_JIRA_TOKEN" in messages[3]


# --------------------------------------------------------------------------- the fake itself


def test_the_fake_refuses_jql_outside_the_supported_subset(jira: FakeJira) -> None:
    """FakeJira answers 400 with an errorMessages entry to JQL it does not evaluate, so such clients fail loudly."""
    answer = requests.post(
        jira.url + CLOUD_SEARCH,
        json={"jql": 'project = "MLOPS" OR summary ~ "drift"'},
        auth=(jira.user or "", jira.token),
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json()["errorMessages"][0].startswith("Error in the JQL Query")


def test_the_fake_answers_unknown_paths_404_and_records_them(jira: FakeJira) -> None:
    """An endpoint FakeJira does not serve is 404 and shows up in the recorded requests."""
    answer = requests.get(jira.url + "/rest/api/2/myself", auth=(jira.user or "", jira.token), timeout=5)

    assert answer.status_code == 404
    assert [(r.method, r.path, r.status) for r in jira.requests] == [("GET", "/rest/api/2/myself", 404)]


def test_jira_tracker_is_a_tracker(tracker: JiraTracker) -> None:
    """JiraTracker is named 'jira' and satisfies the Tracker protocol."""
    as_tracker: Tracker = tracker

    assert as_tracker.name == "jira"
