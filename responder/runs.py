"""The run record on-call reads: what a playbook run was asked to do and what each step did.

One JSON document per run at ``responder:run:<job_id>``, indexed by enqueue time in the
sorted set ``responder:runs``; both expire after the dedup retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, cast

from pydantic import BaseModel, Field
from redis import Redis
from redis.client import Pipeline

from responder.alerts import Alert
from responder.errors import RunNotFound
from responder.writeset import WriteSet

StepStatus = Literal["ok", "skipped", "planned", "failed"]
RunStatus = Literal["queued", "running", "retrying", "succeeded", "failed", "suppressed"]
RUN_STATUSES: tuple[str, ...] = ("queued", "running", "retrying", "succeeded", "failed", "suppressed")
Source = Literal["webhook", "manual", "replay"]

INDEX_KEY = "responder:runs"


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

    @property
    def done(self) -> bool:
        """A checkpoint: done steps are not run again by a retry of the same run."""
        return self.status in ("ok", "planned") or (self.status == "skipped" and not self.blocked)


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
    external_url: str = ""
    enqueued_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempts: int = 0
    steps: list[StepRecord] = Field(default_factory=list)
    error: str | None = None

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
        }

    def document(self) -> dict[str, object]:
        """The full record `jobs show --json` prints."""
        return self.model_dump(mode="json")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class RunStore:
    """Run records in Redis."""

    def __init__(self, redis: Redis, *, retention_seconds: int) -> None:
        self._redis = redis
        self._retention = retention_seconds

    @staticmethod
    def key(run_id: str) -> str:
        return f"responder:run:{run_id}"

    def add(self, record: RunRecord, pipeline: Pipeline) -> None:
        """Queue the writes of a new record on ``pipeline`` (so it lands with its job, or not at all)."""
        self.add_many([record], pipeline)

    def add_many(self, records: Sequence[RunRecord], pipeline: Pipeline | WriteSet) -> None:
        """``add`` for several records, indexed in one command."""
        if not records:
            return
        for record in records:
            pipeline.set(self.key(record.id), record.model_dump_json(), ex=self._retention)
        pipeline.zadd(INDEX_KEY, {record.id: record.enqueued_at.timestamp() for record in records})

    def save(self, record: RunRecord) -> None:
        self._redis.set(self.key(record.id), record.model_dump_json(), ex=self._retention)

    def get(self, run_id: str) -> RunRecord:
        raw = self._redis.get(self.key(run_id))
        if raw is None:
            raise RunNotFound(f"no run with id {run_id!r} (it may have expired)")
        return RunRecord.model_validate_json(raw)

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
            raws = self._redis.mget([self.key(i.decode()) for i in ids])
            for raw in raws:
                if raw is None:
                    continue
                record = RunRecord.model_validate_json(raw)
                if status is None or record.status == status:
                    found.append(record)
                    if len(found) == limit:
                        break
        return found
