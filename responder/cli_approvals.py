"""`responder approve RUN_ID` and `responder reject RUN_ID --reason TEXT`: answering a run that
waits at an approval step, as ``--as LOGIN``, ``RESPONDER_REQUESTED_BY`` or ``$USER`` (the same
identity ``freeze`` records). A refusal is one line saying why; the run goes on (or ends, on a
rejection) once the last group needed has approved."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal, cast

from redis.client import Pipeline

from responder import approvals, tickets
from responder.cli_args import requester
from responder.errors import CommandFailed, ResponderError
from responder.integrations.base import TicketKey, comment_on_open
from responder.runs import Approval, RunRecord, RunStore, utcnow
from responder.settings import Settings


def add_commands(sub: Any) -> None:
    """Add ``approve`` and ``reject`` to the CLI's subcommands."""
    approve = sub.add_parser("approve", help="approve a run waiting at an approval step")
    approve.add_argument("job_id")
    approve.add_argument("--reason", default=None, help="why (kept with the approval)")
    approve.add_argument("--as", dest="as_login", default=None, help="approve as this GitHub login")
    approve.set_defaults(handler=cmd_approve)
    reject = sub.add_parser("reject", help="reject a run waiting at an approval step: its later steps are skipped")
    reject.add_argument("job_id")
    reject.add_argument("--reason", required=True, help="why (said on the run record)")
    reject.add_argument("--as", dest="as_login", default=None, help="reject as this GitHub login")
    reject.set_defaults(handler=cmd_reject)


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    return _answer(args, settings, "approve")


def cmd_reject(args: argparse.Namespace, settings: Settings) -> int:
    return _answer(args, settings, "reject")


def _answer(args: argparse.Namespace, settings: Settings, decision: Literal["approve", "reject"]) -> int:
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.store.redisconn import redis_client

    who = args.as_login or requester()
    redis = redis_client(settings)
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    answered: dict[str, RunRecord] = {}

    def record_answer(pipe: Pipeline) -> None:
        record = runs.get(args.job_id)
        why = approvals.refusal(
            who, _waiting_groups(record, "missing"), settings.approvers, record.approvals, record.requested_by
        )
        if why is not None:
            raise CommandFailed(f"run {record.id}: {why}")
        record.approvals.append(Approval(who=who, decision=decision, at=utcnow(), how="cli", reason=args.reason))
        pipe.multi()
        runs.save(record, cast(Any, pipe))
        answered["record"] = record

    redis.transaction(record_answer, runs.key(args.job_id))
    record = answered["record"]
    said = f"{'Approved' if decision == 'approve' else 'Rejected'} by {who} (cli)"
    _note_on_ticket(settings, record, said + (f": {args.reason}" if args.reason else "."))
    still = approvals.missing(_waiting_groups(record, "groups"), settings.approvers, record.approvals)
    if decision == "reject" or not still:
        Intake(redis, settings, load_catalog(settings.playbooks_dir)).requeue(record)
        print(
            f"{decision}d run {record.id} as {who}: the run goes on"
            if decision == "approve"
            else f"rejected run {record.id} as {who}: its remaining steps are skipped"
        )
    else:
        print(f"approved run {record.id} as {who}; still waiting for {' and '.join(still)}")
    return 0


def _note_on_ticket(settings: Settings, record: RunRecord, text: str) -> None:
    """Say the answer on the run's open incident ticket, if it has one; a failure is a warning (the
    run record holds the answer either way)."""
    if record.model_id is None:
        return
    from responder.runtime import Runtime

    try:
        tracker = Runtime.build(settings).integrations(dry_run=record.dry_run).tracker
        key = TicketKey(alertname=record.alertname, model_id=record.model_id)
        comment_on_open(tracker, key, tickets.note(record, f"Run {record.id}: {text}"))
    except ResponderError as exc:
        print(f"responder: warning: the incident ticket was not told: {exc}", file=sys.stderr)


def _waiting_groups(record: RunRecord, which: Literal["groups", "missing"]) -> list[str]:
    """The groups of the run's waiting approval step (all of them, or those still missing an
    approval when it last looked); refuses a run that is not waiting."""
    step = next((s for s in record.steps if s.kind == "approval" and s.status == "waiting"), None)
    if record.status != "awaiting_approval" or step is None:
        raise CommandFailed(f"run {record.id} is not waiting for approval (it is {record.status})")
    return [g for g in step.outputs.get(which, "").split(",") if g]
