"""GitHub write pacing shared by every worker, through Redis.

GitHub's guidance against secondary rate limits is to make writes serially and at most
about one per second. Each write takes the next free slot from one Redis key, atomically
(a Lua script using Redis's clock), and sleeps until its slot: workers on any host queue up
behind each other instead of bursting.
"""

from __future__ import annotations

import time

from redis import Redis

KEY = "responder:pacing:github-writes"

# Returns how many microseconds the caller must wait for its slot, and books the next one.
_TAKE_SLOT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(t, free)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil(interval / 1000) + 1000)
return slot - t
"""


class WritePacer:
    """Call ``wait()`` before each write; ``per_second`` of 0 turns pacing off."""

    def __init__(self, redis: Redis, per_second: float, *, key: str = KEY) -> None:
        self._interval_us = int(1_000_000 / per_second) if per_second > 0 else 0
        self._script = redis.register_script(_TAKE_SLOT) if self._interval_us else None
        self._key = key

    def wait(self) -> float:
        """Block until this write's slot; returns the seconds waited."""
        if self._script is None:
            return 0.0
        delay = int(self._script(keys=[self._key], args=[self._interval_us])) / 1_000_000
        if delay > 0:
            time.sleep(delay)
        return delay
