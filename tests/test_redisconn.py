"""The receiver's asyncio Redis client (hiredis packing, retries) stores what it is given."""

from __future__ import annotations

import pytest
from redis import Redis

from responder.redisconn import async_redis_client
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
