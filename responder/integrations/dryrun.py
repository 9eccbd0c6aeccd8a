"""Dry-run recorders: the same interfaces as the real clients, but writes become 'planned'.

Reads still go to the real system when it is configured (so a dry run shows what would
really happen); without GitHub credentials the manifest comes from a local file.
"""

from __future__ import annotations

from pathlib import Path

from responder.errors import PermanentError
from responder.integrations.base import GitHubGateway, Outcome, Ticket, TicketDraft, TicketKey, Tracker


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

    def read_file(self, path: str) -> str:
        if self._reader is not None:
            return self._reader.read_file(path)
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
    """Tracker whose tickets and comments are planned; open tickets are looked up when possible."""

    def __init__(self, reader: Tracker | None) -> None:
        self._reader = reader

    def find_open(self, key: TicketKey) -> Ticket | None:
        return self._reader.find_open(key) if self._reader else None

    def open(self, draft: TicketDraft) -> Ticket:
        return Ticket(ref="(planned)", url="", title=draft.title, body=draft.body, state="planned")

    def comment(self, ticket: Ticket, body: str) -> Outcome:
        return Outcome(f"would comment on {ticket.ref}", url=ticket.url or None, planned=True)
