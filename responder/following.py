"""Following the workflow runs a playbook run dispatched, to their end, as scheduled jobs.

When a run has finished its steps, each dispatch step that recorded a workflow run (a live
dispatch, not a planned one) gets a follow job, scheduled ``follow_poll_seconds`` later. A
follow job reads the run once, conditionally (``If-None-Match`` with the ETag of the last read:
an unchanged run costs a 304 and no rate limit), and then either schedules the next poll or,
the run completed, reads its artifacts, stores the result on the run record and comments on the
incident ticket once. No worker is held between polls. A retraining run that succeeded, of a dispatch
step that asked for it, gets its change request queued (``responder.change_requests``), and so does the
end of that change request's governance run.

One worker at a time follows a run: a poll holds a Redis lock for (run, step), and each poll's
job id names its number, so a poll queued twice is one job. Following gives up after
``follow_timeout_seconds`` since the first poll was scheduled, and says so on the ticket.

A poll whose worker dies is re-queued by another worker's maintenance, like a run (see
``responder.worker_recovery``), which also releases the lock the dead poll held (the lock names the poll's
number): a re-queued poll therefore never finds its own dead lock busy, and a poll that does find
the lock busy is a duplicate of a live one, whose chain of polls goes on without it. A poll whose
worker died more than ``MAX_ABANDONED_REQUEUES`` times is not re-queued: following stops with the
reason recorded (``stop_following``), as a run abandoned that often is recorded as failed.

Everything here is best-effort for the incident: a failure to read GitHub is retried at the next
poll (a TransientError) or ends the following with the reason recorded (a PermanentError); it
never changes the run's own status. Nothing here writes to GitHub, so no conclusion lifts a freeze
(the change request's job, not the poll, opens the pull request).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from redis.client import Pipeline
from rq import Queue

from responder import change_requests, metrics, tickets
from responder.errors import PermanentError, ResponderError, TransientError
from responder.integrations.base import NotModified, RunSnapshot, TicketKey, comment_on_open
from responder.log import get_logger
from responder.runs import ENDED, FollowedArtifact, FollowedRun, RunRecord
from responder.runtime import Runtime
from responder.store import locks, redis_keys
from responder.store.queueing import enqueue_follow, enqueue_run, not_before
from responder.timefmt import duration

log = get_logger(__name__)
DISPATCH_KIND = "dispatch_workflow"
LOCK_SECONDS = 120  # longer than one poll and its artifact reads take; a dead worker's lock lapses


def state_key(run_id: str, step: str) -> str:
    """What the follow jobs of one workflow run remember between polls: the ETag and when following began."""
    return redis_keys.follow_state_key(run_id, step)


def lock_key(run_id: str, step: str) -> str:
    """Held by the poll in flight for (run, step); its value is ``<poll number>:<random token>``."""
    return redis_keys.follow_lock_key(run_id, step)


def release_abandoned_lock(pipe: Pipeline, run_id: str, step: str, number: int) -> None:
    """Queue on ``pipe`` the release of the lock poll ``number`` holds, if it holds it: its worker died
    mid-poll. Left to lapse (LOCK_SECONDS), the lock would turn the re-queued poll away as a duplicate
    and nothing would poll the run again. A lock another poll holds is left alone."""
    locks.release_prefixed(pipe, lock_key(run_id, step), f"{number}:")


@dataclass(frozen=True)
class FollowState:
    since: datetime  # when following began
    etag: str | None = None

    def dumps(self) -> str:
        return json.dumps({"since": self.since.isoformat(), "etag": self.etag})

    @classmethod
    def loads(cls, raw: bytes) -> FollowState:
        value = json.loads(raw)
        return cls(since=datetime.fromisoformat(value["since"]), etag=value.get("etag"))


def to_follow(record: RunRecord) -> list[FollowedRun]:
    """The workflow runs of ``record``'s dispatch steps not followed yet (none for a dry run)."""
    if record.dry_run:
        return []
    found = []
    for step in record.steps:
        run_id = step.outputs.get("run_id")
        if step.kind != DISPATCH_KIND or step.status != "ok" or not run_id or record.workflow_run(step.name):
            continue
        workflow = step.outputs.get("workflow", "")
        found.append(
            FollowedRun(step=step.name, workflow=workflow, run_id=run_id, html_url=step.outputs.get("html_url"))
        )
    return found


def start(runtime: Runtime, record: RunRecord) -> None:
    """Record the workflow runs ``record`` started and schedule their first polls."""
    if runtime.workflow_runs is None or record.status in ("retrying", "running", "queued"):
        return
    new = to_follow(record)
    if not new:
        return
    record.workflow_runs += new
    queue = Queue(runtime.settings.queue, connection=runtime.redis)
    now = datetime.now(UTC)
    with runtime.redis.pipeline(transaction=False) as pipe:  # one round trip for the record and every first poll
        runtime.runs.save(record, pipe)
        for followed in new:
            _first_poll(runtime, queue, record.id, followed, now, pipe)
        pipe.execute()
    for followed in new:
        log.info("follow.scheduled", job_id=record.id, step=followed.step, workflow_run=followed.run_id)


