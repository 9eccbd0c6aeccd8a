"""The receiver's asyncio Redis client (hiredis packing, retries) stores what it is given, and
the commit script it calls on kept connections answers each call with its own reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import ConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from responder.store.redisconn import KeptConnectionScript, async_redis_client
from tests.conftest import make_settings

VALUES = ["plain", "naïve ☃ 𝄞", b"\x00\xff raw", 42, -7, 1764170000.123456, 0.1]


@pytest.mark.parametrize("value", VALUES, ids=repr)
async def test_values_round_trip_as_the_synchronous_client_writes_them(
    redis: Redis, redis_url: str, value: object
) -> None:
    client = async_redis_client(make_settings(redis_url))
    try:
        await client.set("t:async", value)  # type: ignore[arg-type]
    finally:
        await client.aclose()
    redis.set("t:sync", value)  # type: ignore[arg-type]
    assert redis.get("t:sync") == redis.get("t:async")


async def test_a_command_split_in_its_name_is_sent_as_separate_words(redis: Redis, redis_url: str) -> None:
    """redis-py passes some commands with their subcommand in one string ("CONFIG GET")."""
    client = async_redis_client(make_settings(redis_url))
    try:
        answer = await client.config_get("maxmemory-policy")
    finally:
        await client.aclose()
    assert ["maxmemory-policy"] == [k.decode() if isinstance(k, bytes) else k for k in answer]


async def test_bytearray_and_memoryview_arguments_are_sent_as_their_bytes(redis: Redis, redis_url: str) -> None:
    """hiredis refuses them; the connection packs such a command the way redis-py does."""
    client = async_redis_client(make_settings(redis_url))
    try:
        await client.rpush("t:views", bytearray(b"ab"), memoryview(b"cd"))
    finally:
        await client.aclose()
    assert redis.lrange("t:views", 0, -1) == [b"ab", b"cd"]


# --- KeptConnectionScript: the intake's commit script, on connections kept between calls

ECHO = "return ARGV[1]"
SLOW_ECHO = "local n = 0 for i = 1, tonumber(ARGV[2]) do n = n + 1 end return ARGV[1]"


async def test_a_kept_connection_script_answers_each_call_with_its_own_reply(redis_url: str) -> None:
    client = async_redis_client(make_settings(redis_url))
    script = KeptConnectionScript(client, ECHO)
    try:
        replies = [await script(keys=[], args=[f"call-{n}"]) for n in range(5)]
    finally:
        await client.aclose()
    assert replies == [f"call-{n}".encode() for n in range(5)]


async def test_a_kept_connection_script_is_loaded_again_after_a_script_flush(redis: Redis, redis_url: str) -> None:
    client = async_redis_client(make_settings(redis_url))
    script = KeptConnectionScript(client, ECHO)
    try:
        await script(keys=[], args=["before"])
        redis.script_flush()
        reply = await script(keys=[], args=["after"])
    finally:
        await client.aclose()
    assert reply == b"after"


async def test_a_kept_connection_that_redis_closed_is_replaced(redis: Redis, redis_url: str) -> None:
    """As after a Redis restart: the call reconnects instead of failing."""
    client = async_redis_client(make_settings(redis_url))
    script = KeptConnectionScript(client, ECHO)
    try:
        await script(keys=[], args=["before"])
        killed = redis.client_kill_filter(_type="normal", skipme=True)
        reply = await script(keys=[], args=["after"])
    finally:
        await client.aclose()
    assert (killed >= 1, reply) == (True, b"after")


async def test_a_call_cut_off_before_its_reply_does_not_leave_that_reply_for_the_next(redis_url: str) -> None:
    """A commit cancelled by its time bound leaves a reply to come on its connection; the next
    call reads its own reply, not that one."""
    client = async_redis_client(make_settings(redis_url))
    script = KeptConnectionScript(client, SLOW_ECHO)
    try:
        await script(keys=[], args=["warm", 1])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(script(keys=[], args=["late", 20_000_000]), 0.05)
        reply = await script(keys=[], args=["next", 1])
    finally:
        await client.aclose()
    assert reply == b"next"


class _PoolEmptyAfterOneCheckout(ConnectionPool):
    """A pool whose second checkout fails as when Redis has just gone away. With real parts, the
    pool hands back the connection a call has just used without connecting again, so Redis
    cannot be made to fail this step on cue."""

    checkouts = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.checkouts += 1
        if self.checkouts > 1:
            raise RedisConnectionError("Redis went away")
        return await super().get_connection(*args, **kwargs)


async def test_a_call_that_went_through_is_answered_though_no_connection_can_be_kept_after_it(
    redis: Redis, redis_url: str
) -> None:
    """The script ran and replied; only keeping a connection for the next call failed. The caller
    gets the reply: a commit that is in Redis is not reported as failed (the webhook would answer
    503 and Alertmanager's retry would read as a duplicate)."""
    setter = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"
    redis.script_load(setter)  # so that the call takes one checkout (no NOSCRIPT and SCRIPT LOAD)
    client = AsyncRedis(connection_pool=_PoolEmptyAfterOneCheckout.from_url(redis_url))
    script = KeptConnectionScript(client, setter)
    try:
        reply = await script(keys=["t:kept"], args=["applied"])
    finally:
        await client.aclose()
    assert (b"applied", b"applied") == (reply, redis.get("t:kept"))
