"""Run a playbook for one run record, step by step, checkpointing each step in Redis."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import structlog
from rq.timeouts import JobTimeoutException

from responder import metrics, tickets, timefmt
from responder.errors import AwaitingApproval, ResponderError, TransientError, WaitingForStep
from responder.integrations.base import TicketKey, comment_on_open
from responder.log import Redactor, get_logger
from responder.playbooks.context import StepContext
from responder.playbooks.steps import StepResult
from responder.runs import RunRecord, StepRecord, time_to_resolve, utcnow
from responder.runtime import Runtime
from responder.store.queueing import not_before, retry_delay
from responder.store.redisconn import REDIS_DOWN

log = get_logger(__name__)


def run_playbook(runtime: Runtime, run_id: str, *, final_attempt: bool, record: RunRecord | None = None) -> RunRecord:
    """Run the steps of ``run_id`` that are not done yet; return the updated record.

    ``record`` is the run's record when the caller has just read it (saves reading it again).

    A transient failure raises TransientError (after recording it) so the job is retried,
    unless this is the final attempt. Any other failure is recorded on its step and the
    remaining steps still run (on-call wants the ticket even when a dispatch failed), unless
    the failed step has ``stop_on_failure``: then the rest is recorded as skipped.

    Each step's result is saved (a checkpoint) before the next step starts; the last step's
    is saved together with the run's outcome. Worker metrics observed meanwhile ride along in
    the same round trip as the checkpoint.
    """
    recorder = metrics.recorder()
    with recorder.batching() if recorder is not None else contextlib.nullcontext():
        return _run(runtime, record or runtime.runs.get(run_id), final_attempt=final_attempt)


def _run(runtime: Runtime, record: RunRecord, *, final_attempt: bool) -> RunRecord:
    playbook = runtime.catalog.get(record.playbook)
    resumed = record.awaiting_until is not None  # an approval came in: not another attempt
    record.status, record.error, record.retry_at = "running", None, None
    record.attempts += 0 if resumed else 1
    record.started_at = record.started_at or utcnow()
    _save(runtime, record)
    integrations = runtime.integrations(dry_run=record.dry_run)
    redactor = Redactor(runtime.settings.secret_values())
    ctx = StepContext(
        run=record,
        settings=runtime.settings,
        playbook=playbook,
        github=integrations.github,
        tracker=integrations.tracker,
        redis=runtime.redis,
        toggle_client=integrations.toggles,
        runs=runtime.runs,
        dry_run=integrations is runtime.dry,
    )
    backoff = Backoff(runtime.settings.job_retry_intervals, record.attempts)
    retried = {s.name for s in record.steps if s.status == "retrying"}
    ticket_was_open = _ticket_open(record)
    with structlog.contextvars.bound_contextvars(
        job_id=record.id, alertname=record.alertname, fingerprint=record.alert.fingerprint, playbook=playbook.name
    ):
        log.info("run.started", attempt=record.attempts, dry_run=record.dry_run, alert_status=record.alert.status)
        stopped_by: str | None = None
        waits_for: StepRecord | None = None  # a deferred step with stop_on_failure: the steps after it wait
        steps = playbook.steps_for(record.alert)
        for index, step in enumerate(steps):
            done = record.step(step.name)
            if done is not None and done.done:
                continue
            ctx.current_step = step.name
            with structlog.contextvars.bound_contextvars(step=step.name):
                entry = StepRecord(name=step.name, kind=step.kind, status="ok", started_at=utcnow())
                if stopped_by is not None:
                    entry.status, entry.blocked, entry.detail = "skipped", True, f"not run: {stopped_by} failed"
                elif waits_for is not None:
                    entry.status, entry.blocked = "skipped", True
                    when = (
                        "approval"
                        if waits_for.status == "waiting"
                        else f"retrying at {timefmt.clock(waits_for.retry_at)}"
                    )
                    entry.detail = f"waits for {waits_for.name} ({when})"
                elif step.when is not None and (earlier := step.when.waits_for(_outcomes(record))) is not None:
                    entry.status, entry.blocked = "skipped", True  # not done: the next attempt looks again
                    entry.detail = f"waits for {earlier} (retrying)"
                elif step.when is not None and not step.when.matches(record.alert, _outcomes(record)):
                    entry.status, entry.detail = "skipped", f"condition not met: {step.when.describe()}"
                else:
                    try:
                        _apply(entry, step.run(ctx))
                    except AwaitingApproval as exc:
                        entry.status, entry.retry_at, record.awaiting_until = "waiting", exc.deadline, exc.deadline
                        entry.detail = f"{exc} (until {timefmt.utc_text(exc.deadline)})"
                        entry.outputs = {"groups": ",".join(exc.groups), "missing": ",".join(exc.missing)}
                        waits_for = entry
                        log.info("step.awaiting_approval", missing=exc.missing, until=exc.deadline)
                    except TransientError as exc:
                        _fail(entry, exc, redactor)
                        if not final_attempt:  # only this step waits for the retry; the next ones run now
                            _defer(entry, backoff.at(exc.retry_after), waiting=isinstance(exc, WaitingForStep))
                            waits_for = entry if step.stop_on_failure else waits_for
                            log.warning("step.deferred", error=str(exc), retry_at=entry.retry_at)
                    except ResponderError as exc:
                        _fail(entry, exc, redactor)
                    except JobTimeoutException as exc:
                        entry.status, entry.error = "failed", "run timed out"
                        if final_attempt:  # nothing will run it again: report it
                            record.status, record.ended_at = "failed", utcnow()
                            record.error = f"timed out in {step.name} ({exc})"
                        else:  # RQ queues the job again (its retry); the step is not done
                            record.status = "retrying"
                        _finish_step(runtime, record, playbook.name, entry)
                        log.error("run.timed_out", final=final_attempt)
                        raise
                    except REDIS_DOWN:  # not the step's failure: the run is taken up again once Redis is back
                        raise
                    except Exception as exc:  # a bug: keep the run going, record and log it
                        log.exception("step.crashed")
                        _fail(entry, exc, redactor, prefix="internal error: ")
                    if entry.status == "failed" and step.stop_on_failure:
                        stopped_by = step.name
                # The last step's checkpoint is the outcome's save below.
                _finish_step(runtime, record, playbook.name, entry, save=index < len(steps) - 1)
                log.info(
                    "step.finished", status=entry.status, finding=entry.finding, detail=entry.detail, error=entry.error
                )
        if ticket_was_open:  # steps retried since the ticket opened: it is told how they ended
            record.untold += [s.name for s in record.steps if s.name in retried and s.status != "retrying"]
        _tell_ticket(ctx, record, backoff, final_attempt=final_attempt)
        _conclude(runtime, ctx, record)
    return record


def _conclude(runtime: Runtime, ctx: StepContext, record: RunRecord) -> None:
    """Save the run's outcome: retrying (at the latest time a deferred step asked for), failed or succeeded."""
    if any(s.status == "waiting" for s in record.steps):  # an approval step: its deadline is the next look
        record.status, record.retry_at = "awaiting_approval", record.awaiting_until
        record.error = None
        _save(runtime, record)
        log.info("run.awaiting_approval", until=record.awaiting_until)
        return
    record.awaiting_until = None
    pending = [s for s in record.steps if s.status == "retrying"]
    if pending or record.retry_at is not None:
        record.retry_at = max([s.retry_at for s in pending if s.retry_at] + [record.retry_at or utcnow()])
        for step in pending:  # one next attempt for all of them: each says when it is
            _defer(step, record.retry_at, waiting=False)
        record.status = "retrying"
        waiting = ", ".join(s.name for s in pending) or "telling the incident ticket"
        record.error = f"retrying at {timefmt.clock(record.retry_at)}: {waiting}"
        _save(runtime, record)
        log.info("run.deferred", retry_at=record.retry_at, steps=[s.name for s in pending])
        return
    failed = [s.name for s in record.steps if s.status == "failed"]
    expired = any(s.outputs.get("approval") == "expired" for s in record.steps)
    record.status = "expired" if expired else "failed" if failed else "succeeded"
    record.error = f"failed steps: {', '.join(failed)}" if failed else None
    record.ended_at = utcnow()
    if (recorder := metrics.recorder()) is not None:
        recorder.run_finished(record.playbook, record.status)
        _observe_resolve(recorder, ctx, record)
    _save(runtime, record)
    log.info("run.finished", status=record.status)


