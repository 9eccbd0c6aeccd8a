"""How a workflow dispatch stays "once" although GitHub cannot de-duplicate dispatches and their
answers can be lost: the dispatch noted in Redis, a lost answer settled from the run list, and the
cooldown per workflow and model (see ``Dispatch`` and ``Cooldown``)."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from redis.client import Pipeline

from responder.errors import TransientError
from responder.integrations.base import Outcome, WorkflowRunRef
from responder.playbooks.context import StepContext
from responder.playbooks.steps.base import StepResult
from responder.store.redis_keys import claimed_run_key, cooldown_key, dispatch_attempt_key, unattributed_key

SLACK = timedelta(seconds=5)  # clock difference between this host and GitHub
POLL_SECONDS = 2.0  # between two reads of the run list when the step waits for it in the worker
MODEL_ID_CHARS = "A-Za-z0-9._-"  # what IDENTIFIER allows: a model id is a word made of these


def answer_lost(exc: TransientError) -> bool:
    """True when the request may have been carried out although no answer says so (a 5xx, a
    timeout, a dropped connection), false when GitHub said it did nothing (429, rate-limit 403)."""
    return exc.status is None or exc.status >= 500


def names(title: str, word: str) -> bool:
    """``title`` names ``word`` as a word of its own: "fraud-scorer" is not in "fraud-scorer-v2"."""
    return re.search(rf"(?<![{MODEL_ID_CHARS}]){re.escape(word)}(?![{MODEL_ID_CHARS}])", title) is not None


def final_attempt(ctx: StepContext) -> bool:
    """No retry follows this attempt of the run (the rule of responder.jobs.run_playbook_job)."""
    return ctx.run.attempts > len(ctx.settings.job_retry_intervals)


class Cooldown:
    """At most one dispatch of a workflow per model within ``seconds``: a Redis key naming its holder."""

    def __init__(self, ctx: StepContext, workflow: str, seconds: int, *, holder: str) -> None:
        self._ctx = ctx
        self._workflow = workflow
        self._key = cooldown_key(workflow, ctx.model_id)
        self._seconds = seconds
        self._holder = holder
        self._value = ""

    def take(self, pipe: Pipeline) -> None:
        """Queue taking it (unless somebody holds it) and reading who does; ``taken`` reads the answers."""
        if self._seconds:
            until = datetime.now(UTC) + timedelta(seconds=self._seconds)
            pipe.set(self._key, f"{until.isoformat()} {self._holder}", nx=True, ex=self._seconds)
            pipe.get(self._key)

    def taken(self, answers: list[object]) -> None:
        if self._seconds:
            held = cast(bytes | None, answers[-1])
            self._value = held.decode() if held else ""

    @property
    def held(self) -> bool:
        """No cooldown applies, or this dispatch holds it (it may have taken it on an earlier attempt)."""
        return not self._seconds or self._value.partition(" ")[2] == self._holder

    def give_back(self) -> None:
        if self._seconds and self.held:
            self._ctx.redis.delete(self._key)

    def skip_detail(self, model_id: str) -> str:
        until = self._value.partition(" ")[0] or "shortly"
        return f"cooldown until {until}: {self._workflow} already dispatched for {model_id}"


@dataclass(frozen=True)
class Unanswered:
    """A dispatch that was sent and never answered: the answer was lost, or its worker died."""

    sent: datetime
    lost: datetime | None  # when the answer was lost; None when the worker died waiting for it


@dataclass(frozen=True)
class Answered:
    detail: str
    url: str | None


@dataclass(frozen=True)
class DispatchState:
    unanswered: Unanswered | None = None
    answered: Answered | None = None


class Dispatch:
    """One dispatch intent (this step of this run): at most one workflow run, although GitHub
    cannot de-duplicate dispatches and their answers can be lost.

    Before sending, the time is noted in Redis. When the answer is lost (a 5xx, a timeout), the
    dispatch may or may not have started a run, and GitHub lists a new run only seconds later.
    So the next attempt reads the workflow's workflow_dispatch runs created since the send: a run
    whose display_title names MODEL_ID (the workflows' run-name is "<workflow> MODEL_ID
    MODEL_VERSION (REASON)") is adopted, claimed in Redis so no other lost dispatch adopts it
    too. Only when RESPONDER_DISPATCH_LOOKUP_SECONDS have passed since the answer was lost with
    no such run listed is it sent again. A run that does not name the model is never adopted.

    Where another dispatch of the workflow for the model has no known run either (its answer was
    lost too, or a GitHub Enterprise Server answered it without naming the run), the run adopted
    may be that one's: the step's detail says so. An answer is kept with the dispatch, so a
    step re-run before its result was saved (its worker died) does not send again.

    While the list has not caught up, the step does not hold its worker: it raises a
    TransientError asking to be retried when the window ends. On the run's final attempt,
    when no retry would follow, it reads the list in the worker until the window ends.
    """

    def __init__(self, ctx: StepContext, step: str, workflow: str, inputs: dict[str, str]) -> None:
        self._ctx = ctx
        self.id = f"{ctx.run.id}:{step}"
        self._key = dispatch_attempt_key(ctx.run.id, step)
        self._workflow = workflow
        self._inputs = inputs
        self._model = inputs["MODEL_ID"]
        self._unattributed = unattributed_key(workflow, self._model)
        self._window = timedelta(seconds=ctx.settings.dispatch_lookup_seconds)
        self._retention = ctx.settings.dedup_retention_seconds

    def begin(self, cooldown: Cooldown) -> DispatchState:
        """This dispatch's state, and the cooldown taken if free, in one round trip."""
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            pipe.get(self._key)
            cooldown.take(pipe)
            noted, *answers = pipe.execute()
        cooldown.taken(answers)
        return _state(cast(bytes | None, noted))

    def send(self) -> Outcome:
        """Dispatch once, noted in Redis before and after."""
        sent = datetime.now(UTC)
        horizon = (sent - timedelta(seconds=self._retention)).timestamp()
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key, json.dumps({"sent": sent.isoformat()}), ex=self._retention)
            pipe.zadd(self._unattributed, {self.id: sent.timestamp()})
            pipe.zremrangebyscore(self._unattributed, "-inf", horizon)
            pipe.expire(self._unattributed, self._retention)
            pipe.execute()
        try:
            outcome = self._ctx.github.dispatch_workflow(self._workflow, self._inputs)
        except TransientError as exc:
            if answer_lost(exc):  # kept: the next attempt first looks for the run it may have started
                lost = {"sent": sent.isoformat(), "lost": datetime.now(UTC).isoformat()}
                self._ctx.redis.set(self._key, json.dumps(lost), ex=self._retention)
            else:
                self._forget()
            raise
        except Exception:
            self._forget()
            raise
        if outcome.planned:
            self._forget()
        else:
            self._answered(Answered(outcome.detail, outcome.url), _run_id(outcome.url))
        return outcome

    def settle(self, unanswered: Unanswered) -> tuple[Answered | None, str]:
        """Find the run an unanswered dispatch started: ``(answered, "")`` when one is listed, or
        ``(None, why)`` once the lookup window has passed without one (it is to be sent again).
        Raises TransientError to be retried when the window ends if the list has not caught up yet."""
        timeout = timedelta(seconds=self._ctx.settings.http_timeout_seconds)
        settle_by = (unanswered.lost or unanswered.sent + timeout) + self._window
        while True:
            runs = self._ctx.github.recent_dispatch_runs(self._workflow, unanswered.sent - SLACK)
            named = [r for r in runs if names(r.display_title, self._model) and _since(r, unanswered.sent - SLACK)]
            for run in sorted(named, key=lambda r: self._rank(r, unanswered.sent)):
                if self._claim(run.id):
                    found = Answered(
                        f"dispatched {self._workflow} (found run {run.id} after a lost answer)"
                        + self._rivals_note(unanswered, run),
                        run.html_url,
                    )
                    self._answered(found, str(run.id))
                    return found, ""
            now = datetime.now(UTC)
            if now >= settle_by:
                self._forget()  # the list has caught up and shows nothing of ours: it started nothing
                return None, self._nothing_note(runs, named, unanswered)
            wait = (settle_by - now).total_seconds()
            if not final_attempt(self._ctx):
                raise TransientError(
                    f"dispatch {self._workflow}: answer lost; no run naming {self._model} listed yet, "
                    f"looking again in {math.ceil(wait)} s",
                    system="github",
                    retry_after=wait,
                )
            time.sleep(min(wait, POLL_SECONDS))

    def _rank(self, run: WorkflowRunRef, sent: datetime) -> tuple[int, bool, datetime]:
        """This dispatch's run names its version and reason too, and is the first created after it was sent."""
        named = sum(names(run.display_title, self._inputs[k]) for k in ("MODEL_VERSION", "REASON"))
        created = run.created_at or sent
        return -named, created < sent.replace(microsecond=0), created

    def _claim(self, run_id: int) -> bool:
        """Claim the run for this dispatch; True if no other dispatch had (or this one already did)."""
        key = claimed_run_key(run_id)
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, self.id, nx=True, ex=self._retention)
            pipe.get(key)
            _, holder = pipe.execute()
        return cast(bytes | None, holder) == self.id.encode()

    def _answered(self, answered: Answered, run_id: str | None) -> None:
        """Keep the answer (a re-run of the step before its result was saved finds it) and claim the run;
        a run GitHub did not name stays among the unattributed ones for other lost dispatches to weigh."""
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key, json.dumps({"detail": answered.detail, "url": answered.url}), ex=self._retention)
            if run_id is not None:
                pipe.set(claimed_run_key(run_id), self.id, nx=True, ex=self._retention)
                pipe.zrem(self._unattributed, self.id)
            pipe.execute()

    def _forget(self) -> None:
        with self._ctx.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._key)
            pipe.zrem(self._unattributed, self.id)
            pipe.execute()

    def _rivals_note(self, unanswered: Unanswered, run: WorkflowRunRef) -> str:
        """Other dispatches of this workflow and model with no known run, sent when they could have started ``run``."""
        timeout = timedelta(seconds=self._ctx.settings.http_timeout_seconds)
        low = (unanswered.sent - SLACK - timeout).timestamp()
        members = cast(list[bytes], self._ctx.redis.zrangebyscore(self._unattributed, low, "+inf"))
        rivals = [m.decode() for m in members if m.decode() != self.id]
        if not rivals:
            return ""
        who = ", ".join(f"run {r.rpartition(':')[0]} step {r.rpartition(':')[2]}" for r in rivals)
        many = len(rivals) > 1
        return (
            f"; {f'{len(rivals)} other dispatches' if many else 'another dispatch'} of {self._workflow} for "
            f"{self._model} with no known run {'were' if many else 'was'} sent meanwhile ({who}): "
            f"run {run.id} may have been started by {'one of them' if many else 'it'}"
        )

    def _nothing_note(self, runs: list[WorkflowRunRef], named: list[WorkflowRunRef], unanswered: Unanswered) -> str:
        window = f"{self._ctx.settings.dispatch_lookup_seconds:g}"
        unclaimed = "unclaimed run" if named else "run"
        note = f"sent again after a lost answer: no {unclaimed} naming {self._model} was listed within {window} s"
        if named:
            note += f" (run {', '.join(str(r.id) for r in named)} names it but another dispatch claimed it)"
        untitled = [r for r in runs if r.display_title == r.workflow_name and _since(r, unanswered.sent - SLACK)]
        if untitled:
            note += (
                f"; {len(untitled)} run(s) titled only {untitled[0].display_title!r} may be it: give "
                f"{self._workflow} a run-name naming inputs.MODEL_ID so that its runs can be told apart"
            )
        return note


