"""The ``responder`` command.

Exit codes: 0 success; 1 what was asked failed (a run failed, an unknown job id, invalid
playbooks, no previous version to roll back to); 2 usage or configuration error; 3 Redis
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis

from responder import __version__, cli_approvals, cli_schedules, output
from responder.alerts import Alert
from responder.cli_args import label, not_text, requester
from responder.cli_serve import cmd_serve
from responder.errors import CommandFailed, ConfigError, ResponderError
from responder.log import configure_logging
from responder.runs import RUN_STATUSES, RunStore
from responder.settings import Settings
from responder.settings_loading import load_settings
from responder.store.history import History
from responder.store.redisconn import REDIS_DOWN
from responder.text import one_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REDIS = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (bad := not_text(vars(args).values())) is not None:
        _error(f"argument {bad} is not valid UTF-8: give arguments as UTF-8 text")
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace, Settings], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = load_settings(args.config)
        service = args.command in ("serve", "worker")
        configure_logging(
            settings.log_level,
            settings.log_format,
            settings.secret_values(),
            stream=sys.stdout if service else sys.stderr,
            final=service,
        )
        return handler(args, settings)
    except REDIS_DOWN as exc:
        _error(f"cannot reach Redis ({one_line(exc, 200)}): start it or fix RESPONDER_REDIS_URL")
        return EXIT_REDIS
    except ResponderError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    lines = message.splitlines() or [""]
    print(f"responder: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="responder",
        description="Turns Alertmanager alerts about ML models into ML operations runbook actions.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 Redis unreachable.",
    )
    parser.add_argument("--version", action="version", version=f"responder {__version__}")
    parser.add_argument("--config", type=Path, help="YAML settings file (or RESPONDER_CONFIG); env vars win")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the Alertmanager webhook receiver")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--insecure-no-auth", action="store_true", help="accept webhooks without a token")
    serve.set_defaults(handler=cmd_serve)

    worker = sub.add_parser("worker", help="run a worker that executes playbook runs")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(handler=cmd_worker)

    run = sub.add_parser("run", help="trigger a playbook by hand")
    run.add_argument("playbook")
    run.add_argument("--label", type=label, action="append", default=[], metavar="K=V", help="label, e.g. model_id=X")
    run.add_argument("--annotation", type=label, action="append", default=[], metavar="K=V", help="alert annotation")
    run.add_argument("--dry-run", action="store_true", help="plan external writes instead of sending them")
    run.add_argument("--wait", action="store_true", help="wait for the run and print its record")
    run.add_argument(
        "--timeout", type=float, default=300.0, help="seconds --wait waits (default 300); then exit 1, the run goes on"
    )
    run.set_defaults(handler=cmd_run)

    jobs = sub.add_parser("jobs", help="list and show playbook runs").add_subparsers(dest="jobs_command", required=True)
    jobs_list = jobs.add_parser("list", help="recent runs, newest first")
    jobs_list.add_argument("--status", choices=RUN_STATUSES)
    jobs_list.add_argument("--limit", type=int, default=20)
    jobs_list.add_argument("--json", action="store_true")
    jobs_list.set_defaults(handler=cmd_jobs_list)
    jobs_show = jobs.add_parser("show", help="one run: the alert and every step")
    jobs_show.add_argument("job_id")
    jobs_show.add_argument("--json", action="store_true")
    jobs_show.set_defaults(handler=cmd_jobs_show)
    jobs_retry = jobs.add_parser("retry", help="queue a failed run again; its completed steps are not repeated")
    jobs_retry.add_argument("job_id")
    jobs_retry.add_argument("--wait", action="store_true")
    jobs_retry.add_argument("--timeout", type=float, default=300.0)
    jobs_retry.set_defaults(handler=cmd_jobs_retry)

    cli_approvals.add_commands(sub)
    cli_schedules.add_commands(sub)

    alerts = sub.add_parser("alerts", help="decision history: why did (or didn't) an alert run?").add_subparsers(
        dest="alerts_command", required=True
    )
    alerts_list = alerts.add_parser("list", help="received notifications, newest first")
    alerts_list.add_argument("--limit", type=int, default=20)
    alerts_list.add_argument("--json", action="store_true")
    alerts_list.set_defaults(handler=cmd_alerts_list)
    alerts_show = alerts.add_parser("show", help="one notification: each alert's decision, reason and run")
    alerts_show.add_argument("notification_id")
    alerts_show.add_argument("--json", action="store_true")
    alerts_show.add_argument(
        "--payload", action="store_true", help="print the body exactly as received (to read, or to `replay`)"
    )
    alerts_show.set_defaults(handler=cmd_alerts_show)

    replay = sub.add_parser("replay", help="feed a stored Alertmanager payload through the webhook's decisions")
    replay.add_argument("file", type=Path)
    replay.add_argument("--dry-run", action="store_true", help="plan external writes instead of sending them")
    replay.set_defaults(handler=cmd_replay)

    freeze = sub.add_parser("freeze", help="deploy freeze: status, set, lift").add_subparsers(
        dest="freeze_command", required=True
    )
    freeze.add_parser("status", help="frozen or not, since when and why").set_defaults(handler=cmd_freeze_status)
    for action, text in (("set", "freeze deploys"), ("lift", "lift the deploy freeze")):
        cmd = freeze.add_parser(action, help=f"{text}; noted on open model_integrity_failed tickets")
        cmd.add_argument("--reason", required=True)
        cmd.add_argument("--dry-run", action="store_true")
        cmd.set_defaults(handler=cmd_freeze_change, action=action)

    playbooks = sub.add_parser("playbooks", help="list or validate playbooks").add_subparsers(
        dest="playbooks_command", required=True
    )
    pb_list = playbooks.add_parser("list", help="the loaded playbooks")
    pb_list.set_defaults(handler=cmd_playbooks_list)
    pb_validate = playbooks.add_parser("validate", help="check a playbook file or folder; exit 1 on errors")
    pb_validate.add_argument(
        "path", nargs="?", type=Path, help="a playbook file or a folder of them (default: the configured playbooks)"
    )
    pb_validate.set_defaults(handler=cmd_playbooks_validate)

    demo = sub.add_parser("demo", help="sample alerts through a dry-run receiver and worker, on a Redis of their own")
    demo.add_argument("--port", type=int, help="the receiver's port (default: a free one)")
    demo.add_argument("--keep", action="store_true", help="leave it all running; print how to browse and stop it")
    demo.set_defaults(handler=cmd_demo)
    return parser


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from responder.worker import run_worker

    run_worker(settings, burst=args.burst)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.store.redisconn import redis_client

    catalog = load_catalog(settings.playbooks_dir)
    playbook = catalog.get(args.playbook)
    labels = dict(args.label)
    labels.setdefault("alertname", playbook.alertname or playbook.name)
    alert = _manual_alert(labels, dict(args.annotation))
    redis = redis_client(settings)
    record = Intake(redis, settings, catalog).enqueue_manual(
        playbook.name, alert, dry_run=args.dry_run, requested_by=requester()
    )
    return _queued(redis, settings, record.id, args)


def _manual_alert(labels: dict[str, str], annotations: dict[str, str]) -> Alert:
    return Alert(
        status="firing",
        labels=labels,
        annotations=annotations,
        startsAt=datetime.now(UTC),
        fingerprint=uuid.uuid4().hex[:16],
    )


def _colour() -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _queued(redis: Redis, settings: Settings, job_id: str, args: argparse.Namespace) -> int:
    """Print the id of the run just queued; with --wait, its record once it ended (meanwhile its
    progress goes to stderr; a run that does not end in time is a WaitTimedOut: exit 1), and
    without, a warning on stderr when no worker listens to take it."""
    from responder.waiting import RunWait, warn_without_worker

    print(job_id, flush=True)
    if not args.wait:
        warn_without_worker(redis, settings.queue, err=sys.stderr)
        return EXIT_OK
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    record = RunWait(runs, redis, settings.queue, timeout=args.timeout, err=sys.stderr).follow(job_id)
    print(output.run_text(record, colour=_colour()))
    return EXIT_OK if record.status == "succeeded" else EXIT_FAILED


def _runs(settings: Settings) -> RunStore:
    from responder.store.redisconn import redis_client

    return RunStore(redis_client(settings), retention_seconds=settings.dedup_retention_seconds)


def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    records = _runs(settings).recent(limit=args.limit, status=args.status)
    if args.json:
        print(json.dumps([r.summary() for r in records], indent=2))
    else:
        print(output.runs_table(records, now=datetime.now(UTC), colour=_colour()))
    return EXIT_OK


def cmd_jobs_show(args: argparse.Namespace, settings: Settings) -> int:
    record = _runs(settings).get(args.job_id)
    print(json.dumps(record.document(), indent=2) if args.json else output.run_text(record, colour=_colour()))
    return EXIT_OK


def cmd_jobs_retry(args: argparse.Namespace, settings: Settings) -> int:
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.store.redisconn import redis_client

    redis = redis_client(settings)
    runs = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    record = runs.get(args.job_id)
    if record.status != "failed":
        raise CommandFailed(f"run {record.id} is {record.status}; only failed runs can be retried")
    Intake(redis, settings, load_catalog(settings.playbooks_dir)).requeue(record)
    return _queued(redis, settings, record.id, args)


def _history(settings: Settings) -> History:
    from responder.store.redisconn import redis_client

    return History(
        redis_client(settings), keep=settings.history_keep, retention_seconds=settings.history_retention_seconds
    )


def cmd_alerts_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    records = _history(settings).recent(limit=args.limit)
    print(json.dumps([r.summary() for r in records], indent=2) if args.json else output.notifications_table(records))
    return EXIT_OK


def cmd_alerts_show(args: argparse.Namespace, settings: Settings) -> int:
    if args.payload:
        sys.stdout.buffer.write(_history(settings).payload(args.notification_id) + b"\n")
        return EXIT_OK
    record = _history(settings).get(args.notification_id)
    print(record.model_dump_json(indent=2) if args.json else output.notification_text(record))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from responder.alerts import Notification
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.store.redisconn import redis_client

    try:
        payload = args.file.read_bytes()
        notification = Notification.model_validate_json(payload)
    except OSError as exc:
        raise CommandFailed(f"cannot read {args.file}: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise CommandFailed(f"{args.file} is not an Alertmanager webhook payload: {where}: {first['msg']}") from None
    intake = Intake(redis_client(settings), settings, load_catalog(settings.playbooks_dir))
    for d in intake.accept(notification, source="replay", dry_run=args.dry_run, payload=payload):
        reason = f" ({d.reason})" if d.reason else ""
        job = f" -> {d.job_id}" if d.job_id else ""
        print(f"{d.alertname} {d.status} {d.fingerprint}: {d.decision}{job}{reason}")
    return EXIT_OK


def cmd_freeze_status(args: argparse.Namespace, settings: Settings) -> int:
    from responder.freeze import FreezeLedger
    from responder.runtime import Runtime

    runtime = Runtime.build(settings)
    value = runtime.integrations(dry_run=False).github.get_variable(settings.freeze_variable)
    entry = FreezeLedger(runtime.redis).current()
    print(output.freeze_text(settings.freeze_variable, value, entry))
    return EXIT_OK


def cmd_freeze_change(args: argparse.Namespace, settings: Settings) -> int:
    """Run the freeze-set/freeze-lift playbook in this process: no worker or queue in the way."""
    from responder.intake import Intake
    from responder.playbooks.runner import run_playbook
    from responder.runtime import Runtime

    if not args.reason.strip():
        raise ConfigError("--reason must not be empty")
    runtime = Runtime.build(settings)
    playbook = f"freeze-{args.action}"
    alert = _manual_alert({"alertname": playbook}, {"reason": args.reason})
    record = Intake(runtime.redis, settings, runtime.catalog).enqueue_manual(
        playbook, alert, dry_run=args.dry_run, requested_by=requester(), queue=False
    )
    record = run_playbook(runtime, record.id, final_attempt=True)
    print(output.run_text(record, colour=_colour()))
    return EXIT_OK if record.status == "succeeded" else EXIT_FAILED


def cmd_playbooks_list(args: argparse.Namespace, settings: Settings) -> int:
    from responder.playbooks.catalog import load_catalog

    catalog = load_catalog(settings.playbooks_dir)
    print(output.playbooks_table(list(catalog.playbooks.values())))
    return EXIT_OK


def cmd_playbooks_validate(args: argparse.Namespace, settings: Settings) -> int:
    from responder.playbooks.catalog import unknown_approver_groups, validate_path

    path = args.path or settings.playbooks_dir
    names, problems = validate_path(path, setting=None if args.path else "RESPONDER_PLAYBOOKS_DIR")
    problems += unknown_approver_groups(path, settings.approvers) if not problems else []
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{len(names)} playbook(s) valid in {path}: {', '.join(names)}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from responder.demo import run_demo

    return run_demo(settings, port=args.port, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
