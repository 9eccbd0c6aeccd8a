"""The run record on-call reads: what a playbook run was asked to do and what each step did.

One JSON document per run at ``responder:run:<job_id>``, indexed by enqueue time in the
sorted set ``responder:runs``; both expire after the dedup retention. A run the intake queued
for an alert of a notification is first stored as a ``QueuedRun``: it points at its alert in the
notification's payload (``redis_keys.payload_key``, stored once for the whole notification)
instead of holding a copy. ``RunStore`` reads either form as a full ``RunRecord``, and the
worker's first checkpoint stores the full form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast, get_args

import pydantic_core
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis import Redis
from redis.client import Pipeline

from responder.alerts import Alert, Notification
from responder.errors import RunNotFound
from responder.store import redis_keys
from responder.store.redis_keys import payload_key
from responder.store.writeset import WriteSet

StepStatus = Literal["ok", "skipped", "planned", "failed", "retrying", "waiting"]
RunStatus = Literal[
    "queued", "running", "retrying", "awaiting_approval", "succeeded", "failed", "expired", "suppressed"
]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
ENDED: tuple[str, ...] = ("succeeded", "failed", "expired", "suppressed")  # a run job for these does nothing
Source = Literal["webhook", "manual", "replay"]

INDEX_KEY = redis_keys.RUNS_INDEX
MAX_RELATED = 50  # sibling alerts kept for a run (for checklists); bounds its size in big groups
_ALERTS = TypeAdapter(list[Alert])


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepRecord(BaseModel):
    name: str
    kind: str
    status: StepStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: str = ""
    url: str | None = None
    error: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    blocked: bool = Field(False, description="Skipped only because an earlier step failed and stopped the run.")
    finding: str | None = Field(
        None,
        description="What a check found wrong (e.g. 'mismatch', 'missing'). Beside the status, not one: "
        "the step ran fine (ok, done, not retried) and the run still succeeds, but every view shows it.",
    )
    retry_at: datetime | None = Field(
        None, description="Status retrying: when the run's next attempt runs this step again (a transient failure)."
    )

    @property
    def done(self) -> bool:
        """A checkpoint: done steps are not run again by a retry of the same run."""
        return self.status in ("ok", "planned") or (self.status == "skipped" and not self.blocked)


class Approval(BaseModel):
    """One person's answer to a run's approval step."""

    who: str
    decision: Literal["approve", "reject"]
    at: datetime
    how: str = Field(description="Where the answer came from: cli, a ticket comment, the runs page.")
    reason: str | None = None


class FollowedArtifact(BaseModel):
    """An artifact of a followed workflow run, as its summary read it."""

    name: str
    status: str | None = None  # the status its files agree on; None when it has none
    reason: str | None = None  # why it was not read; None when read


class FollowedRun(BaseModel):
    """A workflow run a dispatch step started (or adopted), as the follow jobs last saw it."""

    step: str
    workflow: str
    run_id: str
    html_url: str | None = None
    status: str = "dispatched"  # GitHub's run status once polled: queued, in_progress, completed
    conclusion: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    artifacts: list[FollowedArtifact] = Field(default_factory=list)
    note: str | None = Field(None, description="Why following ended without a conclusion (gave up, unreadable).")
    reported: bool = Field(False, description="The incident ticket has been told how it ended.")

    @property
    def finished(self) -> bool:
        """Nothing more to follow: it completed, or following gave up."""
        return self.status == "completed" or self.note is not None

    @property
    def unsuccessful(self) -> bool:
        """It completed without success (failure, cancelled, timed out...): for ``when: {failed:
        [step]}`` its dispatch step counts as failed."""
        return self.status == "completed" and self.conclusion not in (None, "success", "neutral", "skipped")


ChangeRequestStatus = Literal["preparing", "governance", "opening", "open", "approved", "merged", "closed", "refused"]


class ChangeRequest(BaseModel):
    """The pull request a successful retraining run proposes (``responder.change_requests``), as far as it got."""

    step: str = Field(description="The retraining dispatch step whose run proposed it.")
    status: ChangeRequestStatus = "preparing"
    version: str | None = None  # the proposed version, from the run's training summary
    sha256: str | None = None
    governance_step: str | None = Field(None, description="Its governance run, among the record's workflow_runs.")
    pull_number: int | None = None
    pull_url: str | None = None
    approved_by: dict[str, str] = Field(default_factory=dict, description="group -> the person whose approval counted.")
    note: str | None = Field(None, description="Why it stopped (refused), or the last thing it said.")
    told: list[str] = Field(default_factory=list, description="What the incident ticket was told (each event once).")
    opened_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in ("merged", "closed", "refused")


class RunRecord(BaseModel):
    id: str
    playbook: str
    source: Source = "webhook"
    requested_by: str | None = Field(None, description="Who triggered a manual run.")
    reason: str | None = Field(None, description="Why a system run exists (e.g. the reject reason for needs-triage).")
    dry_run: bool = False
    status: RunStatus = "queued"
    alert: Alert
    related: list[Alert] = Field(default_factory=list, description="Other firing alerts of the group.")
    related_key: str | None = Field(
        None, description="Where ``related`` is stored, once for all the runs of the group (filled in by RunStore.get)."
    )
    external_url: str = ""
    enqueued_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempts: int = 0
    steps: list[StepRecord] = Field(default_factory=list)
    error: str | None = None
    workflow_runs: list[FollowedRun] = Field(
        default_factory=list, description="Workflow runs its dispatch steps started, followed to their end."
    )
    retry_at: datetime | None = Field(None, description="Status retrying: when the next attempt runs.")
    approvals: list[Approval] = Field(default_factory=list, description="Answers to the run's approval step.")
    awaiting_until: datetime | None = Field(
        None, description="Status awaiting_approval: when the approval step's time runs out."
    )
    change_requests: list[ChangeRequest] = Field(
        default_factory=list, description="Pull requests proposed after its retraining runs succeeded."
    )
    untold: list[str] = Field(
        default_factory=list,
        description="Steps that finished on a retry after the incident ticket was opened, whose results "
        "the ticket has not been told yet.",
    )

    @property
    def alertname(self) -> str:
        return self.alert.alertname

    @property
    def model_id(self) -> str | None:
        return self.alert.model_id

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)

    def put_step(self, record: StepRecord) -> None:
        self.steps = [s for s in self.steps if s.name != record.name] + [record]

    def workflow_run(self, step: str) -> FollowedRun | None:
        return next((w for w in self.workflow_runs if w.step == step), None)

    def change_request(self, step: str) -> ChangeRequest | None:
        return next((c for c in self.change_requests if c.step == step), None)

    @property
    def findings(self) -> list[str]:
        """What the run's checks found wrong, as "step: finding" (empty when nothing was)."""
        return [f"{s.name}: {s.finding}" for s in self.steps if s.finding]

    def summary(self) -> dict[str, object]:
        """The fields `jobs list --json` shows."""
        return {
            "id": self.id,
            "playbook": self.playbook,
            "alertname": self.alertname,
            "model_id": self.model_id,
            "status": self.status,
            "source": self.source,
            "dry_run": self.dry_run,
            "enqueued_at": _iso(self.enqueued_at),
            "ended_at": _iso(self.ended_at),
            "findings": self.findings,
        }

    def document(self) -> dict[str, object]:
        """The full record `jobs show --json` prints."""
        return self.model_dump(mode="json")


