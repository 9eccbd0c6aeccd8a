"""The step registry: one typed model per step kind, each with the code that runs it.

A playbook's steps parse into the ``Step`` discriminated union at load time, so an unknown
kind or parameter fails validation instead of a run. Each ``run`` says whether it is safe
to retry and why; a run's completed steps are never run again by a retry of that run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from responder import tickets
from responder.alerts import IDENTIFIER, Alert
from responder.errors import AlertError, PermanentError
from responder.integrations.base import Ticket, TicketDraft, TicketKey
from responder.manifest import is_sha256, normalise_digest
from responder.playbooks import templating
from responder.playbooks.context import StepContext


class StepResult(BaseModel):
    detail: str
    url: str | None = None
    planned: bool = False
    outputs: dict[str, str] = Field(default_factory=dict)


class When(BaseModel):
    """Run the step only if every named label has the given value (or one of the values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    labels: dict[str, str | list[str]]

    def matches(self, alert: Alert) -> bool:
        for name, wanted in self.labels.items():
            allowed = [wanted] if isinstance(wanted, str) else wanted
            if alert.labels.get(name) not in allowed:
                return False
        return True

    def describe(self) -> str:
        return " and ".join(f"{k} in {v}" if isinstance(v, list) else f"{k}={v}" for k, v in self.labels.items())


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _templates_parse(self) -> Params:
        for value in self.__dict__.values():
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    templating.check(text)
        return self


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    when: When | None = None


# --- freeze_deploys ---------------------------------------------------------------------


class FreezeParams(Params):
    variable: str = "{{ settings.freeze_variable }}"
    value: str = "true"


class FreezeDeploys(StepBase):
    """Set the repository Actions variable that CI reads to block deploys.

    Retry-safe: the variable is read first; already at the value is success.
    """

    kind: Literal["freeze_deploys"]
    params: FreezeParams = Field(default_factory=FreezeParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        outcome = ctx.github.set_variable(ctx.render(self.params.variable), ctx.render(self.params.value))
        return StepResult(detail=outcome.detail, planned=outcome.planned)


# --- verify_manifest_digest -------------------------------------------------------------


class VerifyParams(Params):
    annotation: str = "deployed_digest"


class VerifyManifestDigest(StepBase):
    """Compare the manifest's artifact sha256 with the digest the alert reports. Read-only."""

    kind: Literal["verify_manifest_digest"]
    params: VerifyParams = Field(default_factory=VerifyParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        entry = ctx.manifest().find(ctx.model_id)
        if entry is None:
            raise PermanentError(f"model {ctx.model_id} is not in {ctx.settings.manifest_path}", system="github")
        manifest = normalise_digest(entry.artifact.sha256 if entry.artifact else "")
        deployed = normalise_digest(ctx.alert.annotations.get(self.params.annotation, ""))
        result = "missing" if not manifest or not deployed else ("match" if manifest == deployed else "mismatch")
        outputs = {
            "result": result,
            "manifest": manifest if is_sha256(manifest) else manifest[:80],
            "deployed": deployed if is_sha256(deployed) else deployed[:80],
        }
        detail = {
            "match": "deployed digest matches the manifest",
            "mismatch": f"digest mismatch: deployed {deployed[:12]}…, manifest {manifest[:12]}…",
            "missing": "digest missing: " + ("manifest has none" if not manifest else f"no {self.params.annotation}"),
        }[result]
        return StepResult(detail=detail, outputs=outputs)


# --- dispatch_workflow ------------------------------------------------------------------


class DispatchParams(Params):
    workflow: str
    reason: str
    model_version: str | None = None


class DispatchWorkflow(StepBase):
    """workflow_dispatch with exactly MODEL_ID, MODEL_VERSION and REASON.

    Not idempotent on GitHub's side: it is sent once per attempt of this step, and a run
    retried after this step completed does not send it again.
    """

    kind: Literal["dispatch_workflow"]
    params: DispatchParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        version = self._model_version(ctx)
        inputs = {"MODEL_ID": ctx.model_id, "MODEL_VERSION": version, "REASON": ctx.render(self.params.reason)}
        outcome = ctx.github.dispatch_workflow(ctx.render(self.params.workflow), inputs)
        return StepResult(detail=outcome.detail, url=outcome.url, planned=outcome.planned, outputs=inputs)

    def _model_version(self, ctx: StepContext) -> str:
        if self.params.model_version:
            version = ctx.render(self.params.model_version)
        elif ctx.alert.labels.get("model_version"):
            version = ctx.alert.labels["model_version"]
        else:
            entry = ctx.manifest().find(ctx.model_id)
            if entry is None:
                raise PermanentError(
                    f"no model_version label and model {ctx.model_id} is not in {ctx.settings.manifest_path}",
                    system="github",
                )
            version = entry.current_version
        if not IDENTIFIER.fullmatch(version):
            raise AlertError(f"model version {version[:40]!r} is not a valid identifier")
        return version


# --- open_incident ----------------------------------------------------------------------


class IncidentParams(Params):
    summary: str = "{{ annotations.summary | default(alertname) }}"
    labels: list[str] = Field(default_factory=list, description="Labels added to the standard ones.")
    checklist_label: str | None = Field(None, description="List this label's values (across the group).")
    checklist_title: str = "Affected"


class OpenIncident(StepBase):
    """Open the incident ticket for (alertname, model_id) unless one is open.

    Retry-safe: under a Redis lock, the open ticket is looked up by its labels before one is
    created, so concurrent runs and retries find the ticket instead of opening another.
    """

    kind: Literal["open_incident"]
    params: IncidentParams = Field(default_factory=IncidentParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        alert = ctx.alert
        key = TicketKey(alertname=alert.alertname, model_id=ctx.model_id)
        items = self._checklist_items(ctx)
        lock = ctx.redis.lock(f"responder:lock:ticket:{key.alertname}:{key.model_id}", timeout=60, blocking_timeout=30)
        with lock:
            existing = ctx.tracker.find_open(key)
            if existing is not None:
                return self._update_existing(ctx, existing, items)
            labels = [*self.params.labels, f"severity:{alert.labels.get('severity', 'none')}"]
            draft = TicketDraft(
                key=key,
                title=tickets.title(alert, ctx.render(self.params.summary)),
                body=tickets.body(
                    ctx.run,
                    runbook_url=ctx.settings.runbook_url,
                    checklist=(self.params.checklist_title, items) if items else None,
                ),
                labels=[ctx.render(label) for label in labels],
            )
            ticket = ctx.tracker.open(draft)
        if ticket.planned:
            return StepResult(
                detail=f"would open ticket: {draft.title}", planned=True, outputs={"labels": ",".join(draft.labels)}
            )
        return StepResult(detail=f"opened {ticket.ref}", url=ticket.url, outputs={"ticket": ticket.ref})

    def _checklist_items(self, ctx: StepContext) -> list[str]:
        label = self.params.checklist_label
        if label is None:
            return []
        values = [a.labels.get(label, "") for a in [ctx.alert, *ctx.run.related]]
        return sorted({v for v in values if v})

    def _update_existing(self, ctx: StepContext, ticket: Ticket, items: list[str]) -> StepResult:
        missing = [item for item in items if f"- [ ] {tickets.escape_markdown(item)}" not in ticket.body]
        if missing:
            text = f"Also affected ({self.params.checklist_label}), from run `{ctx.run.id}`:\n\n" + "\n".join(
                f"- [ ] {tickets.escape_markdown(item)}" for item in missing
            )
            outcome = ctx.tracker.comment(ticket, text)
            return StepResult(
                detail=f"{ticket.ref} already open; added {', '.join(missing)}", url=ticket.url, planned=outcome.planned
            )
        return StepResult(detail=f"{ticket.ref} already open", url=ticket.url, outputs={"ticket": ticket.ref})


Step = Annotated[
    FreezeDeploys | VerifyManifestDigest | DispatchWorkflow | OpenIncident,
    Field(discriminator="kind"),
]
STEP_KINDS: tuple[str, ...] = ("freeze_deploys", "verify_manifest_digest", "dispatch_workflow", "open_incident")