def follow(runtime: Runtime, run_id: str, followed: FollowedRun) -> None:
    """Schedule the first poll of ``followed``, a workflow run already on the stored record of
    ``run_id`` that no step of it dispatched (a change request's governance run)."""
    queue = Queue(runtime.settings.queue, connection=runtime.redis)
    with runtime.redis.pipeline(transaction=False) as pipe:
        _first_poll(runtime, queue, run_id, followed, datetime.now(UTC), pipe)
        pipe.execute()
    log.info("follow.scheduled", job_id=run_id, step=followed.step, workflow_run=followed.run_id)


def _first_poll(
    runtime: Runtime, queue: Queue, run_id: str, followed: FollowedRun, now: datetime, pipe: Pipeline
) -> None:
    retention = runtime.settings.dedup_retention_seconds
    pipe.set(state_key(run_id, followed.step), FollowState(since=now).dumps(), nx=True, ex=retention)
    pipe.set(redis_keys.followed_run_key(followed.run_id), f"{run_id}\n{followed.step}", ex=retention)
    delay = runtime.settings.follow_poll_seconds
    enqueue_follow(queue, runtime.settings, run_id, followed.step, 1, delay=delay, pipeline=pipe)


def poll(runtime: Runtime, run_id: str, step: str, number: int, *, chain: bool = True) -> str:
    """Poll number ``number`` of the workflow run step ``step`` of ``run_id`` started; what became of it.

    ``chain`` false: a poll outside the scheduled ones (GitHub's webhook said the run completed),
    which schedules nothing after it; the scheduled polls carry on if it could not settle the run."""
    reader = runtime.workflow_runs
    if reader is None:
        return "not followed: no GitHub reader"
    lock, token = lock_key(run_id, step), f"{number}:{uuid.uuid4().hex}"
    if not runtime.redis.set(lock, token, nx=True, ex=LOCK_SECONDS):
        return "another worker is polling it"  # a live poll (a dead one's lock went with its re-queue)
    try:
        record = runtime.runs.get(run_id)
        followed = record.workflow_run(step)
        if followed is None or followed.reported:
            return "nothing to follow"
        if followed.finished:  # ended, but the ticket was not told yet (the tracker failed)
            abandoned = followed.status != "completed"
            return _end(runtime, record, followed, number=number, abandoned=abandoned, again=True, chain=chain)
        raw = cast(bytes | None, runtime.redis.get(state_key(run_id, step)))
        state = FollowState.loads(raw) if raw is not None else FollowState(since=datetime.now(UTC))
        retry_after: float | None = None
        try:
            answer = reader.poll(int(followed.run_id), state.etag)
        except TransientError as exc:
            answer, retry_after = None, exc.retry_after
            log.warning("follow.poll_failed", job_id=run_id, step=step, error=str(exc))
        except PermanentError as exc:
            followed.note = f"could not read the run: {exc}"
            return _end(runtime, record, followed, number=number, abandoned=True, chain=chain)
        if isinstance(answer, RunSnapshot):
            _update(followed, answer)
            state = FollowState(since=state.since, etag=answer.etag)
            if answer.completed:
                return _completed(runtime, record, followed, number, chain=chain)
        elif isinstance(answer, NotModified):
            state = FollowState(since=state.since, etag=answer.etag or state.etag)
        waited = datetime.now(UTC) - state.since
        if waited >= timedelta(seconds=runtime.settings.follow_timeout_seconds):
            followed.note = f"gave up following after {duration(state.since, state.since + waited)}"
            return _end(runtime, record, followed, number=number, abandoned=True, chain=chain)
        _store(runtime, record.id, followed)
        runtime.redis.set(state_key(run_id, step), state.dumps(), ex=runtime.settings.dedup_retention_seconds)
        delay = not_before(runtime.settings.follow_poll_seconds, retry_after)
        if chain:
            queue = Queue(runtime.settings.queue, connection=runtime.redis)
            enqueue_follow(queue, runtime.settings, run_id, step, number + 1, delay=delay)
        return followed.status
    finally:
        locks.release(runtime.redis, lock, token)  # only our own lock: one that lapsed may be another's


def stop_following(runtime: Runtime, record: RunRecord, followed: FollowedRun, note: str) -> None:
    """Stop following ``followed`` for the reason ``note``, from outside a poll (a poll whose worker kept
    dying is not re-queued again): recorded on the run record and counted as abandoned. The ticket is
    not told: what made the poll's worker die may well be telling it (``jobs show`` says why)."""
    followed.note = note
    _store(runtime, record.id, followed)
    runtime.redis.delete(state_key(record.id, followed.step))
    if (recorder := metrics.recorder()) is not None:
        recorder.workflow_run_ended(followed.workflow, "abandoned")
    log.info("follow.ended", job_id=record.id, step=followed.step, conclusion=None, note=note)


