"""`responder approve RUN_ID` and `responder reject RUN_ID --reason TEXT`: answering a run that
waits at an approval step, as ``--as LOGIN``, ``RESPONDER_REQUESTED_BY`` or ``$USER`` (the same
identity ``freeze`` records). A refusal is one line saying why; the run goes on (or ends, on a
rejection) once the last group needed has approved."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from responder import tickets
from responder.answers import Decision, answer
from responder.cli_args import requester
from responder.errors import ResponderError
from responder.integrations.base import TicketKey, comment_on_open
from responder.runs import RunRecord
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


def _answer(args: argparse.Namespace, settings: Settings, decision: Decision) -> int:
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.store.redisconn import redis_client

    who = args.as_login or requester()
    redis = redis_client(settings)
    intake = Intake(redis, settings, load_catalog(settings.playbooks_dir))
    done = answer(redis, settings, intake, args.job_id, who=who, decision=decision, how="cli", reason=args.reason)
    _note_on_ticket(settings, done.record, done.said())
    print(done.outcome())
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
