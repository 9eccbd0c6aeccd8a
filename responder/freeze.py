"""The deploy-freeze ledger: since when, why and by whom the freeze variable was last changed.

The Actions variable itself is the truth CI reads; this ledger (a Redis hash) only adds the
who/when/why that a variable cannot hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from redis import Redis

from responder.store import redis_keys

KEY = redis_keys.FREEZE


@dataclass(frozen=True)
class FreezeEntry:
    frozen: bool
    since: str
    reason: str
    by: str
    run_id: str


class FreezeLedger:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def record(self, *, frozen: bool, reason: str, run_id: str, by: str, changed: bool) -> None:
        """Note a change of the variable. When it was already in that state (``changed`` false),
        an entry that agrees is kept, so a repeated freeze keeps the original since-when and reason."""
        current = self.current()
        if not changed and current is not None and current.frozen == frozen:
            return
        self._redis.hset(
            KEY,
            mapping={
                "frozen": "true" if frozen else "false",
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
                "reason": reason,
                "by": by,
                "run_id": run_id,
            },
        )

    def current(self) -> FreezeEntry | None:
        stored = cast(dict[bytes, bytes], self._redis.hgetall(KEY))
        raw = {k.decode(): v.decode() for k, v in stored.items()}
        if not raw:
            return None
        return FreezeEntry(
            frozen=raw.get("frozen") == "true",
            since=raw.get("since", ""),
            reason=raw.get("reason", ""),
            by=raw.get("by", ""),
            run_id=raw.get("run_id", ""),
        )
