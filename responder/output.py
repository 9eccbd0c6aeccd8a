"""Human-readable text for the CLI: tables of runs and playbooks, and one run's record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from responder.freeze import FreezeEntry
from responder.playbooks.model import Playbook
from responder.runs import RunRecord
from responder.store.history import NotificationRecord
from responder.timefmt import ago, took, utc_text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _time(value: datetime | None) -> str:
    return utc_text(value, suffix="Z") or "-"


STATUS_COLOURS = {  # step statuses and run statuses, and a step's finding (bold red: read it first)
    "ok": "32",
    "finding": "1;31",
    "planned": "36",
    "skipped": "35",
    "succeeded": "32",
    "failed": "31",
    "running": "33",
    "retrying": "33",
    "waiting": "33",
    "awaiting_approval": "33",
    "expired": "31",
    "queued": "36",
    "suppressed": "35",
}


def paint(text: str, status: str, colour: bool) -> str:
    """ANSI colour for a status, only when asked (a TTY without NO_COLOR)."""
    code = STATUS_COLOURS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def findings_marker(record: RunRecord) -> str:
    """How many problems the run's checks found ("1 FINDING", "2 FINDINGS"); "" for none."""
    count = len(record.findings)
    return f"{count} FINDING{'S' if count > 1 else ''}" if count else ""


def runs_table(records: Sequence[RunRecord], *, now: datetime, colour: bool = False) -> str:
    """Newest first: when, what and how it ended; statuses coloured on a terminal."""
    if not records:
        return "no runs yet"
    rows = [
        [
            r.id,
            r.playbook,
            r.model_id or "-",
            r.status + (" (dry-run)" if r.dry_run else "") + (", " + findings_marker(r) if r.findings else ""),
            ago(r.enqueued_at, now),
            took(r.started_at, r.ended_at),
        ]
        for r in records
    ]
    text = table(["id", "playbook", "model", "status", "queued", "took"], rows)
    if not colour:
        return text
    lines = text.splitlines()
    for i, record in enumerate(records, start=1):
        lines[i] = lines[i].replace(f" {record.status}", " " + paint(record.status, record.status, colour), 1)
        if marker := findings_marker(record):
            lines[i] = lines[i].replace(f", {marker}", ", " + paint(marker, "finding", colour), 1)
    return "\n".join(lines)


def playbooks_table(playbooks: Sequence[Playbook]) -> str:
    rows = [[p.name, p.alertname or "(manual)", ", ".join(s.name for s in p.steps)] for p in playbooks]
    return table(["playbook", "alertname", "steps"], sorted(rows))


def run_text(record: RunRecord, *, colour: bool = False) -> str:
    alert = record.alert
    status = paint(record.status.upper(), record.status, colour)
    marker = findings_marker(record)
    lines = [
        f"run {record.id}: {status}"
        + (" (dry-run)" if record.dry_run else "")
        + (f", {paint(marker, 'finding', colour)}" if marker else ""),
        f"  playbook   {record.playbook} ({record.source}"
        + (f", by {record.requested_by}" if record.requested_by else "")
        + ")",
        f"  alert      {alert.alertname} {alert.status}, model {alert.model_id or '-'}, fp {alert.fingerprint}",
        f"  fired at   {alert.startsAt.isoformat()}"
        + ("" if alert.still_open else f", resolved at {alert.endsAt.isoformat()}"),
        f"  enqueued   {_time(record.enqueued_at)}   ended {_time(record.ended_at)}   attempts {record.attempts}",
    ]
    if record.error:
        lines.append(f"  error      {record.error}")
    if record.findings:
        lines.append(f"  findings   {paint(', '.join(record.findings), 'finding', colour)}")
    lines.append("  steps:")
    if not record.steps:
        lines.append("    (none yet)")
    for step in record.steps:
        duration = f" {took(step.started_at, step.ended_at)}" if step.started_at and step.ended_at else ""
        shown = "finding" if step.finding else step.status  # a check that found a problem must not read OK
        lines.append(f"    {paint(f'{shown.upper():<8}', shown, colour)} {step.name} [{step.kind}]{duration}")
        if step.detail:
            lines.append(f"             {step.detail}")
        if step.url:
            lines.append(f"             {step.url}")
        if step.error:
            lines.append(f"             error: {step.error}")
    if record.workflow_runs:
        lines.append("  workflow runs:")
    for run in record.workflow_runs:
        state = run.status + (f"/{run.conclusion}" if run.conclusion else "")
        lines.append(f"    {state:<20} {run.workflow or '-'} (step {run.step}) {run.html_url or run.run_id}")
        if run.note:
            lines.append(f"             {run.note}")
        for artifact in run.artifacts:
            read = artifact.status or (f"not read: {artifact.reason}" if artifact.reason else "no status")
            lines.append(f"             artifact {artifact.name}: {read}")
    if record.change_requests:
        lines.append("  change requests:")
    for change in record.change_requests:
        approved = ", ".join(f"{who} ({group})" for group, who in change.approved_by.items())
        lines.append(
            f"    {change.status:<20} {record.model_id or '-'} {change.version or '?'} (step {change.step}) "
            + (change.pull_url or "no pull request")
            + (f", approved by {approved}" if approved else "")
        )
        if change.note:
            lines.append(f"             {change.note}")
    return "\n".join(lines)


def notifications_table(records: Sequence[NotificationRecord]) -> str:
    if not records:
        return "no notifications received yet"
    rows = []
    for r in records:
        counts = r.summary()["decisions"]
        assert isinstance(counts, dict)
        decided = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no alerts"
        rows.append([r.id, _time(r.received_at), r.source, r.status, decided])
    return table(["id", "received", "source", "status", "decisions"], rows)


def notification_text(record: NotificationRecord) -> str:
    lines = [
        f"notification {record.id}: received {_time(record.received_at)} via {record.source}",
        f"  group      {record.group_key or '-'} ({record.status}, receiver {record.receiver or '-'})",
    ]
    if record.truncated_alerts:
        lines.append(f"  truncated  Alertmanager left out {record.truncated_alerts} alert(s)")
    lines.append("  alerts:")
    for a in record.alerts:
        lines.append(
            f"    {a.decision.upper():<9} {a.alertname} {a.status} model {a.model_id or '-'} fp {a.fingerprint}"
        )
        if a.reason:
            lines.append(f"              why: {a.reason}")
        if a.job_id:
            lines.append(f"              run: responder jobs show {a.job_id}")
    return "\n".join(lines)


def freeze_text(variable: str, value: str | None, entry: FreezeEntry | None) -> str:
    if value is None:
        state = f"deploys are not frozen ({variable} is not set)"
    elif value == "true":
        state = f"deploys are FROZEN ({variable}=true)"
    else:
        state = f"deploys are not frozen ({variable}={value})"
    lines = [state]
    if entry is not None and (value == "true") == entry.frozen:
        verb = "frozen" if entry.frozen else "lifted"
        lines.append(f"  {verb} since {entry.since} by {entry.by}: {entry.reason} (run {entry.run_id})")
    elif entry is not None:
        lines.append(
            f"  note: responder last recorded {'a freeze' if entry.frozen else 'a lift'} at {entry.since}; "
            f"the variable was changed outside responder since"
        )
    return "\n".join(lines)