def time_to_resolve(firing: RunRecord, resolve: RunRecord) -> timedelta | None:
    """From responder's first action on an incident (its firing run's start) to its resolve: the
    resolved alert's endsAt, or when the resolve run was queued if Alertmanager set none. None when
    the firing run never started."""
    if firing.started_at is None:
        return None
    alert = resolve.alert
    resolved_at = resolve.enqueued_at if alert.still_open else alert.endsAt
    return max(resolved_at - firing.started_at, timedelta(0))


@dataclass  # not frozen: one is built per alert of a storm, and frozen ones are slower to build
class QueuedRun:
    """A run as the intake stores it: its alert is the ``alert_index``-th of the payload of
    notification ``notification`` (the run's external URL is the notification's too)."""

    id: str
    playbook: str
    source: Source
    dry_run: bool
    notification: str
    alert_index: int
    enqueued_at: float  # Unix time
    related_key: str | None = None
    status: RunStatus = "queued"
    error: str | None = None

    def record(self, notification: Notification) -> RunRecord:
        return RunRecord(
            id=self.id,
            playbook=self.playbook,
            source=self.source,
            dry_run=self.dry_run,
            status=self.status,
            error=self.error,
            alert=notification.alerts[self.alert_index],
            related_key=self.related_key,
            external_url=notification.externalURL,
            enqueued_at=datetime.fromtimestamp(self.enqueued_at, UTC),
        )


_QUEUED = TypeAdapter(QueuedRun)
PARSED_KEPT = 4  # payloads a RunStore keeps parsed


def _stored(record: RunRecord | QueuedRun) -> bytes | str:
    """The record as kept in Redis: without its related alerts when they are shared."""
    if isinstance(record, QueuedRun):
        return pydantic_core.to_json(vars(record))  # cheaper than serializing the dataclass field by field
    return record.model_dump_json(exclude={"related"} if record.related_key is not None else None)


