"""Steps on incident tickets (GitHub issues or Jira, behind the Tracker interface)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, cast

from pydantic import Field

from responder import tickets
from responder.document import Document
from responder.integrations.base import Ticket, TicketDraft, TicketKey
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Params, StepBase, StepResult
from responder.store.redis_keys import TRIAGE_LABEL, digest, storm_models_key, storm_reported_key


class IncidentParams(Params):
    summary: str = "{{ annotations.summary | default(alertname) }}"
    labels: list[str] = Field(default_factory=list, description="Labels added to the standard ones.")
    checklist_label: str | None = Field(None, description="List this label's values (across the group).")
    checklist_title: str = "Affected"


class OpenIncident(StepBase):
    """Open the incident ticket for (alertname, model_id), or note a re-fire on the open one.

    Retry-safe: under a Redis lock, the open ticket is looked up by its labels before one is
    created, so concurrent runs and retries find the ticket instead of opening another. Which
    firing instances a ticket already shows is kept in Redis, so a sibling alert of the same
    notification is not reported as a re-fire.
    """

    kind: Literal["open_incident"]
    params: IncidentParams = Field(default_factory=IncidentParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        alert = ctx.alert
        key = TicketKey(alertname=alert.alertname, model_id=ctx.model_id)
        items = self._checklist_items(ctx)
        with ctx.ticket_slot(key) as slot:
            existing = slot.existing
            if existing is not None and slot.found_again:
                ctx.ticket_memory(existing).remember(ctx.instance_keys(), items)
                return StepResult(
                    detail=f"opened {existing.ref} (found again after a lost answer)",
                    url=existing.url,
                    outputs={"ticket": existing.ref},
                )
            if existing is not None:
                return self._refire(ctx, existing, items)
            labels = [*self.params.labels, f"severity:{alert.labels.get('severity', 'none')}"]
            draft = TicketDraft(
                key=key,
                title=tickets.title(alert.alertname, ctx.model_id, ctx.render(self.params.summary)),
                body=tickets.incident(
                    ctx.run,
                    runbook_url=ctx.settings.runbook_url,
                    checklist=(self.params.checklist_title, items) if items else None,
                ),
                labels=tuple(ctx.render(label) for label in labels),
            )
            ticket = slot.open(draft)
            if ticket.planned:
                return StepResult(detail=f"would open ticket: {draft.title}", planned=True)
            ctx.ticket_memory(ticket).remember(ctx.instance_keys(), items)
        return StepResult(detail=f"opened {ticket.ref}", url=ticket.url, outputs={"ticket": ticket.ref})

    def _checklist_items(self, ctx: StepContext) -> list[str]:
        label = self.params.checklist_label
        if label is None:
            return []
        values = [a.labels.get(label, "") for a in [ctx.alert, *ctx.run.related]]
        return sorted({v for v in values if v})

    def _refire(self, ctx: StepContext, ticket: Ticket, items: list[str]) -> StepResult:
        memory = ctx.ticket_memory(ticket)
        if memory.shows(ctx.alert.instance_key()):
            return StepResult(
                detail=f"{ticket.ref} already shows this alert", url=ticket.url, outputs={"ticket": ticket.ref}
            )
        new_items = memory.new_items(items)
        outcome = ctx.tracker.comment(ticket, tickets.refired(ctx.run, new_items, self.params.checklist_title))
        if not outcome.planned:
            memory.remember(ctx.instance_keys(), new_items)
        added = f"; added {', '.join(new_items)}" if new_items else ""
        return StepResult(
            detail=f"{ticket.ref} still open: noted the re-fire{added}",
            url=ticket.url,
            planned=outcome.planned,
            outputs={"ticket": ticket.ref},
        )


class CommentParams(Params):
    text: str | None = Field(None, description="Template; default: the resolve note (resolved at, fired at, lasted).")


class CommentIncident(StepBase):
    """Comment on the open ticket of this alert's (alertname, model_id); skipped when none is open.

    Not idempotent, but a run's completed steps are not repeated.
    """

    kind: Literal["comment_incident"]
    params: CommentParams = Field(default_factory=CommentParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        key = TicketKey(alertname=ctx.alert.alertname, model_id=ctx.model_id)
        ticket = ctx.tracker.find_open(key)
        if ticket is None:
            return StepResult(detail=f"no open ticket for {key.alertname} {ctx.model_id}", skipped=True)
        body = (
            tickets.resolved(ctx.run, ctx.firing_run())
            if self.params.text is None
            else tickets.note(ctx.run, ctx.render(self.params.text))
        )
        outcome = ctx.tracker.comment(ticket, body)
        return StepResult(
            detail=outcome.detail,
            url=outcome.url or ticket.url,
            planned=outcome.planned,
            outputs={"ticket": ticket.ref},
        )


class CloseIncident(StepBase):
    """Close the open ticket of (alertname, model_id) (Jira: transition to done); skipped when none."""

    kind: Literal["close_incident"]

    def run(self, ctx: StepContext) -> StepResult:
        key = TicketKey(alertname=ctx.alert.alertname, model_id=ctx.model_id)
        ticket = ctx.tracker.find_open(key)
        if ticket is None:
            return StepResult(detail=f"no open ticket for {key.alertname} {ctx.model_id}", skipped=True)
        outcome = ctx.tracker.close(ticket)
        return StepResult(detail=outcome.detail, url=ticket.url, planned=outcome.planned)


class CommentIncidentsParams(Params):
    alertname: str
    text: str


class CommentIncidents(StepBase):
    """Comment on every open ticket of an alertname (e.g. freeze changes on integrity tickets)."""

    kind: Literal["comment_incidents"]
    params: CommentIncidentsParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        alertname = ctx.render(self.params.alertname)
        found = ctx.tracker.search_open(alertname=alertname)
        if not found:
            return StepResult(detail=f"no open {alertname} tickets", skipped=True)
        return _comment_all(ctx, found, tickets.note(ctx.run, ctx.render(self.params.text)))


class NoteParams(Params):
    from_version: str
    to_version: str


class NoteRollback(StepBase):
    """Note a rollback on the model's open incident tickets, or open a `[rollback]` ticket when none is open."""

    kind: Literal["note_rollback"]
    params: NoteParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        versions = {
            "from_version": ctx.render(self.params.from_version),
            "to_version": ctx.render(self.params.to_version),
        }
        key = TicketKey(alertname="rollback", model_id=ctx.model_id)
        with ctx.ticket_slot(key, find=lambda: ctx.tracker.search_open(model_id=ctx.model_id)) as slot:
            found = slot.found
            if found and slot.found_again:
                return StepResult(detail=f"opened {found[0].ref} (found again after a lost answer)", url=found[0].url)
            if found:
                body = tickets.rollback_note(ctx.run, model_id=ctx.model_id, **versions)
                return _comment_all(ctx, found, body)
            summary = f"rolled back from {versions['from_version']} to {versions['to_version']}"
            draft = TicketDraft(
                key=key,
                title=tickets.title("rollback", ctx.model_id, summary),
                body=tickets.rollback_ticket(ctx.run, model_id=ctx.model_id, **versions),
            )
            ticket = slot.open(draft)
        if ticket.planned:
            return StepResult(detail=f"would open ticket: {draft.title}", planned=True)
        return StepResult(detail=f"opened {ticket.ref}", url=ticket.url, outputs={"ticket": ticket.ref})


