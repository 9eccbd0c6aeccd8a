"""The writes of one intake commit, applied by Redis as one atomic script call.

The intake reads (what was seen, how full the storm counters are), decides, then writes run
records, jobs, dedup markers and history. Sent as MULTI ... EXEC under WATCH, that costs a
command, a reply and Python bookkeeping per write, plus a round trip per storm counter.
Here the writes are gathered (with the pipeline methods the stores already call) and sent
as the arguments of one script, with the conditions the decision was taken on: keys that
must still be absent (what WATCH guarded) and storm counters that must still have room for
the slots taken. If a condition no longer holds, nothing is written and the intake reads
and decides again. A script runs atomically and, with ``appendfsync always``, is on disk
before its reply, as EXEC was.

The script's arguments travel as one MessagePack array, which Redis' Lua unpacks with its
built-in ``cmsgpack``: hiredis formats each argument of a command on its own, and a commit has
dozens per alert, where msgpack packs them in one pass (bench/ has the figures). Numbers stay
numbers: ``redis.call`` writes them with 17 significant digits, so a score
keeps its microseconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, TypeVar

import msgpack
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import Script

from responder.store.redisconn import KeptConnectionScript, ReplicatedScript

Arg = str | bytes | int | float
T = TypeVar("T")
CHUNK = 500  # members per variadic command: Lua's unpack() takes at most ~8000 values

# Load with ``redis.register_script(APPLY)``.
# KEYS: keys that must still be absent, then storm counters.
# ARGV[1]: a MessagePack array, ``args``. args[1]: number of counters; per counter: slots to
# take, limit, ttl; then the number of shared hash fields (a count of args) and those
# field/value pairs; then the writes, each as <n> <command> <arg>..., n = 1 + number of args.
# The command HSET_SHARED <key> <field> <value>... is an HSET of the shared pairs followed by
# its own.
APPLY = """
local args = cmsgpack.unpack(ARGV[1])
local counters = tonumber(args[1])
local absent = #KEYS - counters
local s = 2 + 3 * counters
local shared = {unpack(args, s + 1, s + tonumber(args[s]))}
for i = 1, absent do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local a = 2
for i = absent + 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') + tonumber(args[a]) > tonumber(args[a + 1]) then return 0 end
  a = a + 3
end
a = 2
for i = absent + 1, #KEYS do
  redis.call('INCRBY', KEYS[i], args[a])
  redis.call('EXPIRE', KEYS[i], args[a + 2])
  a = a + 3
end
a = s + #shared + 1
while a <= #args do
  local n = tonumber(args[a])
  if args[a + 1] == 'HSET_SHARED' then
    local command = {args[a + 2], unpack(shared)}
    for i = a + 3, a + n do command[#command + 1] = args[i] end
    redis.call('HSET', unpack(command))
  else
    redis.call(unpack(args, a + 1, a + n))
  end
  a = a + n + 1
end
return 1
"""


class WriteSet:
    """Redis writes gathered for one atomic application (the subset of pipeline methods the
    stores use), and the conditions under which they apply."""

    def __init__(self) -> None:
        self._writes: list[Arg] = []
        self._absent: list[str] = []
        self._counters: list[str] = []
        self._takes: list[Arg] = []
        self._shared: Mapping[str, Arg] | None = None

    # --- conditions

    def require_absent(self, key: str) -> None:
        """Apply only if ``key`` does not exist (it was read as absent)."""
        self._absent.append(key)

    def take(self, counter: str, count: int, *, limit: int, ttl: int) -> None:
        """Add ``count`` to ``counter`` (expiring in ``ttl`` s); apply only if it stays within ``limit``."""
        self._counters.append(counter)
        self._takes.extend((count, limit, ttl))

    # --- writes

    def _add(self, *command: Arg) -> None:
        self._writes.append(len(command))
        self._writes.extend(command)

    def set(self, key: str, value: Arg, *, ex: int | None = None) -> None:
        if ex is None:
            self._add("SET", key, value)
        else:
            self._add("SET", key, value, "EX", ex)

    def expire(self, key: str, seconds: int) -> None:
        self._add("EXPIRE", key, seconds)

    def hset(self, key: str, *, mapping: Mapping[str, Arg], shared: Mapping[str, Arg] | None = None) -> None:
        """HSET of ``shared`` and then ``mapping``. The ``shared`` fields of many hashes (every job of
        a commit has the same dozen or so) are sent once, when each call passes the same mapping object."""
        if shared is not None and self._shared is None:
            self._shared = shared
        if shared is not None and shared is self._shared:
            self._add("HSET_SHARED", key, *chain.from_iterable(mapping.items()))
        else:
            self._add("HSET", key, *chain.from_iterable({**(shared or {}), **mapping}.items()))

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        pairs = [(score, member) for member, score in mapping.items()]
        for chunk in _chunks(pairs):
            self._add("ZADD", key, *[part for pair in chunk for part in pair])

    def incrby(self, key: str, amount: int) -> None:
        self._add("INCRBY", key, amount)

    def rpush(self, key: str, *values: Arg) -> None:
        for chunk in _chunks(values):
            self._add("RPUSH", key, *chunk)

    def sadd(self, key: str, *values: Arg) -> None:
        for chunk in _chunks(values):
            self._add("SADD", key, *chunk)

    # --- applying

    def _call(self) -> tuple[list[str], list[bytes]]:
        shared = list(chain.from_iterable(self._shared.items())) if self._shared else []
        keys = [*self._absent, *self._counters]
        args = [len(self._counters), *self._takes, len(shared), *shared, *self._writes]
        return keys, [_pack(args)]

    def apply(self, script: Script) -> bool:
        """Write everything at once with ``script`` (APPLY, registered); False (nothing written)
        when a condition no longer holds."""
        keys, args = self._call()
        return bool(script(keys=keys, args=args))

    async def apply_async(self, script: Callable[..., Awaitable[Any]]) -> bool:
        """``apply`` through an asyncio client (``script``: APPLY registered on it, an ``AsyncScript``
        or a ``redisconn.KeptConnectionScript``)."""
        keys, args = self._call()
        return bool(await script(keys=keys, args=args))


def apply_script(redis: Redis) -> Script:
    """The commit script registered on ``redis`` (``WriteSet.apply`` calls it)."""
    return redis.register_script(APPLY)


def apply_script_async(redis: AsyncRedis, *, min_replicas: int = 0) -> KeptConnectionScript | ReplicatedScript:
    """The commit script on ``redis``'s kept connections (``WriteSet.apply_async`` calls it); with
    ``min_replicas``, one that waits for that many replicas to hold each commit."""
    if min_replicas > 0:
        return ReplicatedScript(redis, APPLY, replicas=min_replicas)
    return KeptConnectionScript(redis, APPLY)


def _pack(args: list[Arg]) -> bytes:
    """``args`` as the MessagePack array APPLY unpacks; bytes as raw strings (Redis' cmsgpack
    reads no bin type)."""
    return bytes(msgpack.packb(args, use_bin_type=False))


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
