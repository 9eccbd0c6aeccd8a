"""Answering a run that waits at an approval step, however the answer came: the CLI
(``responder approve``/``reject``), a ``/approve`` or ``/reject <reason>`` comment on the incident
ticket (the GitHub webhook's verified sender), or the runs page (behind its token).

One function records an answer: it is refused with one line saying why (the requester, not an
approver of a waiting group, already answered, the run is not waiting), or appended to the run
record in a transaction (two answers at once cannot both count as the last one), and when it
completes the approvals, or rejects, the run is queued again to go on (or to end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from redis import Redis
from redis.client import Pipeline

from responder import approvals
from responder.errors import ApprovalRefused
from responder.intake import Intake
from responder.runs import Approval, RunRecord, RunStore, utcnow
from responder.settings import Settings

Decision = Literal["approve", "reject"]


@dataclass(frozen=True)
class Answered:
    record: RunRecord  # the run, with the answer appended
    answer: Approval
    still: list[str]  # groups still without an approval; empty: the run goes on (or ends, rejected)

    @property
    def goes_on(self) -> bool:
        return self.answer.decision == "reject" or not self.still

    def said(self) -> str:
        """The answer in words, for the ticket and the CLI."""
        verb = "Approved" if self.answer.decision == "approve" else "Rejected"
        reason = f": {self.answer.reason.rstrip('.')}." if self.answer.reason else "."
        return f"{verb} by {self.answer.who} ({self.answer.how}){reason}"

    def outcome(self) -> str:
        """What happens next, in one line."""
        run, who = self.record.id, self.answer.who
        if self.answer.decision == "reject":
            return f"rejected run {run} as {who}: its remaining steps are skipped"
        if self.still:
            return f"approved run {run} as {who}; still waiting for {' and '.join(self.still)}"
        return f"approved run {run} as {who}: the run goes on"


def answer(
    redis: Redis,
    settings: Settings,
    intake: Intake,
    run_id: str,
    *,
    who: str,
    decision: Decision,
    how: str,
    reason: str | None = None,
) -> Answered:
    """Record ``who``'s answer to run ``run_id``; raise ApprovalRefused (why, in one line) when it
    does not count. RunNotFound when there is no such run."""
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    answered: list[Answered] = []

    def record_answer(pipe: Pipeline) -> None:
        answered.clear()
        record = runs.get(run_id)
        groups, missing = waiting_groups(record)
        why = approvals.refusal(who, missing, settings.approvers, record.approvals, record.requested_by)
        if why is not None:
            raise ApprovalRefused(f"run {record.id}: {why}")
        given = Approval(who=who, decision=decision, at=utcnow(), how=how, reason=reason)
        record.approvals.append(given)
        pipe.multi()
        runs.save(record, cast(Any, pipe))
        still = approvals.missing(groups, settings.approvers, record.approvals)
        answered.append(Answered(record, given, still))

    redis.transaction(record_answer, runs.key(run_id))
    done = answered[0]
    if done.goes_on:
        intake.requeue(done.record)
    return done


def waiting_groups(record: RunRecord) -> tuple[list[str], list[str]]:
    """The groups of the run's waiting approval step: all of them, and those still missing an
    approval when it last looked. ApprovalRefused for a run that is not waiting."""
    step = next((s for s in record.steps if s.kind == "approval" and s.status == "waiting"), None)
    if record.status != "awaiting_approval" or step is None:
        raise ApprovalRefused(f"run {record.id} is not waiting for approval (it is {record.status})")
    return (
        [g for g in step.outputs.get("groups", "").split(",") if g],
        [g for g in step.outputs.get("missing", "").split(",") if g],
    )
