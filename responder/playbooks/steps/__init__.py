"""The step registry: one typed model per step kind, each with the code that runs it.

A playbook's steps parse into the ``Step`` discriminated union at load time, so an unknown
kind or parameter fails validation instead of a run. Each ``run`` says whether it is safe
to retry and why; a run's completed steps are never run again by a retry of that run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from responder.playbooks.steps.approval import Approval
from responder.playbooks.steps.base import StepBase, StepResult, When
from responder.playbooks.steps.github import DispatchWorkflow, FreezeDeploys, VerifyManifestDigest
from responder.playbooks.steps.incidents import (
    CloseIncident,
    CommentIncident,
    CommentIncidents,
    NoteRollback,
    OpenIncident,
    OpenTriageTicket,
    ReportStorm,
)
from responder.playbooks.steps.rollback import FindPreviousVersion, RetagEndpoint


class IncludeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    playbook: str


class Include(StepBase):
    """Run another playbook's steps here (e.g. `rollback` from an alert playbook).

    Expanded when the playbooks are loaded: the included steps are named `<this name>.<their name>`
    and inherit this step's `when`.
    """

    kind: Literal["include"]
    params: IncludeParams = Field(alias="with")


RunnableStep = (
    FreezeDeploys
    | VerifyManifestDigest
    | DispatchWorkflow
    | OpenIncident
    | CommentIncident
    | CloseIncident
    | CommentIncidents
    | NoteRollback
    | FindPreviousVersion
    | RetagEndpoint
    | OpenTriageTicket
    | ReportStorm
    | Approval
)
Step = Annotated[RunnableStep | Include, Field(discriminator="kind")]
STEP_KINDS: tuple[str, ...] = (
    "freeze_deploys",
    "verify_manifest_digest",
    "dispatch_workflow",
    "open_incident",
    "comment_incident",
    "close_incident",
    "comment_incidents",
    "note_rollback",
    "find_previous_version",
    "retag_endpoint",
    "open_triage_ticket",
    "report_storm",
    "approval",
    "include",
)

__all__ = ["STEP_KINDS", "Approval", "Include", "RunnableStep", "Step", "StepBase", "StepResult", "When"]
