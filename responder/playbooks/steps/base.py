"""What every step kind shares: parameters, conditions and results."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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
    """Run the step only if every named label has the given value (or one of the values), and every
    named earlier step recorded the given finding (or one of them): ``{findings: {verify-digest:
    mismatch}}`` runs the step only when the digests differ."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    labels: dict[str, str | list[str]] = Field(default_factory=dict)
    findings: dict[str, str | list[str]] = Field(default_factory=dict)
    failed: list[str] = Field(
        default_factory=list,
        description="Run the step only if one of these earlier steps failed (a ticket only when something "
        "went wrong); while one of them waits for a retry, the step waits with it.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> When:
        if not self.labels and not self.findings and not self.failed:
            raise ValueError("`when` needs labels, findings or failed")
        return self

    def matches(self, alert: Alert, steps: Mapping[str, tuple[str, str | None]] | None = None) -> bool:
        """``steps``: each earlier step's (status, finding), by step name."""
        steps = steps or {}
        findings = {name: finding for name, (_, finding) in steps.items()}
        failed = not self.failed or any(steps.get(name, ("", None))[0] == "failed" for name in self.failed)
        return _all_in(self.labels, alert.labels) and _all_in(self.findings, findings) and failed

    def waits_for(self, steps: Mapping[str, tuple[str, str | None]]) -> str | None:
        """The earlier step (named in ``failed``) still waiting for a retry: this step waits with it."""
        return next((name for name in self.failed if steps.get(name, ("", None))[0] == "retrying"), None)

    def describe(self) -> str:
        return " and ".join(
            [_describe(k, v) for k, v in self.labels.items()]
            + [_describe(f"{k} found", v) for k, v in self.findings.items()]
            + ([f"{' or '.join(self.failed)} failed"] if self.failed else [])
        )


def _all_in(wanted: Mapping[str, str | list[str]], have: Mapping[str, str | None]) -> bool:
    return all(have.get(name) in ([value] if isinstance(value, str) else value) for name, value in wanted.items())


def _describe(name: str, value: str | list[str]) -> str:
    return f"{name} in {value}" if isinstance(value, list) else f"{name}={value}"


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