def _comment_all(ctx: StepContext, found: list[Ticket], body: Document) -> StepResult:
    """Comment on each ticket; not idempotent, but a run's completed steps are not repeated."""
    planned = False
    for ticket in found:
        planned |= ctx.tracker.comment(ticket, body).planned
    refs = ", ".join(t.ref for t in found)
    return StepResult(
        detail=("would comment on " if planned else "commented on ") + refs, url=found[0].url, planned=planned
    )


class OpenTriageTicket(StepBase):
    """A "needs triage" ticket for an alert that was rejected, once per fingerprint.

    Retry-safe like open_incident: claimed, then found again after a lost answer.
    """

    kind: Literal["open_triage_ticket"]

    def run(self, ctx: StepContext) -> StepResult:
        alert = ctx.alert
        key = TicketKey(alertname=TRIAGE_LABEL, fingerprint=digest(alert.fingerprint))
        reason = ctx.run.reason or "rejected"
        with ctx.ticket_slot(key) as slot:
            existing = slot.existing
            if existing is not None:
                return StepResult(detail=f"{existing.ref} already open for this fingerprint", url=existing.url)
            name = alert.alertname or "(no alertname)"
            draft = TicketDraft(
                key=key, title=tickets.title("needs triage", name, reason), body=tickets.triage(ctx.run, reason)
            )
            ticket = slot.open(draft)
        if ticket.planned:
            return StepResult(detail=f"would open ticket: {draft.title}", planned=True)
        return StepResult(detail=f"opened {ticket.ref}", url=ticket.url, outputs={"ticket": ticket.ref})


class ReportStorm(StepBase):
    """Open or update the storm ticket of a playbook and window with the suppressed models.

    Each model is reported once (a Redis set of reported entries); runs for later batches
    add a comment with the new ones.
    """

    kind: Literal["report_storm"]

    def run(self, ctx: StepContext) -> StepResult:
        playbook = ctx.alert.labels.get("storm_playbook", "")
        window = int(ctx.alert.labels.get("storm_window", "0"))
        key = TicketKey(alertname=ctx.alert.alertname, storm=f"{playbook}-{window}")
        models_key = storm_models_key(playbook, window)
        reported_key = storm_reported_key(playbook, window)
        with ctx.ticket_slot(key) as slot:
            suppressed = [m.decode() for m in cast(list[bytes], ctx.redis.lrange(models_key, 0, -1))]
            reported = {m.decode() for m in cast(set[bytes], ctx.redis.smembers(reported_key))}
            new = [m for m in dict.fromkeys(suppressed) if m not in reported]
            if not new:
                return StepResult(detail="nothing new to report", skipped=True)
            existing = slot.existing
            if existing is not None and not slot.found_again:
                outcome = ctx.tracker.comment(existing, tickets.storm_update(new))
                result = StepResult(
                    detail=f"added {len(new)} to {existing.ref}", url=existing.url, planned=outcome.planned
                )
            elif existing is not None:
                result = StepResult(detail=f"opened {existing.ref} (found again after a lost answer)", url=existing.url)
            else:
                start = datetime.fromtimestamp(window * ctx.settings.storm_window_seconds, UTC)
                draft = TicketDraft(
                    key=key,
                    title=tickets.title(ctx.alert.alertname, "storm", f"{len(new)} alerts suppressed"),
                    body=tickets.storm(ctx.alert.alertname, playbook, start, ctx.settings.storm_window_seconds, new),
                    labels=("storm",),
                )
                ticket = slot.open(draft)
                result = StepResult(
                    detail=f"opened {ticket.ref} listing {len(new)}", url=ticket.url or None, planned=ticket.planned
                )
            if not result.planned:
                ctx.redis.sadd(reported_key, *new)
                ctx.redis.expire(reported_key, ctx.settings.dedup_retention_seconds)
        return result
