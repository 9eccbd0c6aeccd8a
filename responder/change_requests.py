"""Change requests with evidence: a retraining run that succeeded becomes a pull request updating
the model manifest, reviewed by the runbook's approvers (issue 18).

When a followed retraining run, of a ``dispatch_workflow`` step with ``change_request: true``,
concludes ``success``, ``responder.following`` queues this module's job once (a Redis key per
tag, a deterministic job id). The job moves the run record's ``ChangeRequest`` along, one stage
per look, each stage stored before the next begins:

1. ``preparing``: read ``training-summary.json`` from the retraining run's ``training-summary``
   artifact: the proposed ``version`` and ``artifact.sha256`` (missing or unreadable: refused).
2. ``governance``: dispatch ``model-governance.yml`` for that version with ``REASON=change-request``
   once (``Dispatch``: a lost answer is settled from the run list, never sent twice) and follow it
   like any dispatched run; its end queues the job again. Anything but ``success``: refused.
3. ``opening``: branch ``responder/<model_id>-<version>``, one commit of the manifest entry
   (``manifest_edit``: every other byte kept), the pull request ``[change-request] <model_id>
   <version>`` with the evidence (``evidence``), review requests to the ``ml-lead`` and
   ``responsible-ai`` approvers (logins, or ``@org/team``), and the link on the ticket. Each
   write is looked for first (``PullRequests``), so a lost answer is found, not repeated.
4. ``open`` / ``approved``: the reviews are read from GitHub: one approver of each group, two
   people (``approvals.assignment``, a person's latest review counting), is said on the ticket
   once; each "changes requested" review is said once; a merge or a close is noted, and ends it.
   responder never merges.

What starts a look at the reviews: a ``pull_request`` or ``pull_request_review`` webhook delivery
for the pull request (``responder.github_events``; only its number is taken from the delivery), or
the poll chain, every ``change_request_poll_seconds``, the fallback when no webhook is configured,
for as long as run records are kept (``dedup_retention_seconds``).

One job at a time works on a change request (a Redis lock). A transient failure schedules the
job again (backoff, Retry-After honoured) up to ``MAX_TRIES`` times; a permanent one refuses the
change request with the reason, on the ticket. What the ticket was told is kept on the record,
so each event is said once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from redis import Redis
from redis.client import Pipeline
from rq import Queue

from responder import change_request_rules as rules
from responder import evidence, following, tickets
from responder.change_request_rules import GROUPS
from responder.document import render_markdown
from responder.errors import PermanentError, RunNotFound, TransientError
from responder.integrations.base import TicketKey, Tracker, comment_on_open
from responder.integrations.github_changes import PullRequests
from responder.log import get_logger
from responder.manifest_edit import set_model_version
from responder.playbooks.context import StepContext
from responder.playbooks.steps.dispatching import Cooldown, Dispatch, step_outputs
from responder.runs import ChangeRequest, FollowedRun, RunRecord
from responder.runtime import Runtime
from responder.settings import Settings
from responder.store import locks, redis_keys
from responder.store.queueing import enqueue_change_request, not_before

log = get_logger(__name__)
OPT_IN = "change_request"  # the dispatch step's output saying it asked for a change request
REASON = "change-request"  # REASON of the governance dispatch for the proposed version
GOVERNANCE_SUFFIX = "-change-request-governance"  # the followed governance run's step name, after the step's
MAX_TRIES = 8  # transient failures before the change request is given up
LOCK_SECONDS = 300  # longer than one look takes; a dead worker's lock lapses
LOCK_WAIT_SECONDS = 30.0


def on_followed_end(runtime: Runtime, record: RunRecord, followed: FollowedRun, *, abandoned: bool) -> None:
    """Called when following ``followed`` ended: queue the change request's job when this is its
    governance run, or a retraining run that succeeded whose dispatch step opted in."""
    if followed.step.endswith(GOVERNANCE_SUFFIX):
        step = followed.step.removesuffix(GOVERNANCE_SUFFIX)
        _queue_once(runtime, record.id, step, f"governance-{followed.run_id}")
        return
    dispatched = record.step(followed.step)
    wanted = dispatched is not None and dispatched.outputs.get(OPT_IN) == "true"
    retraining = followed.workflow == runtime.settings.retraining_workflow
    if wanted and retraining and not abandoned and followed.conclusion == "success" and record.model_id:
        _queue_once(runtime, record.id, followed.step, f"retraining-{followed.run_id}")


def queue_for_pull(redis: Redis, settings: Settings, number: int, tag: str) -> tuple[str, str] | None:
    """Queue a look at the change request of pull request ``number`` now (a webhook delivery, ``tag``);
    ``(run id, step)``, or None when responder did not open it."""
    owner = cast(bytes | None, redis.get(redis_keys.change_request_pull_key(number)))
    if owner is None:
        return None
    run_id, _, step = owner.decode().partition("\n")
    queue = Queue(settings.queue, connection=redis)
    enqueue_change_request(queue, settings, run_id, step, rules.job_id(run_id, step, redis_keys.digest(tag)))
    return run_id, step


def _queue_once(runtime: Runtime, run_id: str, step: str, tag: str) -> None:
    key = redis_keys.change_request_queued_key(run_id, step, tag)
    if not runtime.redis.set(key, "1", nx=True, ex=runtime.settings.dedup_retention_seconds):
        return  # a repeated poll or delivery of the same end
    queue = Queue(runtime.settings.queue, connection=runtime.redis)
    try:
        job_id = rules.job_id(run_id, step, redis_keys.digest(tag))
        enqueue_change_request(queue, runtime.settings, run_id, step, job_id)
    except Exception:
        runtime.redis.delete(key)  # not queued: the next poll or delivery queues it
        raise
    log.info("change_request.queued", job_id=run_id, step=step, tag=tag)


def client(runtime: Runtime) -> PullRequests:
    """The runtime's GitHub client of change requests (``advance`` runs only with live GitHub)."""
    assert runtime.pulls is not None
    return runtime.pulls


