"""Redis key names that the intake writes and playbook steps read."""

from __future__ import annotations

TRIAGE_LABEL = "needs-triage"


def storm_models_key(playbook: str, window: int) -> str:
    """List of the model ids whose runs the storm guard suppressed in one window."""
    return f"responder:storm:{playbook}:{window}:models"


def payload_key(notification_id: str) -> str:
    """A notification's body as received; its decision history record and its runs read their
    alerts from it (see ``history`` and ``runs``)."""
    return f"responder:payload:{notification_id}"
