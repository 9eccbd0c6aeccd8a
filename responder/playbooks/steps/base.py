"""What every step kind shares: parameters, conditions and results."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from responder.alerts import Alert
from responder.errors import PlaybookError
from responder.playbooks import templating


class StepResult(BaseModel):
    """What a step did. ``finding`` is set by a check that found a problem (e.g. "mismatch"):
    the step itself succeeded, so its status stays ok, but every view shows the finding."""

    detail: str
    url: str | None = None
    planned: bool = False
    skipped: bool = False
    outputs: dict[str, str] = Field(default_factory=dict)
    finding: str | None = None


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    """'90s', '30m', '6h', '1d' or a number of seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError("must be a duration like 90s, 30m, 6h or 1d")
        return int(match.group(1)) * _UNITS[match.group(2)]
    return value


Duration = Annotated[int, BeforeValidator(_seconds), Field(ge=0)]


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
    """Step parameters: unknown keys are errors, and every template must parse at load time."""

    # validate_default: a default is a template too (FreezeParams.reason), checked like a given one.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @field_validator("*")
    @classmethod
    def _templates_parse(cls, value: Any) -> Any:
        """Per field and as a ValueError, so that the playbook's error names the file, step and parameter."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    templating.check(text)
                except PlaybookError as exc:
                    raise ValueError(str(exc)) from None
        return value


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,95}$")
    when: When | None = None
    stop_on_failure: bool = Field(False, description="A failure of this step skips the steps after it.")
