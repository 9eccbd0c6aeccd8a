"""What responder writes on incident tickets, as Documents (rendered per tracker).

Alert text is untrusted: it only ever enters a Document as Text, Code or table cells,
which the renderers escape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from responder.document import Block, Bullets, Checklist, Code, Document, Heading, Inline, Link, Table, Text, para
from responder.runs import ChangeRequest, FollowedRun, RunRecord, StepRecord, time_to_resolve
from responder.timefmt import clock, duration, span, utc_text

TITLE_LIMIT = 250


def title(alertname: str, model_id: str, summary: str) -> str:
    line = " ".join(summary.split()) or alertname
    text = f"[{alertname}] {model_id}: {line}"
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def _when(value: datetime) -> str:
    return utc_text(value)


def step_status(step: StepRecord) -> str:
    """The status column: a check that found a problem reads as the finding, never as "ok"; a step
    waiting for a retry says when it is."""
    if step.finding:
        return f"❌ FINDING: {step.finding}"
    if step.status == "retrying":
        return f"retrying at {clock(step.retry_at)}"
    return step.status


def step_table(steps: Sequence[StepRecord]) -> Table:
    rows = tuple((s.name, step_status(s), (s.error or s.detail) + (f" {s.url}" if s.url else "")) for s in steps)
    return Table(("step", "status", "result"), rows or (("(none)", "", ""),))


def _run_ref(run: RunRecord) -> Code:
    return Code(run.id)


def incident(run: RunRecord, *, runbook_url: str | None, checklist: tuple[str, list[str]] | None) -> Document:
    """The body of a new incident ticket."""
    alert = run.alert
    blocks: list[Block] = [
        para(
            Text(alert.alertname, strong=True),
            " is firing for model ",
            Code(alert.model_id or "?"),
            f" since {_when(alert.startsAt)}.",
        ),
        para("Opened by responder, playbook run ", _run_ref(run), "."),
    ]
    digest = next((s for s in run.steps if s.kind == "verify_manifest_digest"), None)
    if digest is not None and digest.outputs:
        blocks += _digest(digest)
    if checklist is not None:
        heading, items = checklist
        blocks += [Heading(heading), Checklist(tuple(items))]
    blocks += [Heading("Labels"), Table(("label", "value"), tuple(sorted(alert.labels.items())))]
    if alert.annotations:
        blocks += [Heading("Annotations"), Table(("annotation", "value"), tuple(sorted(alert.annotations.items())))]
    links = [
        ("Source (generatorURL)", alert.generatorURL),
        ("Alertmanager", run.external_url),
        ("Runbook", alert.annotations.get("runbook_url") or runbook_url or ""),
    ]
    blocks += [Heading("Links"), Bullets(tuple((Link(name, url),) for name, url in links if url))]
    blocks += [Heading("Playbook steps so far"), step_table(run.steps)]
    ended = [w for w in run.workflow_runs if w.finished]  # a ticket opened because one did not succeed
    if ended:
        rows = tuple((w.workflow, w.run_id, w.conclusion or w.note or w.status) for w in ended)
        blocks += [Heading("Workflow runs"), Table(("workflow", "run", "conclusion"), rows)]
    return Document(tuple(blocks))


def _digest(step: StepRecord) -> list[Block]:
    out = step.outputs
    verdict = {
        "match": "✅ digests match",
        "mismatch": "❌ digests DO NOT match",
        "missing": "⚠️ a digest is missing",
    }.get(out.get("result", ""), out.get("result", ""))
    return [
        Heading("Artifact digest"),
        para(Text(verdict, strong=True)),
        Bullets(
            (
                (Text("deployed (alert deployed_digest): "), Code(out.get("deployed") or "missing")),
                (Text("manifest (artifact.sha256): "), Code(out.get("manifest") or "missing")),
            )
        ),
    ]


def refired(run: RunRecord, new_items: Sequence[str], checklist_title: str) -> Document:
    """Comment for a new firing instance of an alert whose ticket is still open."""
    alert = run.alert
    blocks: list[Block] = [
        para(
            f"Fired again at {_when(alert.startsAt)} (fingerprint ",
            Code(alert.fingerprint),
            "), run ",
            _run_ref(run),
            ".",
        ),
    ]
    if new_items:
        blocks += [Heading(checklist_title), Checklist(tuple(new_items))]
    blocks += [step_table(run.steps)]
    return Document(tuple(blocks))


def retried(run: RunRecord, steps: Sequence[StepRecord]) -> Document:
    """Comment with the results of steps that finished on a retry after the ticket was opened."""
    return Document.of(
        para(
            f"{'Steps' if len(steps) > 1 else 'A step'} of run ",
            _run_ref(run),
            f" retried after this ticket was opened finished (attempt {run.attempts}):",
        ),
        step_table(steps),
    )


def resolved(run: RunRecord, firing: RunRecord | None = None) -> Document:
    """The resolve note; with the firing run (``firing``), also how long after responder's first
    action it resolved and how the workflow runs that run dispatched ended."""
    alert = run.alert
    blocks: list[Block] = [
        para(
            f"Resolved at {_when(alert.endsAt)}; fired at {_when(alert.startsAt)}; "
            f"lasted {duration(alert.startsAt, alert.endsAt)} (fingerprint ",
            Code(alert.fingerprint),
            "). Run ",
            _run_ref(run),
            ".",
        ),
    ]
    took = time_to_resolve(firing, run) if firing is not None else None
    if firing is not None and took is not None:
        blocks.append(para(f"Resolved {span(took)} after responder's first action (run ", _run_ref(firing), ")."))
    if firing is not None and firing.workflow_runs:
        blocks += [
            Heading("Workflow runs it dispatched"),
            Bullets(tuple(_workflow_run_line(followed) for followed in firing.workflow_runs)),
        ]
    return Document(tuple(blocks))


def _workflow_run_line(followed: FollowedRun) -> tuple[Inline, ...]:
    """One followed workflow run: workflow, link, and how it ended (or that it is still running)."""
    if followed.status == "completed":
        ended = Text(followed.conclusion or "completed without a conclusion", strong=True)
    elif followed.note is not None:
        ended = Text(f"abandoned: {followed.note}", strong=True)
    else:
        ended = Text(f"still running ({followed.status})", strong=True)
    link = Link(f"run {followed.run_id}", followed.html_url) if followed.html_url else Code(followed.run_id)
    return (Code(followed.workflow), Text(" "), link, Text(": "), ended)


def rollback_note(run: RunRecord, *, model_id: str, from_version: str, to_version: str) -> Document:
    return Document.of(
        para(
            "Rolled back ",
            Code(model_id),
            " from ",
            Code(from_version),
            " to ",
            Code(to_version),
            ". Run ",
            _run_ref(run),
            ".",
        ),
        step_table(run.steps),
    )


def rollback_ticket(run: RunRecord, *, model_id: str, from_version: str, to_version: str) -> Document:
    reason = run.alert.annotations.get("reason", "")
    blocks: list[Block] = [
        para(
            "Model ",
            Code(model_id),
            " was rolled back from ",
            Code(from_version),
            " to ",
            Code(to_version),
            " by responder (run ",
            _run_ref(run),
            ").",
        ),
    ]
    if reason:
        blocks += [para("Reason: ", reason)]
    if run.requested_by:
        blocks += [para("Requested by: ", run.requested_by)]
    blocks += [Heading("Steps"), step_table(run.steps)]
    return Document(tuple(blocks))


def note(run: RunRecord, text: str) -> Document:
    """A free-text note (already rendered from a playbook template) with the run reference."""
    return Document.of(para(text, " (run ", _run_ref(run), ")"))


def storm(
    alertname: str, playbook: str, window_start: datetime, window_seconds: int, models: Sequence[str]
) -> Document:
    return Document.of(
        para(
            "More than the allowed number of ",
            Code(playbook),
            " runs started in the window from ",
            f"{_when(window_start)} ({window_seconds}s). Later ",
            Code(alertname),
            " alerts in it ran no steps (decision ",
            Code("suppressed"),
            "); they are listed here. ",
            "Check whether one cause (a bad deploy, a monitoring fault) is behind them.",
        ),
        Heading("Suppressed alerts (model_id)"),
        Checklist(tuple(models)),
    )


def storm_update(models: Sequence[str]) -> Document:
    return Document.of(para("More alerts suppressed by the storm guard:"), Checklist(tuple(models)))


def triage(run: RunRecord, reason: str) -> Document:
    alert = run.alert
    blocks: list[Block] = [
        para(
            "responder received an alert it could not act on, so no playbook ran for it. A person needs to look at it."
        ),
        para(Text("Why: ", strong=True), reason),
        para(
            "Fingerprint ", Code(alert.fingerprint), f", firing since {_when(alert.startsAt)}; run ", _run_ref(run), "."
        ),
        Heading("Labels"),
        Table(("label", "value"), tuple(sorted(alert.labels.items())) or (("(none)", ""),)),
    ]
    if alert.annotations:
        blocks += [Heading("Annotations"), Table(("annotation", "value"), tuple(sorted(alert.annotations.items())))]
    if alert.generatorURL:
        blocks += [Bullets(((Link("Source (generatorURL)", alert.generatorURL),),))]
    return Document(tuple(blocks))


INTEGRITY_ALERT = "model_integrity_failed"


def workflow_run_finished(run: RunRecord, followed: FollowedRun, *, governance_workflow: str) -> Document:
    """How a followed workflow run ended, with the evidence it uploaded. Never lifts a freeze: for an
    integrity alert it says that the freeze stays, whatever the conclusion."""
    took_text = (
        f" after {duration(followed.created_at, followed.updated_at)}"
        if followed.created_at and followed.updated_at
        else ""
    )
    link = Link(f"run {followed.run_id}", followed.html_url) if followed.html_url else Code(followed.run_id)
    blocks: list[Block] = [
        para(
            "Workflow ",
            Code(followed.workflow),
            " ",
            link,
            " concluded ",
            Text(followed.conclusion or "without a conclusion", strong=True),
            f"{took_text} (dispatched by step ",
            Code(followed.step),
            " of run ",
            _run_ref(run),
            ").",
        )
    ]
    if run.alertname == INTEGRITY_ALERT and followed.workflow == governance_workflow:
        if followed.conclusion != "success":
            blocks.append(
                para(
                    Text("The model failed its integrity check", strong=True),
                    " (governance concluded ",
                    Code(followed.conclusion or "none"),
                    "). The deploy freeze stays.",
                )
            )
        else:
            blocks.append(para("The governance check passed. The deploy freeze stays until a person lifts it."))
    if followed.artifacts:
        rows = tuple((a.name, a.status or (f"not read: {a.reason}" if a.reason else "-")) for a in followed.artifacts)
        blocks.append(Table(("artifact", "status"), rows))
    else:
        blocks.append(para("The run uploaded no artifacts."))
    return Document.of(*blocks)


def workflow_run_abandoned(run: RunRecord, followed: FollowedRun) -> Document:
    """Following a workflow run stopped before it completed."""
    link = Link(f"run {followed.run_id}", followed.html_url) if followed.html_url else Code(followed.run_id)
    return Document.paragraph(
        "Workflow ",
        Code(followed.workflow),
        " ",
        link,
        f": {followed.note or 'no longer followed'} (last seen ",
        Code(followed.status),
        "; run ",
        _run_ref(run),
        ").",
    )


def change_request(run: RunRecord, change: ChangeRequest, text: str) -> Document:
    """News of the change request a retraining run of ``run`` proposed (opened, refused, approved,
    changes requested, merged, closed), on the incident ticket."""
    what = f"change request #{change.pull_number}" if change.pull_number else "Change request"
    name: Inline = Link(what, change.pull_url) if change.pull_url else Text(what)
    proposal = f"{run.model_id} {change.version}" if change.version else f"{run.model_id}"
    return Document.paragraph(
        name, f" ({proposal}, from step ", Code(change.step), " of run ", _run_ref(run), f"): {text}"
    )
