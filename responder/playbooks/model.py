"""A playbook: which alert it handles, the labels it needs, and its steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from responder.alerts import Alert
from responder.playbooks.steps import Include, RunnableStep, Step
from responder.playbooks.steps.base import Duration


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    alertname: str | None = Field(None, description="The alert this playbook answers; none: manual only.")
    description: str = ""
    requires_labels: tuple[str, ...] = ("alertname", "model_id")
    retraining_cooldown: Duration | None = Field(
        None, description="Cooldown of retraining dispatches per model (default RESPONDER_RETRAINING_COOLDOWN_SECONDS)."
    )
    close_on_resolve: bool = Field(False, description="The default on_resolved also closes the ticket.")
    steps: list[Step] = Field(min_length=1)
    on_resolved: list[Step] | None = Field(
        None, description="Steps for a resolved alert; default: comment on the open ticket (and close it)."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_on_resolved(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("on_resolved") is None:
            steps: list[dict[str, Any]] = [{"name": "comment-resolved", "kind": "comment_incident"}]
            if data.get("close_on_resolve"):
                steps.append({"name": "close-incident", "kind": "close_incident"})
            data = {**data, "on_resolved": steps}
        return data

    @model_validator(mode="after")
    def _check(self) -> Playbook:
        for group in (self.steps, self.on_resolved or []):
            seen: set[str] = set()
            for step in group:
                if step.name in seen:
                    raise ValueError(f"step name {step.name!r} is used twice")
                for named in [*step.when.findings, *step.when.failed] if step.when is not None else ():
                    if named.partition(".")[0] not in seen:  # "<include>.<step>" names an included step
                        raise ValueError(f"step {step.name!r}: `when` names {named!r}, which is no earlier step")
                seen.add(step.name)
        if "alertname" not in self.requires_labels:
            raise ValueError("requires_labels must include 'alertname'")
        return self

    def steps_for(self, alert: Alert) -> list[RunnableStep]:
        """The steps a run of ``alert`` executes: ``steps`` when firing, ``on_resolved`` when resolved."""
        chosen = self.steps if alert.is_firing else (self.on_resolved or [])
        return [step for step in chosen if not isinstance(step, Include)]

    def includes(self) -> list[Include]:
        return [s for s in [*self.steps, *(self.on_resolved or [])] if isinstance(s, Include)]
