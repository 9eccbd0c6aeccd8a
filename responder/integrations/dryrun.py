"""Dry-run recorders: the same interfaces as the real clients, but writes become 'planned'.

Reads still go to the real system when it is configured (so a dry run shows what would
really happen); without GitHub credentials the manifest comes from a local file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from responder.document import Document
from responder.errors import PermanentError
from responder.integrations.base import (
    GitHubGateway,
    Outcome,
    Revision,
    Ticket,
    TicketDraft,
    TicketKey,
    Tracker,
    WorkflowRunRef,
)


class DryRunGitHub:
    """GitHubGateway whose writes are planned; reads go to ``reader`` or a local manifest."""

    def __init__(self, reader: GitHubGateway | None, *, manifest_file: Path | None, manifest_path: str) -> None:
        self._reader = reader
        self._manifest_file = manifest_file
        self._manifest_path = manifest_path

    def get_variable(self, name: str) -> str | None:
        return self._reader.get_variable(name) if self._reader else None

    def set_variable(self, name: str, value: str) -> Outcome:
        return Outcome(f"would set {name}={value}", planned=True)

    def dispatch_workflow(self, workflow: str, inputs: dict[str, str]) -> Outcome:
        args = ", ".join(f"{k}={v}" for k, v in inputs.items())
        return Outcome(f"would dispatch {workflow} ({args})", planned=True)

    def recent_dispatch_runs(self, workflow: str, since: datetime) -> list[WorkflowRunRef]:
        return []  # nothing is dispatched in a dry run

    def file_revisions(self, path: str, limit: int = 50) -> list[Revision]:
        if self._reader is not None:
            return self._reader.file_revisions(path, limit)
        return []  # the offline manifest has no history

    def read_file(self, path: str, ref: str | None = None) -> str:
        if self._reader is not None:
            return self._reader.read_file(path, ref)
        if path == self._manifest_path and self._manifest_file is not None:
            try:
                return self._manifest_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise PermanentError(
                    f"cannot read offline manifest {self._manifest_file}: {exc}", system="github"
                ) from None
        raise PermanentError(
            f"cannot read {path}: no GitHub token in dry-run and no RESPONDER_OFFLINE_MANIFEST_FILE", system="github"
        )


class DryRunTracker:
    """Tracker whose tickets, comments and closes are planned; open tickets are looked up when possible."""

    def __init__(self, reader: Tracker | None, *, name: str) -> None:
        self._reader = reader
        self.name = name

    def search_open(self, *, alertname: str | None = None, model_id: str | None = None) -> list[Ticket]:
        return self._reader.search_open(alertname=alertname, model_id=model_id) if self._reader else []

    def find_open(self, key: TicketKey) -> Ticket | None:
        return self._reader.find_open(key) if self._reader else None

    def open(self, draft: TicketDraft) -> Ticket:
        return Ticket(ref="(planned)", url="", title=draft.title, state="planned")

    def comment(self, ticket: Ticket, body: Document) -> Outcome:
        return Outcome(f"would comment on {ticket.ref}: {_first_line(body)}", url=ticket.url or None, planned=True)

    def close(self, ticket: Ticket) -> Outcome:
        return Outcome(f"would close {ticket.ref}", url=ticket.url or None, planned=True)


def _first_line(body: Document) -> str:
    text = body.plain().strip().splitlines()
    return text[0][:160] if text else ""
