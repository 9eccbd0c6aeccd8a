"""Decision history: every notification the receiver accepted and what it decided per alert.

Answers on-call's most common question, "why did (or didn't) this run?". Bounded: the last
``history_keep`` notifications, each kept at most ``history_retention_seconds``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import cast

from pydantic import BaseModel, Field
from redis import Redis
from redis.client import Pipeline

from responder.errors import ResponderError
from responder.runs import Source, utcnow
from responder.writeset import WriteSet

INDEX_KEY = "responder:notifications"


class NotificationNotFound(ResponderError):
    """No decision record with that id (it may have been trimmed or expired)."""


class AlertDecision(BaseModel):
    alertname: str
    fingerprint: str
    status: str
    model_id: str | None = None
    starts_at: datetime | None = None
    decision: str
    reason: str | None = None
    job_id: str | None = None


def _record_id() -> str:
    """The second received (UTC), then 48 random bits, so that thousands a second do not collide.
    Not secret (``random``, not ``secrets``: no system call per record)."""
    return f"n-{_second_stamp(int(time.time()))}-{random.getrandbits(48):012x}"


@lru_cache(maxsize=1)
def _second_stamp(second: int) -> str:
    """``YYYYmmddHHMMSS`` of ``second`` (UTC), formatted once for all the records of that second."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second))


class NotificationRecord(BaseModel):
    id: str = Field(default_factory=_record_id)
    received_at: datetime = Field(default_factory=utcnow)
    source: Source = "webhook"
    receiver: str = ""
    group_key: str = ""
    status: str = ""
    external_url: str = ""
    truncated_alerts: int = 0
    alerts: list[AlertDecision] = Field(default_factory=list)

    def summary(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for a in self.alerts:
            counts[a.decision] = counts.get(a.decision, 0) + 1
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "source": self.source,
            "group_key": self.group_key,
            "status": self.status,
            "alerts": len(self.alerts),
            "decisions": counts,
        }


class History:
    def __init__(self, redis: Redis, *, keep: int, retention_seconds: int) -> None:
        self._redis = redis
        self._keep = keep
        self._retention = retention_seconds

    @staticmethod
    def key(record_id: str) -> str:
        return f"responder:notification:{record_id}"

    def add_many(self, records: Sequence[NotificationRecord], pipe: Pipeline | WriteSet) -> None:
        """Queue the records' writes on ``pipe`` (the intake's commit), indexed and trimmed once."""
        if not records:
            return
        for record in records:
            pipe.set(self.key(record.id), record.model_dump_json(), ex=self._retention)
        pipe.zadd(INDEX_KEY, {record.id: record.received_at.timestamp() for record in records})
        pipe.zremrangebyrank(INDEX_KEY, 0, -(self._keep + 1))
        oldest = min(record.received_at.timestamp() for record in records)
        pipe.zremrangebyscore(INDEX_KEY, "-inf", oldest - self._retention)

    def get(self, record_id: str) -> NotificationRecord:
        raw = self._redis.get(self.key(record_id))
        if raw is None:
            raise NotificationNotFound(f"no notification with id {record_id!r} (kept: last {self._keep}, 7 days)")
        return NotificationRecord.model_validate_json(raw)

    def recent(self, *, limit: int = 20) -> list[NotificationRecord]:
        ids = cast(list[bytes], self._redis.zrevrange(INDEX_KEY, 0, limit - 1))
        raws = self._redis.mget([self.key(i.decode()) for i in ids]) if ids else []
        return [NotificationRecord.model_validate_json(raw) for raw in raws if raw is not None]
