"""Group commit: webhook deliveries that arrive together share one Redis commit.

Up to two commits are in flight at once (one is decided and written while the other waits
for Redis); the notifications that arrive meanwhile wait, and the next free committer takes
them all (up to ``max_alerts`` alerts; a larger notification goes alone). Commits talk to
Redis through an asyncio client, so the event loop reads and validates the next requests
while they wait. Two concurrent commits touching the same alerts are safe: the later one's
conditions fail and it decides again (see ``writeset``). Every request is still answered only
after the commit holding its runs is in Redis, so "no 202 before the job is stored" holds as
before; what is shared is the cost: one read, one atomic write and one fsync per batch instead
of per notification. A commit not done within ``COMMIT_TIMEOUT_SECONDS`` fails as Redis
unavailable (503).

The batch is accepted as ``Intake.accept_many`` does: in arrival order, each notification
with its own decisions. If it fails for another reason than Redis being unreachable, each
notification is tried again on its own, so one bad notification fails alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import TimeoutError as RedisTimeout

from responder.alerts import Notification
from responder.decisions import Decision
from responder.intake import Intake
from responder.store.redisconn import REDIS_DOWN, NotReplicated

MAX_ALERTS = 1000  # alerts per commit; bounds the time a batch holds the ones behind it
IN_FLIGHT = 2  # commits at once: one is decided and written while the other waits for Redis
# A commit not done by then (Redis hung, or unreachable through every retry) fails as Redis
# unavailable: a 503, well inside Alertmanager's 10 s, which retries.
COMMIT_TIMEOUT_SECONDS = 5.0


class _Waiting(NamedTuple):
    """A delivery waiting for a commit: what it posted and where its decisions go."""

    notification: Notification
    payload: bytes | None
    decided: asyncio.Future[list[Decision]]


class GroupCommit:
    def __init__(
        self,
        intake: Intake,
        redis: AsyncRedis,
        *,
        max_alerts: int = MAX_ALERTS,
        in_flight: int = IN_FLIGHT,
        timeout: float = COMMIT_TIMEOUT_SECONDS,
    ) -> None:
        self._intake = intake
        self._redis = redis
        self._max_alerts = max_alerts
        self._in_flight = in_flight
        self._timeout = timeout
        self._waiting: deque[_Waiting] = deque()
        self._committers: set[asyncio.Task[None]] = set()

    async def accept(self, notification: Notification, payload: bytes | None = None) -> list[Decision]:
        """The notification's decisions, once the commit holding them is in Redis. ``payload``:
        the body it was parsed from (``Intake.accept``)."""
        future: asyncio.Future[list[Decision]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(notification, payload, future))
        if len(self._committers) < self._in_flight:
            committer = asyncio.create_task(self._commit_waiting())
            self._committers.add(committer)
            committer.add_done_callback(self._committers.discard)
        return await future

    async def _commit_waiting(self) -> None:
        while self._waiting:
            await self._commit(self._next_batch())

    def _next_batch(self) -> list[_Waiting]:
        batch = [self._waiting.popleft()]
        alerts = len(batch[0].notification.alerts)
        while self._waiting and alerts + len(self._waiting[0].notification.alerts) <= self._max_alerts:
            alerts += len(self._waiting[0].notification.alerts)
            batch.append(self._waiting.popleft())
        return batch

    async def _commit(self, batch: list[_Waiting]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._intake.accept_many_async(
                    self._redis, [w.notification for w in batch], payloads=[w.payload for w in batch]
                )
        except (*REDIS_DOWN, NotReplicated) as exc:
            for waiting in batch:
                _fail(waiting.decided, exc)
        except TimeoutError:
            late = RedisTimeout(f"Redis did not complete the commit within {self._timeout:g} s")
            for waiting in batch:
                _fail(waiting.decided, late)
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0].decided, exc)
            else:
                for waiting in batch:
                    await self._commit([waiting])
        else:
            for waiting, decisions in zip(batch, results, strict=True):
                if not waiting.decided.done():  # done: the client went away; its runs are queued all the same
                    waiting.decided.set_result(decisions)


def _fail(future: asyncio.Future[list[Decision]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
