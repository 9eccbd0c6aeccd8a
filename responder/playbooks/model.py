"""A playbook: which alert it handles, the labels it needs, and its steps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from responder.alerts import REQUIRED_LABELS
from responder.playbooks.steps import Step


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    alertname: str | None = Field(None, description="The alert this playbook answers; none: manual only.")
    description: str = ""
    requires_labels: tuple[str, ...] = REQUIRED_LABELS
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_names(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice")
            seen.add(step.name)
        for label in REQUIRED_LABELS:
            if label not in self.requires_labels:
                raise ValueError(f"requires_labels must include {label!r}")
        return self
