"""Incident tickets in Jira, over the REST API with one ``requests.Session``.

What is used, and why:

* Writes go through REST API **v2** -- ``POST /rest/api/2/issue``, ``.../comment`` and
  ``.../transitions`` -- with descriptions and comments in wiki markup (``render_jira``):
  v2 takes wiki-markup strings on Jira Cloud and on Server/Data Center alike, whereas v3
  wants Atlassian Document Format and does not exist on Data Center.
* Searches are JQL. On Cloud (``user`` set: the account e-mail, Basic auth with an API
  token) the enhanced search ``POST /rest/api/3/search/jql``, paged by ``nextPageToken``
  (Cloud has removed the old ``/search``); on Server/Data Center (no ``user``: a personal
  access token sent as ``Bearer``) ``POST /rest/api/2/search``, paged by ``startAt``/``total``.
  ``search_path`` overrides the endpoint: a path ending in ``/search/jql`` is paged by
  token, any other by offset.
* A ticket's key is carried by labels: ``responder``, ``<alertname>``, ``model-<model_id>``.
  Jira labels cannot hold whitespace, so whitespace becomes ``-`` in every label written
  or searched for (the same function does both, so they always agree).
* Cloud's enhanced search is eventually consistent: responder reads its own writes back
  (``responder.integrations.jira_ledger`` says how).

Retry safety (nothing is retried here; runs are retried by RQ, where done steps are skipped):

* searches are reads: always safe to retry;
* ``close`` is safe: a ticket already in a done status is reported as such, not refused;
* ``comment`` posts again on a retry: if Jira applied a comment but its answer was lost,
  the comment appears twice (noise, no harm);
* ``open`` (create) is not idempotent: callers ``find_open`` before they ``open``, so a
  retried run finds the ticket its earlier attempt created instead of opening another (on
  Cloud, ``find_open`` waits up to ``search_lag_seconds`` for a lost create to show).

Calls, errors and paged searches are ``responder.integrations.jira_http`` (``JiraHttp``).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from responder.document import Document, render_jira
from responder.errors import IntegrationError, PermanentError
from responder.integrations.base import Outcome, Ticket, TicketDraft, TicketKey
from responder.integrations.jira_answers import (
    SYSTEM,
    category_key,
    id_of,
    open_and_labelled,
)
from responder.integrations.jira_http import JiraHttp
from responder.integrations.jira_ledger import RECONCILE_MAX, TicketLedger

KEY_LABEL = "responder"
CLOUD_SEARCH_PATH = "/rest/api/3/search/jql"
DATA_CENTER_SEARCH_PATH = "/rest/api/2/search"
SUMMARY_MAX = 255  # Jira refuses longer summaries
LABEL_MAX = 255  # and longer labels
READ_FIELDS = "summary,status,labels"  # what find_open checks on a remembered ticket
POLL_SECONDS = 1.0  # between searches for a ticket whose create answer was lost
ISSUE_IDS_KEPT = 1000  # issue key -> id of the tickets a process saw last (close needs the id)


def jira_label(text: str) -> str:
    """``text`` as a Jira label: each run of whitespace becomes ``-`` (labels cannot hold spaces)."""
    return re.sub(r"\s+", "-", text.strip())[:LABEL_MAX]


def key_labels(key: TicketKey) -> list[str]:
    """The labels that identify the ticket of ``key``."""
    kind, value = key.subject
    return [KEY_LABEL, jira_label(key.alertname), jira_label(f"{kind}-{value}")]


def jql_string(value: str) -> str:
    """``value`` as a double-quoted JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_tickets_jql(project: str, labels: Sequence[str]) -> str:
    """JQL for the not-done issues of ``project`` carrying every one of ``labels``, newest first."""
    clauses = [f"project = {jql_string(project)}", *(f"labels = {jql_string(label)}" for label in labels)]
    return " AND ".join([*clauses, "statusCategory != Done"]) + " ORDER BY created DESC"


