"""Steps that act on the ML platform repository: deploy freeze, digest check, workflow dispatch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from responder.alerts import IDENTIFIER
from responder.errors import AlertError, PermanentError, TransientError
from responder.freeze import FreezeLedger
from responder.manifest import is_sha256, normalise_digest
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Duration, Params, StepBase, StepResult
from responder.playbooks.steps.dispatching import Cooldown, Dispatch, answer_lost, step_outputs, with_change_request

IDENTIFIER_RULE = "(1 to 128 letters, digits, '.', '_', '-', starting with a letter or digit)"


class FreezeParams(Params):
    variable: str = "{{ settings.freeze_variable }}"
    value: str = "true"
    reason: str = "{{ alertname }} on {{ model_id }}"


class FreezeDeploys(StepBase):
    """Set the repository Actions variable that CI reads to block (or, with "false", allow) deploys.

    Retry-safe: the variable is read first; already at the value is success, and so is a create
    answered 409 "Already exists" (another run created it since the read) once a second read
    finds the value. Who set it, when and why are kept in Redis for `responder freeze status`.
    """

    kind: Literal["freeze_deploys"]
    params: FreezeParams = Field(default_factory=FreezeParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        variable, value = ctx.render(self.params.variable), ctx.render(self.params.value)
        outcome = ctx.github.set_variable(variable, value)
        if not outcome.planned:
            FreezeLedger(ctx.redis).record(
                frozen=value == "true",
                reason=ctx.render(self.params.reason),
                run_id=ctx.run.id,
                by=ctx.run.requested_by or "responder",
                changed=outcome.changed,
            )
        return StepResult(
            detail=outcome.detail, planned=outcome.planned, outputs={"variable": variable, "value": value}
        )


class VerifyParams(Params):
    annotation: str = "deployed_digest"


class VerifyManifestDigest(StepBase):
    """Compare the manifest's artifact sha256 with the digest the alert reports. Read-only.

    The comparison is the step's outcome, not its status: the step is ok whenever it could
    compare, and anything but "match" is its finding. "missing" (either digest absent) is a
    finding too, because then on-call cannot confirm the deployed artifact is the right one.
    """

    kind: Literal["verify_manifest_digest"]
    params: VerifyParams = Field(default_factory=VerifyParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        entry = ctx.manifest_entry()
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
        return StepResult(detail=detail, outputs=outputs, finding=None if result == "match" else result)


class DispatchParams(Params):
    workflow: str
    reason: str = Field(description="REASON: an identifier once rendered, as MODEL_ID and MODEL_VERSION are.")
    model_version: str | None = None
    cooldown: Duration | None = Field(
        None,
        description="At most one dispatch of this workflow per model in this window (default: the "
        "playbook's retraining_cooldown for the retraining workflow, none otherwise).",
    )
    change_request: bool = Field(
        False,
        description="When the retraining run it starts concludes success, propose its version in a change "
        "request (responder.change_requests).",
    )

    @field_validator("reason")
    @classmethod
    def _reason_is_identifier(cls, value: str) -> str:
        """A reason without a template is what will be sent: refuse a bad one at load, not at a run."""
        if "{" not in value and not IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value[:40]!r} is not a valid identifier {IDENTIFIER_RULE}")
        return value


class DispatchWorkflow(StepBase):
    """workflow_dispatch with exactly MODEL_ID, MODEL_VERSION and REASON.

    At most one run per dispatch (this step of this run), although GitHub cannot de-duplicate
    dispatches and their answers can be lost: see ``Dispatch``. A cooldown (a Redis key per
    workflow and model, held by the dispatch that took it) keeps re-fires and sibling runs from
    dispatching again within the window. It is given back only when nothing was started: GitHub
    refused the dispatch, or it rate-limited it. A dispatch whose answer was lost keeps it, and
    sends again under it once the run list has shown that nothing was started.
    """

    kind: Literal["dispatch_workflow"]
    params: DispatchParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        result = self._dispatch(ctx)
        return with_change_request(result) if self.params.change_request else result

    def _dispatch(self, ctx: StepContext) -> StepResult:
        workflow = ctx.render(self.params.workflow)
        version = self._model_version(ctx)
        inputs = {"MODEL_ID": ctx.model_id, "MODEL_VERSION": version, "REASON": self._reason(ctx)}
        dispatch = Dispatch(ctx, self.name, workflow, inputs)
        cooldown = Cooldown(ctx, workflow, self._cooldown(ctx, workflow), holder=dispatch.id)
        state = dispatch.begin(cooldown)  # one round trip: this dispatch's state, and the cooldown taken
        if state.answered is not None:  # answered before this step's result could be saved
            answered = state.answered
            outputs = step_outputs(inputs, answered.url, workflow)
            return StepResult(detail=answered.detail, url=answered.url, outputs=outputs)
        retry_note = ""
        if state.unanswered is not None:
            found, retry_note = dispatch.settle(state.unanswered)
            if found is not None:  # it was dispatched: a cooldown it took stays taken
                return StepResult(detail=found.detail, url=found.url, outputs=step_outputs(inputs, found.url, workflow))
        if not cooldown.held:
            return StepResult(detail=cooldown.skip_detail(ctx.model_id), skipped=True)
        try:
            outcome = dispatch.send()
        except TransientError as exc:
            if not answer_lost(exc):  # refused (rate limited): nothing started
                cooldown.give_back()
            raise
        except Exception:
            cooldown.give_back()
            raise
        if outcome.planned:
            cooldown.give_back()  # a dry run must not hold back a real dispatch
        detail = f"{outcome.detail}; {retry_note}" if retry_note else outcome.detail
        outputs = inputs if outcome.planned else step_outputs(inputs, outcome.url, workflow)
        return StepResult(detail=detail, url=outcome.url, planned=outcome.planned, outputs=outputs)

    def _cooldown(self, ctx: StepContext, workflow: str) -> int:
        if self.params.cooldown is not None:
            return self.params.cooldown
        if workflow == ctx.settings.retraining_workflow:
            configured = ctx.playbook.retraining_cooldown
            return configured if configured is not None else ctx.settings.retraining_cooldown_seconds
        return 0

    def _reason(self, ctx: StepContext) -> str:
        """The rendered REASON, checked before anything is dispatched: annotations are anyone's text,
        and a workflow may put its inputs in a shell command, a path or a title."""
        reason = ctx.render(self.params.reason)
        if not IDENTIFIER.fullmatch(reason):
            raise AlertError(f"REASON {reason[:40]!r} is not a valid identifier {IDENTIFIER_RULE}")
        return reason

    def _model_version(self, ctx: StepContext) -> str:
        if self.params.model_version:
            version = ctx.render(self.params.model_version)
        elif ctx.alert.labels.get("model_version"):
            version = ctx.alert.labels["model_version"]
        else:
            try:
                version = ctx.manifest_entry().current_version
            except PermanentError as exc:
                raise PermanentError(f"no model_version label and {exc}", system="github") from None
        if not IDENTIFIER.fullmatch(version):
            raise AlertError(f"model version {version[:40]!r} is not a valid identifier")
        return version
