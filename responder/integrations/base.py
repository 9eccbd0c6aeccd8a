"""What every integration returns and the protocols steps depend on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Outcome:
    """The result of one external write: a one-line detail, an optional link, planned in dry-run."""

    detail: str
    url: str | None = None
    planned: bool = False


class GitHubGateway(Protocol):
    """The few GitHub operations playbooks need (repository Actions variables, workflows, files)."""

    def get_variable(self, name: str) -> str | None: ...

    def set_variable(self, name: str, value: str) -> Outcome: ...

    def dispatch_workflow(self, workflow: str, inputs: dict[str, str]) -> Outcome: ...

    def read_file(self, path: str) -> str: ...


@dataclass(frozen=True)
class TicketKey:
    """Identity of an incident ticket: at most one is open per (alertname, model_id)."""

    alertname: str
    model_id: str


@dataclass(frozen=True)
class TicketDraft:
    key: TicketKey
    title: str
    body: str
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ticket:
    ref: str  # "#12" for GitHub, "OPS-12" for Jira
    url: str
    title: str
    body: str = ""
    state: Literal["open", "closed", "planned"] = "open"

    @property
    def planned(self) -> bool:
        return self.state == "planned"


class Tracker(Protocol):
    """Incident tickets: find the open one for a key, open one, comment on one."""

    def find_open(self, key: TicketKey) -> Ticket | None: ...

    def open(self, draft: TicketDraft) -> Ticket: ...

    def comment(self, ticket: Ticket, body: str) -> Outcome: ...
