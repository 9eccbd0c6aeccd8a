"""The Redis client every process builds from the settings (kept apart from the runtime so the
receiver does not import the GitHub, Jira and toggle clients it never uses)."""

from __future__ import annotations

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
    """redis.asyncio packs commands in Python, argument by argument (about 1 µs each: an intake
    commit has thousands). This connection packs them with hiredis, in C (hiredis is a
    dependency), as the synchronous client does, but without its pass over every argument
    looking for bytearray and memoryview: only a command hiredis refuses takes that path."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # bytearray: TypeError
            except TypeError:
                pass
        packed: list[bytes] = self._packer.pack(*args)  # type: ignore[arg-type]
        return packed
