"""The Redis client every process builds from the settings (kept apart from the runtime so the
receiver does not import the GitHub, Jira and toggle clients it never uses)."""

from __future__ import annotations

import contextlib
from typing import Any

import hiredis
import redis.exceptions
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT

from responder.settings import Settings

# Redis could not be reached (down, restarting, unreachable): retry later, or answer 503.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_client(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30)


def async_redis_client(settings: Settings) -> AsyncRedis:
    """The same, for the receiver's event loop (the webhook's commits).

    Unlike the synchronous client, redis.asyncio does not by default retry a command whose
    pooled connection Redis closed (after a Redis restart): it is told to. Retrying the intake's
    commit is safe: a commit that did apply before the connection dropped fails its own
    conditions the second time, and the intake decides again (its alerts then read as duplicates).

    No timeout per command: with one, redis.asyncio runs every send under ``asyncio.wait_for``,
    a task of its own and a turn of the event loop per command. The caller bounds each commit
    as a whole instead, round trips and retries together (``groupcommit.COMMIT_TIMEOUT_SECONDS``).
    """
    return AsyncRedis.from_url(
        settings.redis_url,
        socket_timeout=None,
        socket_connect_timeout=3,
        health_check_interval=30,
        retry=AsyncRetry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), retries=3),
        retry_on_error=list(REDIS_DOWN),
        connection_class=_HiredisPackingConnection,
    )


class _HiredisPackingConnection(AsyncConnection):
    """redis.asyncio packs commands in Python, argument by argument, and an intake commit has
    thousands. This connection packs them with hiredis, in C (hiredis is a
    dependency), as the synchronous client does, but without its pass over every argument
    looking for bytearray and memoryview: only a command hiredis refuses takes that path."""

    _packer = HiredisRespSerializer()  # type: ignore[no-untyped-call, unused-ignore]  # typed before redis-py 8.2

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # bytearray: TypeError
            except TypeError:
                pass
        packed: list[bytes] = self._packer.pack(*args)  # type: ignore[arg-type]
        return packed


class KeptConnectionScript:
    """A registered script, called on connections it keeps out of the pool between calls.

    ``AsyncScript`` goes through ``execute_command``: a pool checkout and check-in, a retry
    wrapper and redis-py's observability hooks around every call, a good part of the call's CPU
    (the intake makes one per commit, a thousand or more a second in a storm; bench/ has the figures).
    A call that finds a kept connection only sends the packed EVALSHA and reads the reply.
    Anything else goes through ``AsyncScript``, with the client's retries and its SCRIPT LOAD:
    no connection kept yet (the first calls, or more at once than ``keep``), a dropped one (a
    Redis restart), a script Redis no longer knows. A connection that failed or was cut off
    mid-call (a cancelled commit) is disconnected, never kept. Re-sending a call whose reply
    was lost is the caller's to make safe, as with the client's own retries (the intake's
    commit is: its conditions fail the second time).
    """

    def __init__(self, redis: AsyncRedis, script: str, *, keep: int = 2) -> None:
        self.registered_client = redis
        self._script = redis.register_script(script)
        self._keep = keep
        self._kept: list[AsyncConnection] = []

    async def __call__(self, keys: list[str], args: list[EncodableT]) -> Any:
        if self._kept:
            conn = self._kept.pop()
            try:
                await conn.send_packed_command(
                    conn.pack_command("EVALSHA", self._script.sha, len(keys), *keys, *args), check_health=False
                )
                reply = await conn.read_response()
            except redis.exceptions.NoScriptError:
                self._kept.append(conn)  # the connection is sound; AsyncScript loads the script
            except REDIS_DOWN:
                await self._discard(conn)  # AsyncScript reconnects, with retries
            except BaseException:
                await self._discard(conn)
                raise
            else:
                self._kept.append(conn)
                return reply
        reply = await self._script(keys=keys, args=args)
        if len(self._kept) < self._keep:
            with contextlib.suppress(*REDIS_DOWN):  # the call went through: its reply is not lost over this
                self._kept.append(await self.registered_client.connection_pool.get_connection())  # type: ignore[no-untyped-call]
        return reply

    async def _discard(self, conn: AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)
        await self.registered_client.connection_pool.release(conn)