def _update(followed: FollowedRun, snapshot: RunSnapshot) -> None:
    followed.workflow = snapshot.workflow or followed.workflow
    followed.html_url = snapshot.html_url
    followed.status, followed.conclusion = snapshot.status, snapshot.conclusion
    followed.created_at, followed.updated_at = snapshot.created_at, snapshot.updated_at


def _completed(runtime: Runtime, record: RunRecord, followed: FollowedRun, number: int, *, chain: bool) -> str:
    assert runtime.workflow_runs is not None
    try:
        summaries = runtime.workflow_runs.artifacts(int(followed.run_id))
    except (TransientError, PermanentError) as exc:
        followed.note = f"completed; its artifacts could not be read: {exc}"
        summaries = []
    followed.artifacts = [FollowedArtifact(name=a.name, status=a.status, reason=a.reason) for a in summaries]
    return _end(runtime, record, followed, number=number, abandoned=False, chain=chain)


def _end(
    runtime: Runtime,
    record: RunRecord,
    followed: FollowedRun,
    *,
    number: int,
    abandoned: bool,
    again: bool = False,
    chain: bool = True,
) -> str:
    """Store how following ended, count it (unless ``again``: a later try at telling the ticket), then
    tell the incident ticket (once: the record says whether it was). A tracker that fails transiently
    is tried again at the next poll's time."""
    _store(runtime, record.id, followed)
    runtime.redis.delete(state_key(record.id, followed.step))
    if not again and (recorder := metrics.recorder()) is not None:
        recorder.workflow_run_ended(followed.workflow, "abandoned" if abandoned else followed.conclusion or "abandoned")
    log.info("follow.ended", job_id=record.id, step=followed.step, conclusion=followed.conclusion, note=followed.note)
    change_requests.on_followed_end(runtime, record, followed, abandoned=abandoned)
    if followed.unsuccessful:
        _reconsider(runtime, record.id, followed)
    if followed.reported or record.model_id is None:
        return followed.conclusion or "abandoned"
    tracker = runtime.integrations(dry_run=False).tracker
    try:
        body = (
            tickets.workflow_run_abandoned(record, followed)
            if abandoned
            else tickets.workflow_run_finished(
                record, followed, governance_workflow=runtime.settings.governance_workflow
            )
        )
        comment_on_open(tracker, TicketKey(alertname=record.alertname, model_id=record.model_id), body)
    except TransientError as exc:
        log.warning("follow.comment_failed", job_id=record.id, step=followed.step, error=str(exc))
        if chain:  # else the scheduled polls tell it (the record says it ended, not that it was told)
            queue = Queue(runtime.settings.queue, connection=runtime.redis)
            delay = runtime.settings.follow_poll_seconds
            enqueue_follow(queue, runtime.settings, record.id, followed.step, number + 1, delay=delay)
        return "ticket not told yet"
    followed.reported = True
    _store(runtime, record.id, followed)
    return followed.conclusion or "abandoned"


def _reconsider(runtime: Runtime, run_id: str, followed: FollowedRun) -> None:
    """Run the steps that wait for ``followed``'s dispatch step to fail (``when: {failed: [...]}``,
    e.g. the quarterly baseline's ticket) again, now that its workflow run did not succeed: the run
    is queued again and only those steps (skipped before, their condition not met) run."""
    try:
        playbook = runtime.catalog.get(runtime.runs.get(run_id).playbook)
    except ResponderError:
        return
    steps = playbook.steps + (playbook.on_resolved or [])
    waiting = {s.name for s in steps if s.when and followed.step in s.when.failed}
    if not waiting:
        return
    queue = Queue(runtime.settings.queue, connection=runtime.redis)

    def reopen(pipe: Pipeline) -> None:
        record = runtime.runs.get(run_id)
        skipped = [s for s in record.steps if s.name in waiting and s.status == "skipped" and not s.blocked]
        if record.status not in ENDED or not skipped:
            return
        record.steps = [s for s in record.steps if s not in skipped]
        record.status = "queued"
        pipe.multi()
        runtime.runs.save(record, pipe)
        enqueue_run(queue, runtime.settings, run_id, job_id=f"{run_id}-failed-{followed.step}", pipeline=pipe)

    runtime.redis.transaction(reopen, runtime.runs.key(run_id))
    log.info("follow.reconsidered", job_id=run_id, step=followed.step, steps=sorted(waiting))


def _store(runtime: Runtime, run_id: str, followed: FollowedRun) -> None:
    """Write ``followed`` into the stored run record, leaving the other entries as stored: the
    follow jobs of two dispatch steps of one run may save at the same moment (WATCH, retried)."""

    def merge(pipe: Pipeline) -> None:
        record = runtime.runs.get(run_id)
        record.workflow_runs = [followed if f.step == followed.step else f for f in record.workflow_runs]
        pipe.multi()
        runtime.runs.save(record, pipe)

    runtime.redis.transaction(merge, runtime.runs.key(run_id))
