"""Compare-and-delete: releasing a Redis lock only by its holder (a lock that lapsed may have been
taken by another process since, and deleting it then would let two holders in), or forgetting a
value only if it is still the one remembered."""

from __future__ import annotations

from redis import Redis
from redis.client import Pipeline

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RELEASE_PREFIXED = """
local held = redis.call('get', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def release(redis: Redis, key: str, token: str) -> None:
    """Delete ``key`` if it still holds ``token`` (this holder's lock, this remembered value)."""
    redis.eval(_RELEASE, 1, key, token)


def release_prefixed(pipe: Pipeline, key: str, prefix: str) -> None:
    """Queue on ``pipe`` the deletion of ``key`` if its value starts with ``prefix`` (a holder named
    by the start of its token, e.g. a poll number, when the rest of the token is unknown)."""
    pipe.eval(_RELEASE_PREFIXED, 1, key, prefix)
