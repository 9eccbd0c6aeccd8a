"""Human-readable text for the CLI: tables of runs and playbooks, and one run's record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from responder.playbooks.model import Playbook
from responder.runs import RunRecord


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def runs_table(records: Sequence[RunRecord]) -> str:
    if not records:
        return "no runs yet"
    rows = [
        [
            r.id,
            r.playbook,
            r.model_id or "-",
            r.status + (" (dry-run)" if r.dry_run else ""),
            _time(r.enqueued_at),
            _time(r.ended_at),
        ]
        for r in records
    ]
    return table(["id", "playbook", "model", "status", "enqueued", "ended"], rows)


def playbooks_table(playbooks: Sequence[Playbook]) -> str:
    rows = [[p.name, p.alertname or "(manual)", ", ".join(s.name for s in p.steps)] for p in playbooks]
    return table(["playbook", "alertname", "steps"], sorted(rows))


def run_text(record: RunRecord) -> str:
    alert = record.alert
    lines = [
        f"run {record.id}: {record.status.upper()}" + (" (dry-run)" if record.dry_run else ""),
        f"  playbook   {record.playbook} ({record.source})",
        f"  alert      {alert.alertname} {alert.status}, model {alert.model_id or '-'}",
        f"  fingerprint {alert.fingerprint}",
        f"  fired at   {alert.startsAt.isoformat()}",
        f"  enqueued   {_time(record.enqueued_at)}   ended {_time(record.ended_at)}   attempts {record.attempts}",
    ]
    if record.error:
        lines.append(f"  error      {record.error}")
    lines.append("  steps:")
    if not record.steps:
        lines.append("    (none yet)")
    for step in record.steps:
        took = ""
        if step.started_at and step.ended_at:
            took = f" {(step.ended_at - step.started_at).total_seconds() * 1000:.0f}ms"
        lines.append(f"    {step.status.upper():<8} {step.name} [{step.kind}]{took}")
        if step.detail:
            lines.append(f"             {step.detail}")
        if step.url:
            lines.append(f"             {step.url}")
        if step.error:
            lines.append(f"             error: {step.error}")
    return "\n".join(lines)