def advance(runtime: Runtime, run_id: str, step: str, poll: int = 0) -> str:
    """One look at the change request of step ``step`` of run ``run_id``: move it as far as it goes
    now. ``poll`` > 0: the scheduled review poll of that number, which schedules the next one."""
    if runtime.live is None or runtime.settings.dry_run or not runtime.settings.github_configured:
        return "not proposed: no live GitHub"
    lock, token = redis_keys.change_request_lock_key(run_id, step), uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not runtime.redis.set(lock, token, nx=True, ex=LOCK_SECONDS):
        if time.monotonic() > deadline:
            return "another worker is on it"
        time.sleep(0.2)
    try:
        try:
            record = runtime.runs.get(run_id)
        except RunNotFound:
            return "the run record is gone"
        change = record.change_request(step) or ChangeRequest(step=step)
        if change.ended:
            return change.status
        look = _Look(runtime, record, change)
        try:
            result = look.go()
        except TransientError as exc:
            result = look.retry_later(exc)
        except PermanentError as exc:
            result = look.refuse(str(exc))
        if poll > 0 and change.status in ("open", "approved"):
            look.next_poll(poll)
        return result
    finally:
        locks.release(runtime.redis, lock, token)


class _Look:
    """One look at one change request; every stage stores the record before the next begins."""

    def __init__(self, runtime: Runtime, record: RunRecord, change: ChangeRequest) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.record = record
        self.change = change
        self.model_id = record.model_id or ""
        self.queue = Queue(self.settings.queue, connection=runtime.redis)

    def go(self) -> str:
        stages: dict[str, Callable[[], str | None]] = {
            "preparing": self.prepare,
            "governance": self.governance,
            "opening": self.open,
            "open": self.reviews,
            "approved": self.reviews,
        }
        while (stage := stages.get(self.change.status)) is not None:
            before = self.change.status
            waiting = stage()
            if waiting is not None or self.change.status == before:
                return waiting or self.change.status
        return self.change.status

    # ----------------------------------------------------------------- stages

    def prepare(self) -> str | None:
        retraining = self.record.workflow_run(self.change.step)
        if retraining is None:
            raise PermanentError(f"step {self.change.step} has no followed workflow run", system="responder")
        summary = self._summary(retraining)
        self.change.version, self.change.sha256 = summary.version, summary.sha256
        self.change.status = "governance"
        self._save()
        return None

    def governance(self) -> str | None:
        step = self.change.step + GOVERNANCE_SUFFIX
        followed = self.record.workflow_run(step)
        if followed is None:
            self._dispatch_governance(step)
            return "governance dispatched"
        if not followed.finished:
            if not self.runtime.redis.exists(following.state_key(self.record.id, step)):
                following.follow(self.runtime, self.record.id, followed)  # its scheduling was lost (Redis failed)
            return "waiting for governance"
        if followed.conclusion != "success":
            ended = f"concluded {followed.conclusion}" if followed.conclusion else f"did not conclude ({followed.note})"
            return self.refuse(
                f"governance run {followed.run_id} of {self.change.version} {ended}: no pull request is opened"
            )
        self.change.status = "opening"
        self._save()
        return None

    def open(self) -> str | None:
        pulls = client(self.runtime)
        version, path = str(self.change.version), self.settings.manifest_path
        branch = rules.branch_name(self.model_id, version)
        pull = pulls.find_pull(branch)
        if pull is None:
            retraining = self.record.workflow_run(self.change.step)
            governance = self.record.workflow_run(self.change.step + GOVERNANCE_SUFFIX)
            assert retraining is not None and governance is not None
            summary = self._summary(retraining)
            current = pulls.read_file(path, pulls.base)
            if current is None:
                raise PermanentError(f"{path} is not on {pulls.base}", system="github")
            edited, changes = set_model_version(
                current[0], self.model_id, version=summary.version, sha256=summary.sha256, uri=summary.uri
            )
            if not changes:
                return self.refuse(f"{path} already holds {self.model_id} {version} with that digest")
            pulls.ensure_branch(branch)
            pulls.commit_file(path, branch, edited, rules.title(self.model_id, version))
            ticket = self._tracker().find_open(self._key())
            body = evidence.pull_body(
                self.record,
                summary,
                changes,
                retraining=retraining,
                governance=governance,
                ticket_url=ticket.url if ticket else None,
                manifest_path=path,
            )
            pull = pulls.open_pull(branch, rules.title(self.model_id, version), render_markdown(body))
        self.change.pull_number, self.change.pull_url = pull.number, pull.html_url
        retention = self.settings.dedup_retention_seconds
        owner = f"{self.record.id}\n{self.change.step}"
        self.runtime.redis.set(redis_keys.change_request_pull_key(pull.number), owner, ex=retention)
        self._save()
        users, teams = rules.reviewers(self.settings.approvers)
        pulls.request_reviews(pull.number, users, teams)
        self.change.status, self.change.opened_at = "open", datetime.now(UTC)
        self._save()
        teams_asked = [f"@{t}" for t in rules.team_refs(self.settings.approvers)]
        asked = ", ".join([*users, *teams_asked]) or "nobody (no approvers)"
        self._tell("opened", f"opened; reviews requested from {asked}.")
        self.next_poll(0)
        return None

    def reviews(self) -> str | None:
        number = self.change.pull_number
        assert number is not None
        pull = client(self.runtime).pull(number)
        for review in pull.reviews:
            if review.state == "CHANGES_REQUESTED":
                self._tell(f"changes:{review.id}", f"changes requested by {review.login}.")
        if self.change.status == "open":
            covered = rules.approved_by(pull, self._approvers())
            if len(covered) == len(GROUPS):
                self.change.approved_by, self.change.status = covered, "approved"
                self._save()
                said = " and ".join(f"{covered[g]} ({g})" for g in GROUPS)
                self._tell("approved", f"approved by {said}.")
        if pull.merged:
            self.change.status = "merged"
            self._save()
            self._tell("merged", f"merged by {pull.merged_by or 'someone'}.")
        elif pull.state == "closed":
            self.change.status = "closed"
            self._save()
            self._tell("closed", "closed without being merged.")
        return self.change.status

    # ----------------------------------------------------------------- helpers

    def refuse(self, why: str) -> str:
        """End the change request with ``why``, said on the ticket."""
        self.change.status, self.change.note = "refused", why
        self._save()
        log.info("change_request.refused", job_id=self.record.id, step=self.change.step, reason=why)
        try:
            self._tell("refused", f"not opened: {why}")
        except TransientError as exc:  # the record says why; the ticket is best-effort here
            log.warning("change_request.comment_failed", job_id=self.record.id, error=str(exc))
        return "refused"

    def retry_later(self, exc: TransientError) -> str:
        key = redis_keys.change_request_tries_key(self.record.id, self.change.step)
        tries = int(self.runtime.redis.incr(key))
        self.runtime.redis.expire(key, self.settings.dedup_retention_seconds)
        if tries > MAX_TRIES:
            return self.refuse(f"gave up after {MAX_TRIES} transient failures, the last: {exc}")
        delay = not_before(self.settings.follow_poll_seconds * 2 ** (tries - 1), exc.retry_after)
        job_id = rules.job_id(self.record.id, self.change.step, f"retry-{tries}")
        enqueue_change_request(self.queue, self.settings, self.record.id, self.change.step, job_id, delay=delay)
        log.warning("change_request.retrying", job_id=self.record.id, step=self.change.step, error=str(exc))
        return f"retrying in {delay:.0f} s: {exc}"

    def next_poll(self, poll: int) -> None:
        """Schedule review poll ``poll + 1``, unless the change request has been open longer than records are kept."""
        opened = self.change.opened_at or datetime.now(UTC)
        if datetime.now(UTC) - opened > timedelta(seconds=self.settings.dedup_retention_seconds):
            self.change.note = "reviews no longer polled (open longer than run records are kept)"
            self._save()
            return
        job_id = rules.job_id(self.record.id, self.change.step, f"poll-{poll + 1}")
        delay = self.settings.change_request_poll_seconds
        enqueue_change_request(self.queue, self.settings, self.record.id, self.change.step, job_id, poll=poll + 1,
                               delay=delay)

    def _summary(self, retraining: FollowedRun) -> evidence.TrainingSummary:
        assert self.runtime.workflow_runs is not None
        document = self.runtime.workflow_runs.json_file(
            int(retraining.run_id), evidence.TRAINING_SUMMARY, evidence.TRAINING_SUMMARY_FILE
        )
        return evidence.TrainingSummary.parse(document, model_id=self.model_id, run_id=retraining.run_id)

    def _dispatch_governance(self, step: str) -> None:
        """``model-governance.yml`` for the proposed version, once, and followed."""
        integrations = self.runtime.integrations(dry_run=False)
        workflow = self.settings.governance_workflow
        ctx = StepContext(
            run=self.record,
            settings=self.settings,
            playbook=self.runtime.catalog.get(self.record.playbook),
            github=integrations.github,
            tracker=integrations.tracker,
            redis=self.runtime.redis,
            current_step=step,
        )
        inputs = {"MODEL_ID": self.model_id, "MODEL_VERSION": str(self.change.version), "REASON": REASON}
        dispatch = Dispatch(ctx, step, workflow, inputs)
        state = dispatch.begin(Cooldown(ctx, workflow, 0, holder=dispatch.id))
        url: str | None = None
        if state.answered is not None:
            url = state.answered.url
        else:
            found = dispatch.settle(state.unanswered)[0] if state.unanswered is not None else None
            url = found.url if found is not None else dispatch.send().url
        run_id = step_outputs(inputs, url, workflow).get("run_id")
        if run_id is None:
            raise PermanentError(f"{workflow} was dispatched but GitHub did not name its run: it cannot be followed",
                                 system="github")
        followed = FollowedRun(step=step, workflow=workflow, run_id=run_id, html_url=url)
        self.change.governance_step = step
        self._save(followed)
        following.follow(self.runtime, self.record.id, followed)

    def _approvers(self) -> dict[str, list[str]]:
        """RESPONDER_APPROVERS with each ``@org/team`` replaced by the team's members."""
        pulls = client(self.runtime)
        expanded: dict[str, list[str]] = {}
        for group, entries in self.settings.approvers.items():
            people: list[str] = []
            for entry in entries:
                if entry.startswith("@") and "/" in entry:
                    org, _, slug = entry[1:].partition("/")
                    people += pulls.team_members(org, slug)
                else:
                    people.append(entry)
            expanded[group] = people
        return expanded

    def _tracker(self) -> Tracker:
        return self.runtime.integrations(dry_run=False).tracker

    def _key(self) -> TicketKey:
        return TicketKey(alertname=self.record.alertname, model_id=self.model_id)

    def _tell(self, event: str, text: str) -> None:
        """Say ``text`` on the incident ticket, once per ``event``."""
        if event in self.change.told:
            return
        tracker = self.runtime.integrations(dry_run=False).tracker
        comment_on_open(tracker, self._key(), tickets.change_request(self.record, self.change, text))
        self.change.told.append(event)
        self._save()

    def _save(self, followed: FollowedRun | None = None) -> None:
        """Write the change request (and a workflow run to follow) into the stored record, leaving the
        rest as stored: follow jobs of the run's other steps may save at the same moment (WATCH, retried)."""
        change = self.change

        def merge(pipe: Pipeline) -> None:
            record = self.runtime.runs.get(self.record.id)
            record.change_requests = [c for c in record.change_requests if c.step != change.step] + [change]
            if followed is not None and record.workflow_run(followed.step) is None:
                record.workflow_runs.append(followed)
            pipe.multi()
            self.runtime.runs.save(record, pipe)
            self.record = record

        self.runtime.redis.transaction(merge, self.runtime.runs.key(self.record.id))