class Backoff:
    """When the steps deferred in one attempt are tried again: the attempt's backoff step, jittered
    once (``queueing.retry_delay``), or later where a server asked for it (Retry-After)."""

    def __init__(self, intervals: list[float], attempt: int) -> None:
        self._seconds = retry_delay(intervals, attempt, None)

    def at(self, retry_after: float | None) -> datetime:
        return utcnow() + timedelta(seconds=not_before(self._seconds, retry_after))


def _defer(entry: StepRecord, retry_at: datetime, *, waiting: bool) -> None:
    """Mark a step to be run again by the run's next attempt, at ``retry_at``."""
    reason = (entry.error or "").partition(" (retrying at ")[0]
    entry.status, entry.retry_at = "retrying", retry_at
    entry.error = f"{reason} (retrying at {timefmt.clock(retry_at)})"
    if waiting:
        entry.detail = "waits for an earlier step's result"


def _ticket_open(record: RunRecord) -> bool:
    """This run opened (or found) its incident ticket."""
    return any(s.kind == "open_incident" and s.status == "ok" and "ticket" in s.outputs for s in record.steps)


def _tell_ticket(ctx: StepContext, record: RunRecord, backoff: Backoff, *, final_attempt: bool) -> None:
    """Comment the results of steps that finished on a retry on the incident ticket, once. A tracker
    that fails transiently is tried again by the next attempt (which runs no step again)."""
    if not record.untold or record.model_id is None:
        record.untold = []
        return
    told = [s for s in record.steps if s.name in record.untold]
    try:
        key = TicketKey(alertname=record.alertname, model_id=record.model_id)
        comment_on_open(ctx.tracker, key, tickets.retried(record, told))
    except TransientError as exc:
        log.warning("ticket.retried_steps_not_told", error=str(exc), steps=record.untold)
        if not final_attempt:
            record.retry_at = backoff.at(exc.retry_after)
            return
    except ResponderError as exc:
        log.warning("ticket.retried_steps_not_told", error=str(exc), steps=record.untold)
    record.untold = []


