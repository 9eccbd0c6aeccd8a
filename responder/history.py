"""Decision history: every notification the receiver accepted and what it decided per alert.

Answers on-call's most common question, "why did (or didn't) this run?". Bounded: the last
``history_keep`` notifications, each kept at most ``history_retention_seconds``.

Stored as received, not re-encoded: the body Alertmanager posted (``redis_keys.payload_key``,
which the notification's runs also read their alerts from) and, beside it, what responder
answered per alert (the webhook's 202 body). ``get`` and ``recent`` put the two together into a
``NotificationRecord``; ``payload`` gives the body back byte for byte, to read or to replay.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import pydantic_core
from pydantic import BaseModel, Field, ValidationError
from redis import Redis
from redis.client import Pipeline

from responder.alerts import Alert, Notification
from responder.errors import ResponderError
from responder.redis_keys import payload_key
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


def new_record_id() -> str:
    """The second received (UTC), then 48 random bits, so that thousands a second do not collide.
    Not secret (``random``, not ``secrets``: no system call per record)."""
    return f"n-{_second_stamp(int(time.time()))}-{random.getrandbits(48):012x}"


@lru_cache(maxsize=1)
def _second_stamp(second: int) -> str:
    """``YYYYmmddHHMMSS`` of ``second`` (UTC), formatted once for all the records of that second."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second))


class NotificationRecord(BaseModel):
    id: str = Field(default_factory=new_record_id)
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


@dataclass(frozen=True)
class Received:
    """A notification as the intake records it: the body as received and the answer per alert
    (``Decision.to_json``), in the order of the body's alerts."""

    id: str
    received_at: float  # Unix time
    source: Source
    payload: bytes
    answers: list[dict[str, str]]


class _Answered(BaseModel):
    """One alert's entry in a stored record: the webhook's answer for it."""

    alertname: str
    fingerprint: str
    status: str
    decision: str
    reason: str | None = None
    job_id: str | None = None


class _Stored(BaseModel):
    """A history record as kept in Redis, beside its payload."""

    id: str
    received_at: datetime
    source: Source
    answers: list[_Answered]

    def record(self, notification: Notification | None) -> NotificationRecord:
        """The whole record, read with its payload; with the payload expired, the answers alone."""
        alerts: Sequence[Alert | None] = [None] * len(self.answers)
        found: dict[str, Any] = {}
        if notification is not None:
            alerts = notification.alerts
            found = {
                "receiver": notification.receiver,
                "group_key": notification.groupKey,
                "status": notification.status,
                "external_url": notification.externalURL,
                "truncated_alerts": notification.truncatedAlerts,
            }
        return NotificationRecord(
            id=self.id,
            received_at=self.received_at,
            source=self.source,
            **found,
            alerts=[
                AlertDecision(
                    **answer.model_dump(),
                    model_id=alert.model_id if alert else None,
                    starts_at=alert.startsAt if alert else None,
                )
                for answer, alert in zip(self.answers, alerts, strict=True)
            ],
        )


class History:
    def __init__(self, redis: Redis, *, keep: int, retention_seconds: int) -> None:
        self._redis = redis
        self._keep = keep
        self._retention = retention_seconds

    @staticmethod
    def key(record_id: str) -> str:
        return f"responder:notification:{record_id}"

    def add_many(self, received: Sequence[Received], pipe: Pipeline | WriteSet, *, payload_ttl: int) -> None:
        """Queue the writes of ``received`` on ``pipe`` (the intake's commit), indexed and trimmed once.
        The payloads are kept ``payload_ttl`` seconds: as long as the history or the runs that read them."""
        if not received:
            return
        for entry in received:
            stored = pydantic_core.to_json(
                {"id": entry.id, "received_at": entry.received_at, "source": entry.source, "answers": entry.answers}
            )
            pipe.set(self.key(entry.id), stored, ex=self._retention)
            pipe.set(payload_key(entry.id), entry.payload, ex=payload_ttl)
        pipe.zadd(INDEX_KEY, {entry.id: entry.received_at for entry in received})
        pipe.zremrangebyrank(INDEX_KEY, 0, -(self._keep + 1))
        oldest = min(entry.received_at for entry in received)
        pipe.zremrangebyscore(INDEX_KEY, "-inf", oldest - self._retention)

    def get(self, record_id: str) -> NotificationRecord:
        raw, payload = cast(list[bytes | None], self._redis.mget([self.key(record_id), payload_key(record_id)]))
        if raw is None:
            raise NotificationNotFound(f"no notification with id {record_id!r} (kept: last {self._keep}, 7 days)")
        return _record(raw, payload)

    def payload(self, record_id: str) -> bytes:
        """The body of the notification exactly as it was received."""
        payload = cast(bytes | None, self._redis.get(payload_key(record_id)))
        if payload is None:
            raise NotificationNotFound(f"no payload kept for notification {record_id!r} (it may have expired)")
        return payload

    def recent(self, *, limit: int = 20) -> list[NotificationRecord]:
        ids = [i.decode() for i in cast(list[bytes], self._redis.zrevrange(INDEX_KEY, 0, limit - 1))]
        if not ids:
            return []
        raws = cast(list[bytes | None], self._redis.mget([self.key(i) for i in ids]))
        payloads = cast(list[bytes | None], self._redis.mget([payload_key(i) for i in ids]))
        return [_record(raw, payload) for raw, payload in zip(raws, payloads, strict=True) if raw is not None]


def _record(raw: bytes, payload: bytes | None) -> NotificationRecord:
    try:
        stored = _Stored.model_validate_json(raw)
    except ValidationError:
        return NotificationRecord.model_validate_json(raw)  # kept whole by an earlier version
    return stored.record(Notification.model_validate_json(payload) if payload is not None else None)
