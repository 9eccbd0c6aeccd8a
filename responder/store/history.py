"""Decision history: every notification the receiver accepted and what it decided per alert.

Answers on-call's most common question, "why did (or didn't) this run?". Bounded: the last
``history_keep`` notifications, together at most ``history_max_bytes`` (record and body), each
kept at most ``history_retention_seconds``. What leaves the history is deleted (``History.trim``),
except the body of a notification that queued runs: a queued run reads its alert from it, so it
stays until it expires, as long as the runs are kept.

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
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline

from responder.alerts import Alert, Notification
from responder.errors import NotificationNotFound
from responder.runs import Source, utcnow
from responder.store import redis_keys
from responder.store.redis_keys import payload_key
from responder.store.writeset import Arg, WriteSet

INDEX_KEY = redis_keys.NOTIFICATIONS_INDEX
SIZES_KEY = redis_keys.NOTIFICATION_SIZES
BYTES_KEY = redis_keys.NOTIFICATION_BYTES
RUNS_READING_BODY = ("queued", "suppressed")  # decisions whose run reads its alert from the body (runs.QueuedRun)
TRIM_KEYS = [INDEX_KEY, SIZES_KEY, BYTES_KEY]
TRIM_SHARE = 10  # trim once a tenth of the bounds was added since the last trim (by this process)

# KEYS: the index, the sizes, the byte total. ARGV: keep, max bytes, oldest score kept, record
# key prefix, body key prefix. Drops the oldest notifications until all three bounds hold.
_TRIM = """
local keep, budget, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local removed = 0
while true do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  local total = tonumber(redis.call('GET', KEYS[3]) or '0')
  if redis.call('ZCARD', KEYS[1]) <= keep and total <= budget and tonumber(oldest[2]) >= horizon then break end
  local id = oldest[1]
  local size = redis.call('HGET', KEYS[2], id) or '0 1'
  local bytes, runs = string.match(size, '(%d+) (%d+)')
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('DECRBY', KEYS[3], bytes)
  redis.call('DEL', ARGV[4] .. id)
  if tonumber(runs) == 0 then redis.call('DEL', ARGV[5] .. id) end
  removed = removed + 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2], KEYS[3]) end
return removed
"""


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
    def __init__(self, redis: Redis, *, keep: int, retention_seconds: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._redis = redis
        self._keep = keep
        self._retention = retention_seconds
        self._max_bytes = max_bytes
        self._trim = redis.register_script(_TRIM)
        self._added = (0, 0)  # notifications and bytes added by this process since its last trim

    @staticmethod
    def key(record_id: str) -> str:
        return redis_keys.notification_key(record_id)

    def add_many(self, received: Sequence[Received], pipe: Pipeline | WriteSet, *, payload_ttl: int) -> None:
        """Queue the writes of ``received`` on ``pipe`` (the intake's commit), indexed once; ``trim``
        bounds the history after the commit. The payloads are kept ``payload_ttl`` seconds: as long
        as the history or the runs that read them."""
        if not received:
            return
        sizes: dict[str, str] = {}
        for entry in received:
            stored = pydantic_core.to_json(
                {"id": entry.id, "received_at": entry.received_at, "source": entry.source, "answers": entry.answers}
            )
            pipe.set(self.key(entry.id), stored, ex=self._retention)
            pipe.set(payload_key(entry.id), entry.payload, ex=payload_ttl)
            runs = sum(1 for answer in entry.answers if answer["decision"] in RUNS_READING_BODY)
            sizes[entry.id] = f"{len(stored) + len(entry.payload)} {runs}"
        pipe.zadd(INDEX_KEY, {entry.id: entry.received_at for entry in received})
        pipe.hset(SIZES_KEY, mapping={key: size for key, size in sizes.items()})  # typed in each pipe's terms
        pipe.incrby(BYTES_KEY, sum(int(size.partition(" ")[0]) for size in sizes.values()))

    def committed(self, payloads: Sequence[bytes]) -> None:
        """Notifications with these bodies were committed: trim the history when it is due."""
        if self.trim_due(payloads):
            self.trim()

    def trim_due(self, payloads: Sequence[bytes]) -> bool:
        """Count notifications committed with these bodies; True when a tenth of a bound was added
        since the last trim here (a trim costs a round trip; meanwhile the history may exceed its
        bounds by that much per receiver process)."""
        count, size = self._added
        self._added = count, size = (count + len(payloads), size + sum(len(payload) for payload in payloads))
        return count * TRIM_SHARE >= self._keep or size * TRIM_SHARE >= self._max_bytes

    def trim(self) -> int:
        """Delete the oldest notifications until the history holds at most ``keep`` of them, at most
        ``max_bytes`` in all and none older than the retention; returns how many were deleted."""
        self._added = (0, 0)
        return int(self._trim(keys=TRIM_KEYS, args=self._trim_args()))

    async def trim_async(self, redis: AsyncRedis) -> int:
        """``trim`` through an asyncio Redis client (the receiver's event loop does not wait on Redis)."""
        self._added = (0, 0)
        return int(await redis.eval(_TRIM, len(TRIM_KEYS), *TRIM_KEYS, *self._trim_args()))

    def _trim_args(self) -> list[Arg]:
        return [self._keep, self._max_bytes, time.time() - self._retention, self.key(""), payload_key("")]

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
