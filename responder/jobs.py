"""The RQ job function, and the per-process runtime it uses.

RQ imports jobs by dotted name, so the runtime (clients built once from the settings) is
installed by ``responder worker`` before work starts, or built on first use from the
environment by a plain ``rq worker``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rq import Queue, get_current_job

from responder import change_requests, following, tickets
from responder.document import Document, para
from responder.integrations.base import Ticket, TicketKey, comment_on_open
from responder.log import get_logger
from responder.playbooks.runner import run_playbook
from responder.runs import ENDED
from responder.runtime import Runtime
from responder.settings_loading import load_settings
from responder.store.queueing import enqueue_run

log = get_logger(__name__)
EXPIRY_SUFFIX = "-expiry"  # the job that ends an approval step whose time ran out
_runtime: Runtime | None = None


def install_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.build(load_settings())
    return _runtime


def run_playbook_job(run_id: str) -> str:
    """Run one attempt of a playbook run; returns the run's status.

    Once the run has finished its steps, the workflow runs its dispatch steps started are
    followed by scheduled follow jobs (``follow_workflow_run_job``).

    A step that fails transiently waits alone (see ``run_playbook``): the run's next attempt is
    scheduled for the time its deferred steps asked for (a backoff step of ``job_retry_intervals``
    that honours the server's Retry-After), up to ``len(job_retry_intervals)`` retries; the last
    attempt records such a failure instead. Completed steps are never run again.
    """
    runtime = current_runtime()
    intervals = runtime.settings.job_retry_intervals
    record = runtime.runs.get(run_id)
    if record.status in ENDED:  # e.g. the expiry check of an approval that came in meanwhile
        return record.status
    current = get_current_job()
    if current is not None and current.id.endswith(EXPIRY_SUFFIX) and record.status != "awaiting_approval":
        return record.status  # approved meanwhile: the run goes on (or went on) from its own job
    attempts = record.attempts
    record = run_playbook(runtime, run_id, final_attempt=attempts >= len(intervals), record=record)
    if record.status in ("retrying", "awaiting_approval") and record.retry_at is not None:
        delay = max((record.retry_at - datetime.now(UTC)).total_seconds(), 0.0)
        queue = Queue(runtime.settings.queue, connection=runtime.redis)
        waiting = record.status == "awaiting_approval"
        job_id = f"{run_id}{EXPIRY_SUFFIX}" if waiting else f"{run_id}-retry{attempts + 1}"
        enqueue_run(queue, runtime.settings, run_id, job_id=job_id, delay=delay)
        log.info("run.next_look_scheduled", job_id=run_id, status=record.status, delay_seconds=round(delay, 1))
        return record.status
    following.start(runtime, record)
    return record.status


def follow_workflow_run_job(run_id: str, step: str, poll: int = 1, chain: bool = True) -> str:
    """Poll number ``poll`` of the workflow run that step ``step`` of run ``run_id`` dispatched
    (see ``responder.following``); schedules the next poll until the workflow run completes, unless
    ``chain`` is false (a poll GitHub's webhook asked for, outside the scheduled ones)."""
    return following.poll(current_runtime(), run_id, step, poll, chain=chain)


def ticket_reply_job(ref: str, url: str, text: str) -> str:
    """Comment ``text`` on the ticket ``ref`` (at ``url``): the reply to an approval answered there
    (``/approve``, ``/reject``), saying how it counted or why it did not."""
    tracker = current_runtime().integrations(dry_run=False).tracker
    return tracker.comment(Ticket(ref=ref, url=url, title=""), Document.of(para(text))).detail


def ticket_note_job(run_id: str, text: str) -> str:
    """Say ``text`` about run ``run_id`` on its model's open incident ticket (an approval answered on
    the runs page); nothing when none is open."""
    runtime = current_runtime()
    record = runtime.runs.get(run_id)
    if record.model_id is None:
        return "no model"
    tracker = runtime.integrations(dry_run=record.dry_run).tracker
    key = TicketKey(alertname=record.alertname, model_id=record.model_id)
    return "noted" if comment_on_open(tracker, key, tickets.note(record, f"Run {record.id}: {text}")) else "no ticket"


def change_request_job(run_id: str, step: str, poll: int = 0) -> str:
    """One look at the change request that the retraining run of step ``step`` of run ``run_id``
    proposes (see ``responder.change_requests``): read the training summary, dispatch and wait for
    governance, open the pull request, or read its reviews. ``poll`` > 0: a scheduled review poll,
    which schedules the next one while the pull request is open."""
    return change_requests.advance(current_runtime(), run_id, step, poll)
