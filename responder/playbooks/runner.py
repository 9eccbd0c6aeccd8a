"""Run a playbook for one run record, step by step, checkpointing each step in Redis."""

from __future__ import annotations

import structlog
from rq.timeouts import JobTimeoutException

from responder import metrics
from responder.errors import ResponderError, TransientError
from responder.log import Redactor, get_logger
from responder.playbooks.context import StepContext
from responder.playbooks.steps import StepResult
from responder.runs import RunRecord, StepRecord, utcnow
from responder.runtime import Runtime

log = get_logger(__name__)


def run_playbook(runtime: Runtime, run_id: str, *, final_attempt: bool) -> RunRecord:
    """Run the steps of ``run_id`` that are not done yet; return the updated record.

    A transient failure raises TransientError (after recording it) so the job is retried,
    unless this is the final attempt. Any other failure is recorded on its step and the
    remaining steps still run (on-call wants the ticket even when a dispatch failed), unless
    the failed step has ``stop_on_failure``: then the rest is recorded as skipped.
    """
    record = runtime.runs.get(run_id)
    playbook = runtime.catalog.get(record.playbook)
    record.status, record.attempts, record.error = "running", record.attempts + 1, None
    record.started_at = record.started_at or utcnow()
    runtime.runs.save(record)
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
    )
    with structlog.contextvars.bound_contextvars(
        job_id=record.id, alertname=record.alertname, fingerprint=record.alert.fingerprint, playbook=playbook.name
    ):
        log.info("run.started", attempt=record.attempts, dry_run=record.dry_run, alert_status=record.alert.status)
        stopped_by: str | None = None
        for step in playbook.steps_for(record.alert):
            done = record.step(step.name)
            if done is not None and done.done:
                continue
            ctx.current_step = step.name
            with structlog.contextvars.bound_contextvars(step=step.name):
                entry = StepRecord(name=step.name, kind=step.kind, status="ok", started_at=utcnow())
                if stopped_by is not None:
                    entry.status, entry.blocked, entry.detail = "skipped", True, f"not run: {stopped_by} failed"
                elif step.when is not None and not step.when.matches(record.alert):
                    entry.status, entry.detail = "skipped", f"condition not met: {step.when.describe()}"
                else:
                    try:
                        _apply(entry, step.run(ctx))
                    except TransientError as exc:
                        _fail(entry, exc, redactor)
                        if not final_attempt:
                            entry.error = f"{entry.error} (will retry)"
                            _finish_step(runtime, record, entry)
                            record.status = "retrying"
                            runtime.runs.save(record)
                            log.warning("step.transient_failure", error=str(exc))
                            raise
                    except ResponderError as exc:
                        _fail(entry, exc, redactor)
                    except JobTimeoutException:
                        entry.status, entry.error = "failed", "run timed out"
                        _finish_step(runtime, record, entry)
                        raise
                    except Exception as exc:  # a bug: keep the run going, record and log it
                        log.exception("step.crashed")
                        _fail(entry, exc, redactor, prefix="internal error: ")
                    if entry.status == "failed" and step.stop_on_failure:
                        stopped_by = step.name
                _finish_step(runtime, record, entry)
                _observe_step(playbook.name, entry)
                log.info("step.finished", status=entry.status, detail=entry.detail, error=entry.error)
        failed = [s.name for s in record.steps if s.status == "failed"]
        record.status = "failed" if failed else "succeeded"
        record.error = f"failed steps: {', '.join(failed)}" if failed else None
        record.ended_at = utcnow()
        runtime.runs.save(record)
        if (recorder := metrics.recorder()) is not None:
            recorder.run_finished(playbook.name, record.status)
        log.info("run.finished", status=record.status)
    return record


def _apply(entry: StepRecord, result: StepResult) -> None:
    entry.status = "skipped" if result.skipped else "planned" if result.planned else "ok"
    entry.detail, entry.url, entry.outputs = result.detail, result.url, result.outputs


def _fail(entry: StepRecord, exc: Exception, redactor: Redactor, *, prefix: str = "") -> None:
    """Record the failure; an API may echo a credential in its message, so it is scrubbed first."""
    entry.status = "failed"
    entry.error = redactor.scrub_text(prefix + (str(exc) or type(exc).__name__))


def _observe_step(playbook: str, entry: StepRecord) -> None:
    recorder = metrics.recorder()
    if recorder is not None and entry.started_at and entry.ended_at:
        recorder.step_finished(playbook, entry.name, entry.kind, (entry.ended_at - entry.started_at).total_seconds())


def _finish_step(runtime: Runtime, record: RunRecord, entry: StepRecord) -> None:
    entry.ended_at = utcnow()
    record.put_step(entry)
    runtime.runs.save(record)
