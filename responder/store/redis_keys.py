"""Every Redis key responder writes, in one place: its name and what it holds.

All start with ``responder:``; RQ's own keys (``rq:...``) are RQ's. A key holding untrusted
text (a fingerprint) takes a digest of it, never the text.
"""

from __future__ import annotations

import hashlib

TRIAGE_LABEL = "needs-triage"


def storm_models_key(playbook: str, window: int) -> str:
    """List of the model ids whose runs the storm guard suppressed in one window."""
    return f"responder:storm:{playbook}:{window}:models"


def storm_reported_key(playbook: str, window: int) -> str:
    """Set of the suppressed entries the storm ticket of a window already lists."""
    return f"{storm_models_key(playbook, window)}:reported"


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


# --- runs and the decision history
RUNS_INDEX = "responder:runs"  # sorted set: run id -> enqueue time
NOTIFICATIONS_INDEX = "responder:notifications"  # sorted set: notification id -> arrival time
NOTIFICATION_SIZES = "responder:notification-sizes"  # hash: id -> "<bytes of record and body> <runs it queued>"
NOTIFICATION_BYTES = "responder:notification-bytes"  # the sum of those bytes over the history


def run_key(run_id: str) -> str:
    """A run record (``runs.RunRecord``, or the intake's ``QueuedRun`` until its first attempt)."""
    return f"responder:run:{run_id}"


def related_key(group_digest: str) -> str:
    """The related alerts the runs of one group share (stored once for the group)."""
    return f"responder:related:{group_digest}"


def notification_key(notification_id: str) -> str:
    """A decision history record: what the webhook answered per alert."""
    return f"responder:notification:{notification_id}"


# --- deploy freeze and metrics
FREEZE = "responder:freeze"  # hash: who froze or lifted deploys, when and why
METRICS = "responder:metrics"  # prefix of the worker metrics shared across processes


def metrics_key(family: str) -> str:
    """One family of the worker metrics shared across processes (runs, steps, calls, ...)."""
    return f"{METRICS}:{family}"


# --- tickets
def ticket_lock_key(key_text: str) -> str:
    """Serialises find-then-create of one ticket across workers (``alertname:ident`` of its key)."""
    return f"responder:lock:ticket:{key_text}"


def ticket_claim_key(key_text: str) -> str:
    """The run opening a ticket, noted before the create (a lost answer is then found, not re-opened)."""
    return f"responder:ticket-claim:{key_text}"


def ticket_memory_keys(ticket_url: str) -> tuple[str, str]:
    """Sets of the firing instances and checklist items a ticket already shows."""
    return f"responder:ticket:{ticket_url}:instances", f"responder:ticket:{ticket_url}:items"


def jira_ticket_key(project: str, key_text: str) -> str:
    """The Jira issue responder opened (or last found) for a ticket key (``alertname:ident``)."""
    return f"responder:jira:{project}:ticket:{key_text}"


def jira_creating_key(project: str, key_text: str) -> str:
    """Set while a create's outcome is unknown (its answer was lost), until Jira's search catches up."""
    return f"responder:jira:{project}:creating:{key_text}"


def jira_written_key(project: str) -> str:
    """Sorted set of the issue ids responder wrote recently, reconciled in Cloud searches."""
    return f"responder:jira:{project}:written"


# --- workflow dispatches
def claimed_run_key(run_id: int | str) -> str:
    """The dispatch that adopted a workflow run (so no other lost dispatch adopts it too)."""
    return f"responder:dispatch-claimed:{run_id}"


def unattributed_key(workflow: str, model_id: str) -> str:
    """Sorted set of the dispatches of a workflow for a model whose run is not known yet."""
    return f"responder:dispatch-unattributed:{workflow}:{model_id}"


def cooldown_key(workflow: str, model_id: str) -> str:
    """At most one dispatch of ``workflow`` for a model within the cooldown: who holds it, until when."""
    return f"responder:cooldown:{workflow}:{model_id}"


def dispatch_attempt_key(run_id: str, step: str) -> str:
    """A dispatch step's send time, lost answer or answer (a dispatch is settled, never sent twice)."""
    return f"responder:dispatch-attempt:{run_id}:{step}"


# --- following dispatched workflow runs
def follow_state_key(run_id: str, step: str) -> str:
    """What the follow polls of one workflow run remember between polls: the ETag, since when."""
    return f"responder:follow:{run_id}:{step}"


def follow_lock_key(run_id: str, step: str) -> str:
    """Held by the follow poll in flight for (run, step): ``<poll number>:<random token>``."""
    return f"responder:follow-lock:{run_id}:{step}"


def followed_run_key(workflow_run_id: int | str) -> str:
    """Which run and step follow a GitHub workflow run ("<run id>\\n<step>"): a webhook settles it."""
    return f"responder:followed-run:{workflow_run_id}"


def approval_ticket_key(ticket_url: str) -> str:
    """Runs waiting at an approval step that asked on this ticket (a set of run ids): a ``/approve``
    or ``/reject`` comment on the ticket answers them."""
    return f"responder:approval-ticket:{digest(ticket_url)}"


# --- GitHub webhooks
def github_delivery_key(delivery: str) -> str:
    """A GitHub webhook delivery already handled (GitHub re-sends; a repeat is ignored)."""
    return f"responder:github-delivery:{digest(delivery)}"


# --- schedules (responder scheduler)
def schedule_state_key(name: str) -> str:
    """Hash of one schedule: since (first seen), last_fired (slot), fired_at, last_slot (newest slot handled)."""
    return f"responder:schedule:{name}"


def schedule_slot_key(name: str, slot: str) -> str:
    """The claim on one slot of a schedule (SET NX): the firing scheduler's token, then "fired"."""
    return f"responder:schedule:{name}:slot:{slot}"


def schedule_missed_key(name: str) -> str:
    """Sorted set of a schedule's missed slots (older than the catch-up window): slot -> its time."""
    return f"responder:schedule:{name}:missed"


# --- change requests (responder.change_requests)
def change_request_lock_key(run_id: str, step: str) -> str:
    """Held by the job advancing the change request of (run, step): one at a time reads and writes it."""
    return f"responder:change-request-lock:{run_id}:{step}"


def change_request_queued_key(run_id: str, step: str, tag: str) -> str:
    """Set once the change request's job was queued for ``tag`` (a workflow run's end, a delivery): once per tag."""
    return f"responder:change-request-queued:{run_id}:{step}:{digest(tag)}"


def change_request_tries_key(run_id: str, step: str) -> str:
    """How many times the change request's job met a transient failure (it gives up after a few)."""
    return f"responder:change-request-tries:{run_id}:{step}"


def change_request_pull_key(number: int) -> str:
    """Which run and step proposed pull request ``number`` ("<run id>\\n<step>"): a review delivery finds it."""
    return f"responder:change-request-pull:{number}"
