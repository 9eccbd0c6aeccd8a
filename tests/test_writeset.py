"""The intake's writes are applied all at once, or not at all when a key it took as absent appeared."""

from __future__ import annotations

from redis import Redis

from responder.store.writeset import APPLY, CHUNK, WriteSet


def test_applies_every_write_when_the_absent_keys_are_absent(redis: Redis) -> None:
    writes = WriteSet()
    writes.set("t:seen", "1", ex=60)
    writes.hset("t:job", mapping={"status": "queued", "timeout": 300})
    writes.rpush("t:queue", "a", "b")
    writes.zadd("t:index", {"a": 1.5, "b": 2.5})
    writes.require_absent("t:seen")
    assert writes.apply(redis.register_script(APPLY))
    assert (b"1", {b"status": b"queued", b"timeout": b"300"}) == (redis.get("t:seen"), redis.hgetall("t:job"))
    assert ([b"a", b"b"], [(b"a", 1.5), (b"b", 2.5)]) == (
        redis.lrange("t:queue", 0, -1),
        redis.zrange("t:index", 0, -1, withscores=True),
    )
    assert 0 < redis.ttl("t:seen") <= 60


def test_shared_hash_fields_are_written_into_every_hash_that_shares_them(redis: Redis) -> None:
    shared = {"status": "queued", "timeout": 300}
    writes = WriteSet()
    writes.hset("t:job:a", mapping={"data": "a"}, shared=shared)
    writes.hset("t:job:b", mapping={"data": "b", "status": "started"}, shared=shared)  # its own field wins
    writes.hset("t:job:c", mapping={"data": "c"}, shared={"status": "deferred"})  # another mapping: sent inline
    assert writes.apply(redis.register_script(APPLY))
    assert [
        {b"status": b"queued", b"timeout": b"300", b"data": b"a"},
        {b"status": b"started", b"timeout": b"300", b"data": b"b"},
        {b"status": b"deferred", b"data": b"c"},
    ] == [redis.hgetall(f"t:job:{name}") for name in "abc"]


def test_writes_nothing_when_an_absent_key_exists(redis: Redis) -> None:
    redis.set("t:seen", "other delivery")
    writes = WriteSet()
    writes.set("t:seen", "1", ex=60)
    writes.rpush("t:queue", "a")
    writes.require_absent("t:seen")
    assert not writes.apply(redis.register_script(APPLY))
    assert (b"other delivery", 0) == (redis.get("t:seen"), redis.llen("t:queue"))


def test_takes_counter_slots_within_the_limit(redis: Redis) -> None:
    redis.set("t:counter", 7)
    writes = WriteSet()
    writes.take("t:counter", 3, limit=10, ttl=60)
    writes.set("t:run", "1")
    assert writes.apply(redis.register_script(APPLY))
    assert (b"10", b"1") == (redis.get("t:counter"), redis.get("t:run"))
    assert 0 < redis.ttl("t:counter") <= 60


def test_writes_nothing_when_a_counter_has_no_room_left(redis: Redis) -> None:
    """Another delivery took slots since the read: no write, no slot taken; the intake decides again."""
    redis.set("t:counter", 8)
    writes = WriteSet()
    writes.take("t:other", 1, limit=10, ttl=60)
    writes.take("t:counter", 3, limit=10, ttl=60)
    writes.set("t:run", "1")
    assert not writes.apply(redis.register_script(APPLY))
    assert (b"8", None, None) == (redis.get("t:counter"), redis.get("t:other"), redis.get("t:run"))


def test_long_lists_are_written_whole_and_in_order(redis: Redis) -> None:
    """More members than one Lua unpack() takes are split into several commands."""
    members = [f"run-{n}" for n in range(3 * CHUNK + 7)]
    writes = WriteSet()
    writes.rpush("t:queue", *members)
    writes.zadd("t:index", {m: n for n, m in enumerate(members)})
    writes.sadd("t:set", *members)
    assert writes.apply(redis.register_script(APPLY))
    assert [m.encode() for m in members] == redis.lrange("t:queue", 0, -1)
    assert [m.encode() for m in members] == redis.zrange("t:index", 0, -1)
    assert len(members) == redis.scard("t:set")


def test_works_again_after_redis_lost_its_scripts(redis: Redis) -> None:
    """A restarted Redis has an empty script cache; the script is loaded again."""
    script = redis.register_script(APPLY)
    writes = WriteSet()
    writes.set("t:one", "1")
    assert writes.apply(script)
    redis.script_flush()
    writes = WriteSet()
    writes.set("t:two", "2")
    assert writes.apply(script)
    assert b"2" == redis.get("t:two")
