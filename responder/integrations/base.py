"""What every integration returns and the protocols steps depend on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from responder.document import Document


@dataclass(frozen=True)
class Outcome:
    """The result of one external write: a one-line detail, an optional link, planned in dry-run."""

    detail: str
    url: str | None = None
    planned: bool = False
    changed: bool = True  # False when the system already was in the wanted state


@dataclass(frozen=True)
class Revision:
    """One commit that changed a file."""

    sha: str
    date: datetime | None
    message: str = ""


@dataclass(frozen=True)
class WorkflowRunRef:
    """A workflow run as the runs list shows it."""

    id: int
    html_url: str
    display_title: str = ""  # rendered from the workflow's run-name; its name when it has none
    workflow_name: str = ""
    created_at: datetime | None = None


class GitHubGateway(Protocol):
    """The few GitHub operations playbooks need (repository Actions variables, workflows, files)."""

    def get_variable(self, name: str) -> str | None: ...

    def set_variable(self, name: str, value: str) -> Outcome: ...

    def dispatch_workflow(self, workflow: str, inputs: dict[str, str]) -> Outcome: ...

    def recent_dispatch_runs(self, workflow: str, since: datetime) -> list[WorkflowRunRef]:
        """Runs of ``workflow`` started by workflow_dispatch on the configured ref since ``since``,
        newest first, as far as GitHub lists them yet (a new run is listed seconds after its dispatch)."""
        ...

    def read_file(self, path: str, ref: str | None = None) -> str:
        """The file's text on ``ref`` (a branch or commit sha; default: the configured ref)."""
        ...

    def file_revisions(self, path: str, limit: int = 50) -> list[Revision]:
        """Commits that changed ``path`` on the configured ref, newest first."""
        ...


@dataclass(frozen=True)
class TicketKey:
    """Identity of an incident ticket: at most one is open per (alertname, model_id)."""

    alertname: str
    model_id: str


@dataclass(frozen=True)
class TicketDraft:
    key: TicketKey
    title: str
    body: Document
    labels: tuple[str, ...] = ()  # added to the tracker's key labels


@dataclass(frozen=True)
class Ticket:
    ref: str  # "#12" for GitHub, "OPS-12" for Jira, "(planned)" in dry-run
    url: str
    title: str
    state: Literal["open", "closed", "planned"] = "open"

    @property
    def planned(self) -> bool:
        return self.state == "planned"


class Tracker(Protocol):
    """Incident tickets. Implemented for GitHub issues and Jira, and by the dry-run recorder.

    A ticket's key is carried by labels: GitHub ``incident``, ``<alertname>``,
    ``model:<model_id>``; Jira ``responder``, ``<alertname>``, ``model-<model_id>``.
    """

    name: str

    def search_open(self, *, alertname: str | None = None, model_id: str | None = None) -> list[Ticket]:
        """Open tickets made by responder, filtered by alertname and/or model, newest first."""
        ...

    def find_open(self, key: TicketKey) -> Ticket | None:
        """The open ticket for ``key``, if any."""
        ...

    def open(self, draft: TicketDraft) -> Ticket: ...

    def comment(self, ticket: Ticket, body: Document) -> Outcome: ...

    def close(self, ticket: Ticket) -> Outcome:
        """Close (GitHub) or transition to done (Jira)."""
        ...


class Toggles(Protocol):
    """The feature-toggle service that routes a model's serving endpoint to a version."""

    def retag(self, *, model_id: str, version: str, reason: str, endpoint: str | None) -> Outcome:
        """Point ``model_id``'s serving endpoint at ``version``. Idempotent: the same call twice is one state."""
        ...
