"""One error tree for responder, with the retry decision and the CLI exit code in it.

ResponderError
├── ConfigError            settings or config file unusable (exit 2 at start-up)
├── PlaybookError          a playbook file does not parse or validate
├── AlertError             an alert cannot be acted on (bad or missing labels)
├── RunNotFound            a job id that has no run record
├── NotificationNotFound   a decision history id that has no record (trimmed or expired)
├── CommandFailed          a CLI command cannot do what it was asked (the message says why)
├── WaitTimedOut           a `--wait` ran out of time before its run ended (the run goes on)
├── DemoFailed             something `responder demo` started did not come up or went away
├── AwaitingApproval       an approval step waits for people (the run pauses, holding no worker)
└── IntegrationError       an external system (GitHub, Jira, toggles) said no
    ├── TransientError     worth retrying with backoff: 5xx, 429, timeouts, lost connections
    │   └── WaitingForStep a step needs the result of an earlier step that waits for a retry
    └── PermanentError     retrying will not help: any other 4xx; the message says what to fix
        └── ApprovalEnded  an approval step was rejected, or its time ran out (the run ends as expired)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Literal


class ResponderError(Exception):
    """Base of every error responder raises on purpose. ``outputs``: what a step that fails with it
    records beside the error (read by later steps and the run's outcome)."""

    exit_code = 1
    outputs: Mapping[str, str] = MappingProxyType({})


class ConfigError(ResponderError):
    """A setting is missing or invalid; the message names it and says what to do."""

    exit_code = 2


class PlaybookError(ResponderError):
    """A playbook file is invalid; the message names the file and the step."""


class AlertError(ResponderError):
    """An alert cannot be acted on: the message is the reason recorded with the decision."""


class RunNotFound(ResponderError):
    """No run record exists for the given job id."""


class NotificationNotFound(ResponderError):
    """No decision record with that id (it may have been trimmed or expired)."""


class CommandFailed(ResponderError):
    """A CLI command cannot do what was asked (a run that cannot be retried, an unreadable file)."""


class ApprovalRefused(ResponderError):
    """An answer to an approval step that does not count; the message says why in one line (the
    requester, not an approver, already answered, the run is not waiting)."""


class WaitTimedOut(ResponderError):
    """The run did not end within the wait's timeout; the message says where it is and why."""


class DemoFailed(ResponderError):
    """Something the demo started did not come up or went away."""


class AwaitingApproval(ResponderError):
    """An approval step has not got its approvals yet: the run waits until ``deadline``."""

    def __init__(self, groups: list[str], missing: list[str], deadline: datetime) -> None:
        super().__init__(f"waits for approval from {' and '.join(missing)}")
        self.groups = groups
        self.missing = missing
        self.deadline = deadline


class IntegrationError(ResponderError):
    """An external system refused or failed a call."""

    def __init__(self, message: str, *, system: str, status: int | None = None) -> None:
        super().__init__(message)
        self.system = system
        self.status = status


class TransientError(IntegrationError):
    """Retrying later may succeed (5xx, 429, secondary rate limit, connection error, timeout)."""

    def __init__(
        self, message: str, *, system: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after


class PermanentError(IntegrationError):
    """Retrying will not help; a person has to act on the message."""


class WaitingForStep(TransientError):
    """A step needs the result of an earlier step that is waiting for a retry: it waits for that retry too."""

    def __init__(self, step: str) -> None:
        super().__init__(f"needs the result of {step}, which is waiting for a retry", system="responder")
        self.step = step


class ApprovalEnded(PermanentError):
    """An approval step ended without its approvals: ``outcome`` rejected (an approver said no; the run
    fails) or expired (nobody approved in time; the run ends as expired)."""

    def __init__(self, message: str, *, outcome: Literal["rejected", "expired"]) -> None:
        super().__init__(message, system="responder")
        self.outputs = {"approval": outcome}
