"""`responder schedules list [--json]` (each schedule, its next slot, what was fired and missed)
and `responder scheduler` (the process that fires them; see ``responder.scheduler``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from responder.log import configure_logging
from responder.schedules import Schedule, load_schedules, require_valid, slot_text
from responder.settings import Settings


def add_commands(sub: Any) -> None:
    """Add ``schedules list`` and ``scheduler`` to the CLI's subcommands."""
    schedules = sub.add_parser("schedules", help="scheduled playbook runs").add_subparsers(
        dest="schedules_command", required=True
    )
    listing = schedules.add_parser("list", help="each schedule, its next fire time (UTC), last fired and missed slots")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_schedules_list)
    scheduler = sub.add_parser("scheduler", help="run the scheduler that fires the schedules (run one or more)")
    scheduler.set_defaults(handler=cmd_scheduler)


def _checked(settings: Settings) -> list[Schedule]:
    """The configured schedules, checked against the playbooks (ConfigError, exit 2, when wrong)."""
    from responder.playbooks.catalog import load_catalog

    schedules = load_schedules(settings.schedules, settings.playbooks_dir)
    require_valid(schedules, load_catalog(settings.playbooks_dir))
    return schedules


def cmd_schedules_list(args: argparse.Namespace, settings: Settings) -> int:
    from responder.scheduler import ScheduleLedger
    from responder.store.redisconn import redis_client

    schedules = _checked(settings)
    ledger = ScheduleLedger(redis_client(settings), fired_keep_seconds=settings.schedule_catch_up_seconds)
    now = datetime.now(UTC)
    rows = []
    for schedule in schedules:
        state = ledger.state(schedule.name)
        rows.append(
            {
                "name": schedule.name,
                "cron": schedule.cron,
                "playbook": schedule.playbook,
                "for_each": schedule.for_each,
                "labels": schedule.labels,
                "next": slot_text(schedule.next_slot(now)),
                "last_fired": slot_text(state.last_fired) if state.last_fired else None,
                "fired_at": slot_text(state.fired_at) if state.fired_at else None,
                "missed": [slot_text(m) for m in state.missed],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no schedules (set schedules, or add schedules.yaml to {settings.playbooks_dir})")
    else:
        print(_table(rows))
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    header = ["NAME", "CRON (UTC)", "PLAYBOOK", "RUNS", "NEXT", "LAST FIRED", "MISSED"]
    lines = [
        [
            r["name"],
            r["cron"],
            r["playbook"],
            _runs(r),
            r["next"],
            r["last_fired"] or "-",
            ", ".join(r["missed"]) or "-",
        ]
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=False)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *lines]
    )


def _runs(row: dict[str, Any]) -> str:
    """One run, or one per manifest model; with the schedule's labels."""
    what = "per manifest model" if row["for_each"] == "manifest_model" else "one"
    labels = ",".join(f"{k}={v}" for k, v in row["labels"].items())
    return f"{what} {labels}".strip()


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from responder.scheduler import run_scheduler

    # A service: JSON lines on stdout for the life of the process, as `responder worker` logs.
    configure_logging(settings.log_level, settings.log_format, settings.secret_values(), stream=sys.stdout, final=True)
    run_scheduler(settings)
    return 0
