"""The approval step: the run pauses until one person of each named group approves."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from responder import approvals, tickets
from responder.errors import ApprovalEnded, AwaitingApproval, PermanentError, ResponderError
from responder.integrations.base import TicketKey, comment_on_open
from responder.log import get_logger
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Duration, Params, StepBase, StepResult
from responder.runs import utcnow

log = get_logger(__name__)


def note_on_ticket(ctx: StepContext, text: str) -> None:
    """Say ``text`` on the run's open incident ticket, if it has one; best effort (the run record
    holds the answer either way)."""
    if ctx.run.model_id is None:
        return
    try:
        key = TicketKey(alertname=ctx.run.alertname, model_id=ctx.run.model_id)
        comment_on_open(ctx.tracker, key, tickets.note(ctx.run, text))
    except ResponderError as exc:
        log.warning("approval.ticket_note_failed", error=str(exc))


class ApprovalParams(Params):
    groups: list[str] = Field(min_length=1, description="Approver groups of RESPONDER_APPROVERS; one of each.")
    ttl: Duration = Field(24 * 3600, description="How long the run waits before it ends as expired.")


class Approval(StepBase):
    """Wait for approval from one person of each group (``responder approve``/``reject``).

    The run is paused (status ``awaiting_approval``), holding no worker, until the approvals are in
    (distinct people, never the one who started the run), an approver rejects (the later steps are
    skipped) or ``ttl`` runs out (the run ends as ``expired``).
    """

    kind: Literal["approval"]
    params: ApprovalParams = Field(alias="with")
    stop_on_failure: bool = Field(True, description="A rejected or expired approval skips the steps after it.")

    def run(self, ctx: StepContext) -> StepResult:
        groups, approvers = self.params.groups, ctx.settings.approvers
        unknown = [group for group in groups if not approvers.get(group)]
        if unknown:
            raise PermanentError(
                f"no approvers configured for {', '.join(unknown)} (RESPONDER_APPROVERS)", system="responder"
            )
        answers = ctx.run.approvals
        rejection = next((a for a in answers if a.decision == "reject"), None)
        if rejection is not None:
            raise ApprovalEnded(
                f"rejected by {rejection.who}: {rejection.reason or 'no reason given'}", outcome="rejected"
            )
        covered = approvals.assignment(groups, approvers, answers)
        if len(covered) == len(groups):
            who = ", ".join(f"{person} ({group})" for group, person in covered.items())
            return StepResult(detail=f"approved by {who}", outputs={"approved_by": who, "approval": "approved"})
        deadline = ctx.run.awaiting_until or utcnow() + timedelta(seconds=self.params.ttl)
        still = [group for group in groups if group not in covered]
        if utcnow() >= deadline:
            message = f"expired: no approval from {' and '.join(still)} in time"
            note_on_ticket(ctx, f"Approval of run {ctx.run.id} {message}; its remaining steps are skipped.")
            raise ApprovalEnded(message, outcome="expired")
        raise AwaitingApproval(list(groups), still, deadline)
