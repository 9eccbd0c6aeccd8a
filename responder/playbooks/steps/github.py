"""Steps that act on the ML platform repository: deploy freeze, digest check, workflow dispatch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

from pydantic import Field
from redis.client import Pipeline

from responder.alerts import IDENTIFIER
from responder.errors import AlertError, PermanentError, TransientError
from responder.freeze import FreezeLedger
from responder.integrations.base import WorkflowRunRef
from responder.manifest import is_sha256, normalise_digest
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Duration, Params, StepBase, StepResult


class FreezeParams(Params):
    variable: str = "{{ settings.freeze_variable }}"
    value: str = "true"
    reason: str = "{{ alertname }} on {{ model_id }}"


class FreezeDeploys(StepBase):
    """Set the repository Actions variable that CI reads to block (or, with "false", allow) deploys.

    Retry-safe: the variable is read first; already at the value is success. Who set it,
    when and why are kept in Redis for `responder freeze status`.
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
    reason: str
    model_version: str | None = None
    cooldown: Duration | None = Field(
        None,
        description="At most one dispatch of this workflow per model in this window (default: the "
        "playbook's retraining_cooldown for the retraining workflow, none otherwise).",
    )


class DispatchWorkflow(StepBase):
    """workflow_dispatch with exactly MODEL_ID, MODEL_VERSION and REASON.

    Not idempotent on GitHub's side: it is sent once per attempt of this step, and a run
    retried after this step completed does not send it again. A cooldown (Redis key per
    workflow and model, taken before the dispatch and given back if it fails) keeps
    re-fires from dispatching again within the window.
    """

    kind: Literal["dispatch_workflow"]
    params: DispatchParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        workflow = ctx.render(self.params.workflow)
        version = self._model_version(ctx)
        inputs = {"MODEL_ID": ctx.model_id, "MODEL_VERSION": version, "REASON": ctx.render(self.params.reason)}
        attempt = DispatchAttempt(ctx, self.name)
        cooldown = self._cooldown(ctx, workflow)
        key = f"responder:cooldown:{workflow}:{ctx.model_id}"
        # One round trip: is an earlier attempt's answer lost, and take the cooldown.
        with ctx.redis.pipeline(transaction=False) as pipe:
            attempt.read(pipe)
            if cooldown:
                until = datetime.now(UTC) + timedelta(seconds=cooldown)
                pipe.set(key, until.isoformat(), nx=True, ex=cooldown)
            noted, *took = pipe.execute()
        taken = bool(took[0]) if cooldown else False
        try:
            lost = attempt.find_lost(workflow, cast(bytes | None, noted))
        except Exception:
            if taken:
                ctx.redis.delete(key)
            raise
        if lost is not None:  # it was dispatched (a cooldown just taken stays: it was)
            return StepResult(
                detail=f"dispatched {workflow} (found run {lost.id} after a lost answer)",
                url=lost.html_url,
                outputs=inputs,
            )
        if cooldown and not taken:
            held = cast(bytes | None, ctx.redis.get(key))
            when = held.decode() if held else "shortly"
            return StepResult(
                detail=f"cooldown until {when}: {workflow} already dispatched for {ctx.model_id}", skipped=True
            )
        try:
            attempt.start()
        except Exception:
            if taken:
                ctx.redis.delete(key)
            raise
        try:
            outcome = ctx.github.dispatch_workflow(workflow, inputs)
        except TransientError:
            if cooldown:
                ctx.redis.delete(key)
            raise  # the attempt stays noted: the next try first looks for the run it may have started
        except Exception:
            attempt.clear()
            if cooldown:
                ctx.redis.delete(key)
            raise
        attempt.done(outcome.url)
        if cooldown and outcome.planned:
            ctx.redis.delete(key)  # a dry run must not hold back a real dispatch
        return StepResult(detail=outcome.detail, url=outcome.url, planned=outcome.planned, outputs=inputs)

    def _cooldown(self, ctx: StepContext, workflow: str) -> int:
        if self.params.cooldown is not None:
            return self.params.cooldown
        if workflow == ctx.settings.retraining_workflow:
            configured = ctx.playbook.retraining_cooldown
            return configured if configured is not None else ctx.settings.retraining_cooldown_seconds
        return 0

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


CLAIMED_RUNS = "responder:dispatch-claimed"  # :<workflow run id>, one key per claim, each expiring on its own


class DispatchAttempt:
    """Makes a workflow dispatch happen once although its answer can be lost.

    GitHub cannot de-duplicate dispatches. Before sending one, the time is noted in Redis;
    when the answer is a 5xx or a timeout, the dispatch may still have happened, so the next
    attempt first lists the workflow's workflow_dispatch runs created since then and takes
    the newest one no other attempt has claimed. (GitHub creates the run within seconds; the
    retry backoff leaves it that time.)
    """

    SLACK = timedelta(seconds=5)  # clock difference between this host and GitHub

    def __init__(self, ctx: StepContext, step: str) -> None:
        self._ctx = ctx
        self._key = f"responder:dispatch-attempt:{ctx.run.id}:{step}"

    def read(self, pipe: Pipeline) -> None:
        """Queue the read of the noted attempt on ``pipe``; its result goes to ``find_lost``."""
        pipe.get(self._key)

    def start(self) -> None:
        now = datetime.now(UTC).isoformat()
        self._ctx.redis.set(self._key, now, ex=self._ctx.settings.dedup_retention_seconds)

    def clear(self, pipe: Pipeline | None = None) -> None:
        (pipe if pipe is not None else self._ctx.redis).delete(self._key)

    def done(self, run_url: str | None) -> None:
        """The dispatch was answered: its run (when GitHub named it) is not free for a lost attempt to claim."""
        match = re.search(r"/runs/(\d+)", run_url or "")
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            self.clear(pipe)
            if match:
                self._claim(match.group(1), pipe)
            pipe.execute()

    def _claim(self, run_id: str, pipe: Pipeline | None = None) -> bool:
        """Claim ``run_id`` (True if no attempt had); on ``pipe``, the claim is queued and True returned."""
        key, retention = f"{CLAIMED_RUNS}:{run_id}", self._ctx.settings.dedup_retention_seconds
        if pipe is not None:
            pipe.set(key, "1", nx=True, ex=retention)
            return True
        return bool(self._ctx.redis.set(key, "1", nx=True, ex=retention))

    def find_lost(self, workflow: str, noted: bytes | None) -> WorkflowRunRef | None:
        """``noted``: the attempt noted before (``read``), None when none was."""
        if noted is None:
            return None
        since = datetime.fromisoformat(noted.decode()) - self.SLACK
        for run in self._ctx.github.recent_dispatch_runs(workflow, since):
            if self._claim(str(run.id)):
                self.clear()
                return run
        return None