def _state(noted: bytes | None) -> DispatchState:
    if noted is None:
        return DispatchState()
    try:
        value = json.loads(noted)
    except ValueError:  # noted by an earlier release: the send time alone
        return DispatchState(unanswered=Unanswered(datetime.fromisoformat(noted.decode()), None))
    if "sent" in value:
        lost = datetime.fromisoformat(value["lost"]) if value.get("lost") else None
        return DispatchState(unanswered=Unanswered(datetime.fromisoformat(value["sent"]), lost))
    return DispatchState(answered=Answered(value["detail"], value.get("url")))


def _since(run: WorkflowRunRef, moment: datetime) -> bool:
    return run.created_at is None or run.created_at >= moment.replace(microsecond=0)


def step_outputs(inputs: dict[str, str], url: str | None, workflow: str) -> dict[str, str]:
    """The step's outputs: the inputs it dispatched with, and the workflow run it started or adopted
    (its workflow, id and link) when GitHub named it; the follow jobs read the run from there."""
    run_id = _run_id(url)
    if run_id is None or url is None:
        return inputs
    return {**inputs, "workflow": workflow, "run_id": run_id, "html_url": url}


def with_change_request(result: StepResult) -> StepResult:
    """``result`` of a dispatch whose run, once it succeeds, is to become a change request: an output
    the follow jobs read (``responder.change_requests``)."""
    return result.model_copy(update={"outputs": {**result.outputs, "change_request": "true"}})


def _run_id(url: str | None) -> str | None:
    match = re.search(r"/runs/(\d+)", url or "")
    return match.group(1) if match else None
