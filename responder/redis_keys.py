"""Redis key names that the intake writes and playbook steps read."""

from __future__ import annotations

import hashlib

TRIAGE_LABEL = "needs-triage"


def storm_models_key(playbook: str, window: int) -> str:
    """List of the model ids whose runs the storm guard suppressed in one window."""
    return f"responder:storm:{playbook}:{window}:models"


def payload_key(notification_id: str) -> str:
    """A notification's body as received; its decision history record and its runs read their
    alerts from it (see ``history`` and ``runs``)."""
    return f"responder:payload:{notification_id}"


def digest(text: str) -> str:
    """A short hash of untrusted text (a fingerprint) fit for ids and keys."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seen_key(run_id: str) -> str:
    """Dedup marker: the firing (or resolved) instance whose run is ``run_id`` was queued."""
    return f"responder:seen:{run_id}"


def triage_key(fingerprint: str) -> str:
    """One needs-triage ticket per fingerprint (hashed: the fingerprint is untrusted text)."""
    return f"responder:seen:triage:{digest(fingerprint)}"


def storm_counter_key(playbook: str, window: int) -> str:
    """Storm-guard slots a playbook took in one window."""
    return f"responder:storm:{playbook}:{window}:started"