def _enqueued(record: RunRecord | QueuedRun) -> float:
    return record.enqueued_at if isinstance(record, QueuedRun) else record.enqueued_at.timestamp()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class RunStore:
    """Run records in Redis."""

    def __init__(self, redis: Redis, *, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds
        self._parsed: dict[str, Notification] = {}  # the latest payloads read, parsed (they never change)

    @staticmethod
    def key(run_id: str) -> str:
        return redis_keys.run_key(run_id)

    def add(self, record: RunRecord, pipeline: Pipeline) -> None:
        """Queue the writes of a new record on ``pipeline`` (so it lands with its job, or not at all)."""
        self.add_many([record], pipeline)

    def add_many(self, records: Sequence[RunRecord | QueuedRun], pipeline: Pipeline | WriteSet) -> None:
        """``add`` for several records, indexed in one command."""
        if not records:
            return
        for record in records:
            pipeline.set(self.key(record.id), _stored(record), ex=self._retention)
        pipeline.zadd(INDEX_KEY, {record.id: _enqueued(record) for record in records})

    def add_related(self, key: str, alerts: list[Alert], pipeline: Pipeline | WriteSet) -> None:
        """Store the related alerts that the runs of one group share (a group's first
        MAX_RELATED + 1 alerts: each run's related list is the others)."""
        pipeline.set(key, _ALERTS.dump_json(alerts), ex=self._retention)

    def save(self, record: RunRecord, pipeline: Pipeline | None = None) -> None:
        """Store the record (a checkpoint), or queue its writes on ``pipeline`` for the caller to send."""
        if pipeline is None:
            with self._redis.pipeline(transaction=False) as pipe:
                self.save(record, pipe)
                pipe.execute()
            return
        pipeline.set(self.key(record.id), _stored(record), ex=self._retention)
        if record.related_key is not None:
            pipeline.expire(record.related_key, self._retention)  # kept as long as the run that reads it

    def get(self, run_id: str) -> RunRecord:
        raw = cast(bytes | None, self._redis.get(self.key(run_id)))
        if raw is None:
            raise RunNotFound(f"no run with id {run_id!r} (it may have expired)")
        record = self._records([raw])[0]
        if record is None:
            raise RunNotFound(f"run {run_id!r}: the notification it was queued for has expired")
        if record.related_key is not None:
            shared = cast(bytes | None, self._redis.get(record.related_key))
            group = _ALERTS.validate_json(shared) if shared is not None else []
            mine = record.alert.instance_key()
            record.related = [a for a in group if a.instance_key() != mine][:MAX_RELATED]
        return record

    def firing_run(self, resolve: RunRecord) -> RunRecord | None:
        """The firing run of the instance ``resolve`` is the resolve of (same alertname, fingerprint and
        startsAt: its job id is derived from them); None for a firing run or when it is gone."""
        if resolve.alert.is_firing:
            return None
        try:
            return self.get(resolve.alert.firing_job_id())
        except RunNotFound:
            return None

    def recent(self, *, limit: int = 20, status: str | None = None) -> list[RunRecord]:
        """Newest first; records that expired are dropped from the index as they are met."""
        cutoff = utcnow().timestamp() - self._retention
        self._redis.zremrangebyscore(INDEX_KEY, "-inf", cutoff)
        found: list[RunRecord] = []
        offset, page = 0, max(limit, 50)
        while len(found) < limit:
            ids = cast(list[bytes], self._redis.zrevrange(INDEX_KEY, offset, offset + page - 1))
            if not ids:
                break
            offset += page
            raws = cast(list[bytes | None], self._redis.mget([self.key(i.decode()) for i in ids]))
            for record in self._records([raw for raw in raws if raw is not None]):
                if record is None:
                    continue
                if status is None or record.status == status:
                    found.append(record)
                    if len(found) == limit:
                        break
        return found

    def _records(self, raws: list[bytes]) -> list[RunRecord | None]:
        """The stored records as RunRecords; a queued run's alert is read from its notification's
        payload (each payload once). None: that payload is gone."""
        stored: list[RunRecord | QueuedRun] = []
        for raw in raws:
            try:
                stored.append(_QUEUED.validate_json(raw))
            except ValidationError:
                stored.append(RunRecord.model_validate_json(raw))
        notifications = self._notifications({r.notification for r in stored if isinstance(r, QueuedRun)})
        records: list[RunRecord | None] = []
        for record in stored:
            if isinstance(record, QueuedRun):
                notification = notifications.get(record.notification)
                records.append(record.record(notification) if notification is not None else None)
            else:
                records.append(record)
        return records

    def _notifications(self, ids: set[str]) -> dict[str, Notification]:
        """The notifications ``ids``, parsed from their payloads (those still kept). The last
        few stay parsed: a worker takes the runs of a notification one after another, and parsing a
        large payload again for each of them would cost more than the runs' own work."""
        found = {i: self._parsed[i] for i in ids if i in self._parsed}
        wanted = [i for i in ids if i not in found]
        payloads = cast(list[bytes | None], self._redis.mget([payload_key(i) for i in wanted])) if wanted else []
        for notification_id, payload in zip(wanted, payloads, strict=True):
            if payload is not None:
                found[notification_id] = self._parsed[notification_id] = Notification.model_validate_json(payload)
        while len(self._parsed) > PARSED_KEPT:
            del self._parsed[next(iter(self._parsed))]  # the oldest
        return found
