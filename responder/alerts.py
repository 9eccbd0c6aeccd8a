"""The Alertmanager webhook payload (version 4), strictly typed, with the behaviour we need.

Alertmanager sends one notification per alert group; each alert in it carries its own
status, and that status (not the group's summary) decides what responder does.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from responder.errors import AlertError

# Alertmanager encodes "not resolved yet" as Go's zero time.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# model_id and model_version end up in workflow inputs, variable values, queries and paths.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # use with fullmatch: "$" would admit "x\n"
REQUIRED_LABELS = ("alertname", "model_id")
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _storable(text: str) -> str:
    """Refuse text with no UTF-8 form (a JSON escape of a lone surrogate, "\\ud800"): it could not be stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text") from None
    return text


class _StorableText:
    """A str that has a UTF-8 form. pydantic's JSON parser already refuses a lone surrogate
    escape, so only Python input (``json.loads`` admits them) is checked here, string by string:
    a webhook body's dozens of strings are not each handed to a Python function."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.json_or_python_schema(
            json_schema=core_schema.str_schema(),
            python_schema=core_schema.no_info_after_validator_function(_storable, core_schema.str_schema()),
        )


Text = Annotated[str, _StorableText]


@lru_cache(maxsize=256)
def _job_id_prefix(alertname: str) -> str:
    """The alertname with what RQ refuses in a job id replaced (a handful of alertnames recur)."""
    return _JOB_ID_UNSAFE.sub("_", alertname)[:64] or "alert"


class Alert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[Text, Text]
    annotations: dict[Text, Text] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime = ZERO_TIME
    generatorURL: Text = ""
    fingerprint: Text

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def model_id(self) -> str | None:
        return self.labels.get("model_id")

    @property
    def is_firing(self) -> bool:
        return self.status == "firing"

    @property
    def still_open(self) -> bool:
        """True while Alertmanager has not set an end time (endsAt is the zero time)."""
        return self.endsAt <= ZERO_TIME

    def instance_key(self) -> str:
        """Identity of one firing instance: (alertname, fingerprint, startsAt)."""
        return f"{self.alertname}|{self.fingerprint}|{self.startsAt.isoformat()}"

    def job_id(self) -> str:
        """RQ job id derived from the instance (RQ allows [A-Za-z0-9_-] only); a resolve has its own."""
        return self._job_id(resolved=not self.is_firing)

    def firing_job_id(self) -> str:
        """The job id of this instance's firing run (the run a resolve of it follows)."""
        return self._job_id(resolved=False)

    def _job_id(self, *, resolved: bool) -> str:
        digest = hashlib.sha256(self.instance_key().encode()).hexdigest()[:20]
        prefix = _job_id_prefix(self.alertname)
        return f"{prefix}-resolved-{digest}" if resolved else f"{prefix}-{digest}"

    def check_actionable(self, required: tuple[str, ...] = REQUIRED_LABELS) -> None:
        """Raise AlertError with the reason when labels are missing or unsafe to act on."""
        missing = [name for name in required if not self.labels.get(name)]
        if missing:
            raise AlertError(f"missing required label(s): {', '.join(missing)}")
        for name in ("model_id", "model_version"):
            value = self.labels.get(name)
            if value is not None and not IDENTIFIER.fullmatch(value):
                raise AlertError(f"label {name} is not a valid identifier (letters, digits, '.', '_', '-')")


class Notification(BaseModel):
    """The webhook body Alertmanager posts to a receiver (payload version 4)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Text
    groupKey: Text
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: Text
    groupLabels: dict[Text, Text] = Field(default_factory=dict)
    commonLabels: dict[Text, Text] = Field(default_factory=dict)
    commonAnnotations: dict[Text, Text] = Field(default_factory=dict)
    externalURL: Text = ""
    alerts: list[Alert]

    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.is_firing]

    def resolved(self) -> list[Alert]:
        return [alert for alert in self.alerts if not alert.is_firing]