def summary_text(title: str) -> str:
    """``title`` on one line (Jira refuses newlines in summaries), cut to 255 characters with "…"."""
    text = " ".join(title.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


class JiraTracker:
    """Tracker over Jira Cloud or Server/Data Center; the open ticket is found by its labels."""

    name = "jira"

    def __init__(
        self,
        *,
        base_url: str,
        project: str,
        token: str,
        ledger: TicketLedger,
        user: str | None = None,
        issue_type: str = "Task",
        search_path: str | None = None,
        done_transition: str = "Done",
        timeout: float = 10.0,
    ) -> None:
        self._project = project
        self._issue_type = issue_type
        path = search_path or (CLOUD_SEARCH_PATH if user else DATA_CENTER_SEARCH_PATH)
        # the enhanced search: paged by token, eventually consistent, takes reconcileIssues
        self._token_paging = path.rstrip("/").endswith("/search/jql")
        self._http = JiraHttp(base_url=base_url, token=token, user=user, search_path=path, timeout=timeout)
        self._ledger = ledger
        self._issue_ids: dict[str, int] = {}  # issue key -> id of the tickets this process has seen
        self._done_transition = done_transition

    # ----------------------------------------------------------------- Tracker

    def search_open(self, *, alertname: str | None = None, model_id: str | None = None) -> list[Ticket]:
        labels = [KEY_LABEL]
        if alertname is not None:
            labels.append(jira_label(alertname))
        if model_id is not None:
            labels.append(jira_label(f"model-{model_id}"))
        return self._search(labels, reconcile=())

    def find_open(self, key: TicketKey) -> Ticket | None:
        """The remembered ticket of ``key`` while it is open and labelled for ``key``, else the newest found.

        After a create for ``key`` whose answer was lost, a search that finds nothing is
        repeated until the ledger's search lag has passed: a search that has not caught up
        yet must not lead to a second ticket.
        """
        action = f"find the open ticket of {key}"
        reconcile: list[int] = []
        remembered = self._ledger.remembered(key)
        if remembered is not None:
            issue = self._read_issue(remembered, action)
            if issue is not None and open_and_labelled(issue, key_labels(key)):
                return self._ticket_of(issue, action)
            self._ledger.forget(key, remembered)
            issue_id = id_of(issue)
            if issue_id is not None:
                reconcile.append(issue_id)  # its closing may not show in the search yet
        found = self._search(key_labels(key), reconcile)
        while not found and self._token_paging and self._ledger.create_unsettled(key):
            time.sleep(POLL_SECONDS)
            found = self._search(key_labels(key), reconcile)
        if not found:
            return None
        self._ledger.remember(key, found[0].ref)
        return found[0]

    def open(self, draft: TicketDraft) -> Ticket:
        summary = summary_text(draft.title)
        labels = [label for label in (*key_labels(draft.key), *map(jira_label, draft.labels)) if label]
        fields = {
            "project": {"key": self._project},
            "summary": summary,
            "description": render_jira(draft.body),
            "issuetype": {"name": self._issue_type},
            "labels": list(dict.fromkeys(labels)),
        }
        action = f"open ticket for {draft.key}"
        if self._token_paging:
            self._ledger.creating(draft.key)
        try:
            created = self._http.send("POST", "/rest/api/2/issue", action, json={"fields": fields})
        except IntegrationError as error:
            if error.status is not None and 400 <= error.status < 500:  # refused: nothing was created
                self._ledger.create_settled(draft.key)
            raise
        key = created.get("key") if isinstance(created, dict) else None
        if not isinstance(key, str) or not key:
            raise PermanentError(f"{action}: Jira's answer names no issue key", system=SYSTEM)
        issue_id = id_of(created)
        self._ledger.opened(draft.key, key, issue_id)
        self._note_id(key, issue_id)
        return Ticket(ref=key, url=self._browse_url(key), title=summary)

    def comment(self, ticket: Ticket, body: Document) -> Outcome:
        action = f"comment on {ticket.ref}"
        path = f"{self._issue_path(ticket.ref)}/comment"
        created = self._http.send("POST", path, action, json={"body": render_jira(body)})
        comment_id = created.get("id") if isinstance(created, dict) else None
        url = self._browse_url(ticket.ref)
        if comment_id:
            url += f"?focusedCommentId={urllib.parse.quote(str(comment_id), safe='')}"
        return Outcome(f"commented on {ticket.ref}", url=url)

    def close(self, ticket: Ticket) -> Outcome:
        """Apply the done transition; a ticket already in a done status is left as it is."""
        action = f"close {ticket.ref}"
        path = f"{self._issue_path(ticket.ref)}/transitions"
        answer = self._http.send("GET", path, action)
        listed = answer.get("transitions") if isinstance(answer, dict) else None
        transitions = [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
        wanted = self._done_transition.casefold()
        chosen = next((t for t in transitions if str(t.get("name", "")).casefold() == wanted), None)
        if chosen is None:
            chosen = next((t for t in transitions if category_key(t.get("to")) == "done"), None)
        url = self._browse_url(ticket.ref)
        if chosen is None:
            status = self._done_status(ticket.ref, action)
            if status is not None:
                self._wrote(ticket.ref)
                return Outcome(f"{ticket.ref} already {status}", url=url)
            names = ", ".join(repr(str(t.get("name"))) for t in transitions) or "none"
            raise PermanentError(
                f"{action}: no transition named {self._done_transition!r} and none into a done status; "
                f"available: {names}; set RESPONDER_JIRA_DONE_TRANSITION to the one that closes tickets",
                system=SYSTEM,
            )
        self._http.send("POST", path, action, json={"transition": {"id": str(chosen.get("id"))}})
        self._wrote(ticket.ref)
        target = chosen.get("to")
        status_name = target.get("name") if isinstance(target, dict) else None
        return Outcome(f"transitioned {ticket.ref} to {status_name or chosen.get('name')}", url=url)

    # ----------------------------------------------------------------- search paging

    def _search(self, labels: list[str], reconcile: Iterable[int]) -> list[Ticket]:
        """Open tickets carrying every one of ``labels``, newest first. A Cloud search reconciles
        ``reconcile`` and the issues responder wrote recently (at most ``RECONCILE_MAX``)."""
        jql = open_tickets_jql(self._project, labels)
        action = "search open tickets" + (f" labelled {', '.join(labels[1:])}" if labels[1:] else "")
        if self._token_paging:
            ids = list(dict.fromkeys([*reconcile, *self._ledger.recent()]))[:RECONCILE_MAX]
            issues = self._http.search_by_token(jql, action, ids)
        else:
            issues = self._http.search_by_offset(jql, action)
        return [self._ticket_of(issue, action) for issue in issues]

    # ----------------------------------------------------------------- helpers

    def _ticket_of(self, issue: dict[str, Any], action: str) -> Ticket:
        key = issue.get("key")
        if not isinstance(key, str) or not key:
            raise PermanentError(f"{action}: a search result has no issue key", system=SYSTEM)
        self._note_id(key, id_of(issue))
        fields = issue.get("fields")
        summary = fields.get("summary") if isinstance(fields, dict) else None
        return Ticket(ref=key, url=self._browse_url(key), title=summary if isinstance(summary, str) else "")

    def _read_issue(self, key: str, action: str) -> dict[str, Any] | None:
        """The issue ``key`` as it is now (a read by key is strongly consistent); None when it is gone."""
        try:
            issue = self._http.send("GET", self._issue_path(key), action, params={"fields": READ_FIELDS})
        except PermanentError as error:
            if error.status == 404:
                return None
            raise
        return issue if isinstance(issue, dict) else None

    def _note_id(self, key: str, issue_id: int | None) -> None:
        """Keep the id of a ticket this process saw, for ``close`` to note its write by id."""
        if issue_id is None:
            return
        self._issue_ids.pop(key, None)  # re-inserted last, so the oldest go first
        self._issue_ids[key] = issue_id
        if len(self._issue_ids) > ISSUE_IDS_KEPT:
            del self._issue_ids[next(iter(self._issue_ids))]

    def _wrote(self, key: str) -> None:
        """Note a change responder made to issue ``key``, so that searches reconcile it."""
        issue_id = self._issue_ids.get(key)
        if issue_id is not None:
            self._ledger.wrote(issue_id)

    def _done_status(self, key: str, action: str) -> str | None:
        """The issue's status name when it is in the done category, else None."""
        issue = self._http.send("GET", self._issue_path(key), action, params={"fields": "status"})
        fields = issue.get("fields") if isinstance(issue, dict) else None
        status = fields.get("status") if isinstance(fields, dict) else None
        if isinstance(status, dict) and category_key(status) == "done":
            return str(status.get("name") or "done")
        return None

    def _browse_url(self, key: str) -> str:
        return f"{self._http.base_url}/browse/{urllib.parse.quote(key, safe='')}"

    @staticmethod
    def _issue_path(key: str) -> str:
        return f"/rest/api/2/issue/{urllib.parse.quote(key, safe='')}"