def _observe_resolve(recorder: metrics.WorkerMetrics, ctx: StepContext, record: RunRecord) -> None:
    """A resolve run (of an alert, not a replay or dry run) observes how long after its firing run's
    start the incident resolved, when that run is still stored."""
    if record.alert.is_firing or record.source != "webhook" or record.dry_run:
        return
    firing = ctx.firing_run()
    took = time_to_resolve(firing, record) if firing is not None else None
    if took is not None:
        recorder.resolved(record.alertname, took.total_seconds())


def _save(runtime: Runtime, record: RunRecord) -> None:
    """Save the run record (a checkpoint) and, in the same round trip, the metrics observed so far."""
    recorder = metrics.recorder()
    if recorder is None:
        runtime.runs.save(record)
        return
    with runtime.redis.pipeline(transaction=False) as pipe:
        runtime.runs.save(record, pipe)
        with recorder.write_into(pipe):
            pipe.execute()


def _outcomes(record: RunRecord) -> dict[str, tuple[str, str | None]]:
    """Each step run so far: its status and what it found (None: nothing), for ``when``. A dispatch
    step whose workflow run did not succeed counts as failed."""
    failed_runs = {w.step for w in record.workflow_runs if w.unsuccessful}
    return {s.name: ("failed" if s.name in failed_runs else s.status, s.finding) for s in record.steps}


def _apply(entry: StepRecord, result: StepResult) -> None:
    entry.status = "skipped" if result.skipped else "planned" if result.planned else "ok"
    entry.detail, entry.url, entry.outputs = result.detail, result.url, result.outputs
    entry.finding = result.finding  # beside the status: a check that found a problem still ran fine


def _fail(entry: StepRecord, exc: Exception, redactor: Redactor, *, prefix: str = "") -> None:
    """Record the failure; an API may echo a credential in its message, so it is scrubbed first."""
    entry.status = "failed"
    entry.error = redactor.scrub_text(prefix + (str(exc) or type(exc).__name__))
    if isinstance(exc, ResponderError):
        entry.outputs = dict(exc.outputs)


def _finish_step(runtime: Runtime, record: RunRecord, playbook: str, entry: StepRecord, *, save: bool = True) -> None:
    entry.ended_at = utcnow()
    record.put_step(entry)
    recorder = metrics.recorder()
    if recorder is not None and entry.started_at:
        recorder.step_finished(playbook, entry.name, entry.kind, (entry.ended_at - entry.started_at).total_seconds())
    if recorder is not None and entry.finding:
        recorder.step_found(playbook, entry.name, entry.finding)
    if recorder is not None and (outcome := entry.outputs.get("approval")):
        recorder.approval_ended(playbook, outcome)
    if save:
        _save(runtime, record)
