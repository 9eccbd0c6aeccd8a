"""The approval step: the run pauses until one person of each named group approves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from responder import approvals, tickets, timefmt
from responder.errors import ApprovalEnded, AwaitingApproval, PermanentError, ResponderError
from responder.integrations.base import TicketKey, comment_on_open
from responder.log import get_logger
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Duration, Params, StepBase, StepResult
from responder.runs import utcnow
from responder.store import redis_keys

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
        missing_people = f"no approvers configured for {', '.join(unknown)} (RESPONDER_APPROVERS)"
        if ctx.dry_run:  # a dry run shows the whole plan: nobody is asked, nothing waits
            detail = f"would wait for approval by one of each: {', '.join(groups)}"
            return StepResult(detail=detail + (f"; but {missing_people}" if unknown else ""), planned=True)
        if unknown:
            raise PermanentError(missing_people, system="responder")
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
        earlier = ctx.run.step(self.name)
        if earlier is None or earlier.status != "waiting":  # it starts waiting: say so on the ticket
            self._ask(ctx, still, deadline)
        raise AwaitingApproval(list(groups), still, deadline)

    def _ask(self, ctx: StepContext, groups: list[str], deadline: datetime) -> None:
        """Ask on the open incident ticket, and remember the ticket, so that a ``/approve`` or
        ``/reject <reason>`` comment there answers this run. Best effort: ``responder approve``
        works either way."""
        if ctx.run.model_id is None:
            return
        text = (
            f"Run {ctx.run.id} waits at step {self.name} for approval by one person of each of "
            f"{' and '.join(groups)} until {timefmt.utc_text(deadline)}. Comment /approve, or /reject and "
            f"a reason, here, or run: responder approve {ctx.run.id}"
        )
        try:
            ticket = ctx.tracker.find_open(TicketKey(alertname=ctx.run.alertname, model_id=ctx.run.model_id))
            if ticket is None or ticket.planned:
                return
            ctx.tracker.comment(ticket, tickets.note(ctx.run, text))
        except ResponderError as exc:
            log.warning("approval.ticket_ask_failed", error=str(exc))
            return
        key = redis_keys.approval_ticket_key(ticket.url)
        keep = int((deadline - utcnow()).total_seconds()) + ctx.settings.dedup_retention_seconds
        with ctx.redis.pipeline() as pipe:
            pipe.sadd(key, ctx.run.id)
            pipe.expire(key, max(keep, 1))
            pipe.execute()
