"""What every integration returns and the protocols steps depend on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

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


@dataclass(frozen=True)
class RunSnapshot:
    """A workflow run as GitHub last described it."""

    run_id: int
    workflow: str  # the workflow's file name, e.g. "model-governance.yml"
    html_url: str
    status: str  # queued, in_progress or completed (also requested, waiting, pending)
    conclusion: str | None  # once completed: success, failure, cancelled, timed_out, ...
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None
    etag: str | None  # give it back to the next poll: an unchanged run then costs no rate limit

    @property
    def completed(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class NotModified:
    """The run is as it was when ``etag`` was served (GitHub answered 304)."""

    etag: str


Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class EvidenceFile:
    """One file of an artifact: a JSON object's top-level ``status`` and a few scalar fields."""

    name: str
    status: str | None = None  # its top-level "status", when that is a string
    fields: dict[str, Scalar] = field(default_factory=dict)  # other top-level scalars, first few, in order
    reason: str | None = None  # why it was not read (not JSON, invalid, too large); None when read


@dataclass(frozen=True)
class ArtifactSummary:
    """An artifact of a run: named always, summarised when it could be read."""

    name: str
    size_in_bytes: int
    status: str | None = None  # the status its files agree on; None when none has one, or they differ
    files: tuple[EvidenceFile, ...] = ()
    reason: str | None = None  # why it was not read (expired, too large, link refused); None when read
    omitted_files: int = 0  # files beyond the summary's limit, named nowhere


class WorkflowRunReader(Protocol):
    """Following a dispatched run: its state, then the evidence it uploaded. Reads only: safe to retry."""

    def poll(self, run_id: int, etag: str | None = None) -> RunSnapshot | NotModified:
        """The run now, or NotModified when it is as ``etag`` described it."""
        ...

    def artifacts(self, run_id: int) -> list[ArtifactSummary]:
        """Each artifact of the run, downloaded and summarised within the reader's size limits."""
        ...

    def json_file(self, run_id: int, artifact: str, file_name: str) -> dict[str, Any]:
        """One JSON file of one artifact of the run, read whole (PermanentError saying why when it
        is missing or unreadable)."""
        ...


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
    """Identity of a ticket: at most one is open per key. What it is about is exactly one of a
    model (an incident ticket), a playbook's storm window (a storm ticket) or an alert's
    fingerprint digest (a needs-triage ticket); trackers give each its own kind of label
    (``model:``, ``storm:``, ``fingerprint:`` on GitHub), never one encoded in another."""

    alertname: str
    model_id: str | None = None
    storm: str | None = None  # "<playbook>-<window number>"
    fingerprint: str | None = None  # a digest of the (untrusted) fingerprint

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.model_id, self.storm, self.fingerprint)) != 1:
            raise ValueError("a ticket key is about exactly one of a model, a storm window or a fingerprint")

    @property
    def subject(self) -> tuple[str, str]:
        """``(kind, value)``: ("model", "fraud-scorer"), ("storm", "model_drift_detected-2994006") or
        ("fingerprint", "9f86d081884c7d65")."""
        if self.model_id is not None:
            return "model", self.model_id
        if self.storm is not None:
            return "storm", self.storm
        return "fingerprint", str(self.fingerprint)

    @property
    def ident(self) -> str:
        """The key in one word, for Redis keys and messages: the model id for a model (as before
        storm and triage tickets had their own kinds), else "<kind>:<value>"."""
        kind, value = self.subject
        return value if kind == "model" else f"{kind}:{value}"

    def __str__(self) -> str:
        return f"{self.alertname}/{self.ident}"


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


def comment_on_open(tracker: Tracker, key: TicketKey, body: Document) -> bool:
    """Comment ``body`` on the open ticket of ``key``; False (nothing said) when none is open."""
    ticket = tracker.find_open(key)
    if ticket is None:
        return False
    tracker.comment(ticket, body)
    return True
