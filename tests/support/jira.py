"""A JiraTracker aimed at FakeJira: its ledger, its ticket drafts, the search endpoints, the errors it raises."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis

from responder.document import Document
from responder.errors import IntegrationError
from responder.integrations.base import TicketDraft, TicketKey
from responder.integrations.jira import JiraTracker
from responder.integrations.jira_ledger import TicketLedger
from tests.fakes.jira import DEFAULT_SEARCH_LAG_SECONDS as SEARCH_LAG
from tests.fakes.jira import FakeJira

DRIFT = TicketKey("ModelDrift", "churn-xgb")
CLOUD_SEARCH = "/rest/api/3/search/jql"
DC_SEARCH = "/rest/api/2/search"


def make_ledger(redis: Redis, project: str = "MLOPS") -> TicketLedger:
    """A ticket ledger on ``redis``, waiting out a search lag a little longer than the fake's."""
    return TicketLedger(redis, project=project, retention_seconds=3600, search_lag_seconds=SEARCH_LAG + 1)


def make_tracker(fake: FakeJira, ledger: TicketLedger, **options: Any) -> JiraTracker:
    """A JiraTracker aimed at ``fake`` with its credentials, unless ``options`` say otherwise."""
    values: dict[str, Any] = {
        "base_url": fake.url,
        "project": fake.project,
        "token": fake.token,
        "user": fake.user,
        "ledger": ledger,
    }
    return JiraTracker(**{**values, **options})


def make_draft(
    key: TicketKey = DRIFT,
    *,
    title: str = "Drift on churn-xgb",
    body: Document | None = None,
    labels: tuple[str, ...] = (),
) -> TicketDraft:
    """A ticket draft for ``key``, with a one-paragraph body unless given one."""
    return TicketDraft(key=key, title=title, body=body or Document.paragraph("PSI above threshold."), labels=labels)


def raised(call: Any) -> IntegrationError:
    """The IntegrationError that ``call()`` raises (the test fails if it raises none)."""
    with pytest.raises(IntegrationError) as info:
        call()
    return info.value
