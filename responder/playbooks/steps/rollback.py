"""Steps of the runbook's rollback: find the previous version, re-tag the serving endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from responder.alerts import IDENTIFIER
from responder.errors import AlertError, PermanentError
from responder.manifest import Manifest
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import Params, StepBase, StepResult

PREVIOUS = "previous"  # the target a dry run plans when it cannot read the manifest's history


class FindPreviousParams(Params):
    to_version: str = Field("{{ labels.to_version | default('') }}", description="Explicit target; empty: search.")
    max_revisions: int = Field(50, gt=0, le=500)


class FindPreviousVersion(StepBase):
    """The version to roll back to: ``to_version`` if given, else the newest earlier revision of the
    manifest whose version of the model differs from the current one. Read-only."""

    kind: Literal["find_previous_version"]
    params: FindPreviousParams = Field(default_factory=FindPreviousParams, alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        entry = ctx.manifest_entry()
        current = entry.current_version
        target = ctx.render(self.params.to_version)
        revision = ""
        if target:
            if not IDENTIFIER.fullmatch(target):
                raise AlertError(f"to_version {target[:40]!r} is not a valid identifier")
            if target == current:
                raise PermanentError(f"{ctx.model_id} is already at {current}", system="github")
        else:
            target, revision = self._previous(ctx, current)
        outputs = {"from_version": current, "to_version": target, "endpoint": entry.servingEndpoint or ""}
        if revision:
            outputs["revision"] = revision
        where = (
            f" (manifest revision {revision[:7]})"
            if revision
            else " (the offline manifest has no history)" if target == PREVIOUS and ctx.dry_run else " (given)"
        )
        return StepResult(detail=f"{ctx.model_id}: {current} -> {target}{where}", outputs=outputs)

    def _previous(self, ctx: StepContext, current: str) -> tuple[str, str]:
        path = ctx.settings.manifest_path
        revisions = ctx.github.file_revisions(path, self.params.max_revisions)
        if not revisions and ctx.dry_run:  # the offline manifest of a dry run has no history
            return PREVIOUS, ""
        for revision in revisions:
            older = Manifest.parse(ctx.github.read_file(path, revision.sha), source=f"{path}@{revision.sha[:7]}")
            entry = older.find(ctx.model_id)
            if entry is not None and entry.current_version != current:
                if not IDENTIFIER.fullmatch(entry.current_version):
                    raise PermanentError(
                        f"{path}@{revision.sha[:7]} has an invalid version for {ctx.model_id}", system="github"
                    )
                return entry.current_version, revision.sha
        raise PermanentError(
            f"no previous version of {ctx.model_id}: none of the last {len(revisions)} revisions of {path} "
            f"has a version other than {current}; pass --label to_version=V",
            system="github",
        )


class RetagParams(Params):
    version: str
    reason: str = "rollback"
    endpoint: str = "{{ (steps['find-previous-version'] | default({})).endpoint | default('') }}"


class RetagEndpoint(StepBase):
    """Point the model's serving endpoint at a version in the feature-toggle service.

    Retry-safe: the call sets a desired state (PUT by default).
    """

    kind: Literal["retag_endpoint"]
    params: RetagParams = Field(alias="with")

    def run(self, ctx: StepContext) -> StepResult:
        version = ctx.render(self.params.version)
        if not IDENTIFIER.fullmatch(version):
            raise AlertError(f"version {version[:40]!r} is not a valid identifier")
        outcome = ctx.toggles().retag(
            model_id=ctx.model_id,
            version=version,
            reason=ctx.render(self.params.reason),
            endpoint=ctx.render(self.params.endpoint) or None,
        )
        return StepResult(detail=outcome.detail, url=outcome.url, planned=outcome.planned, outputs={"version": version})
