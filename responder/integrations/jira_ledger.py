"""Responder's own Jira writes, kept in Redis so that every worker reads them back at once.

Cloud's enhanced search is eventually consistent: an issue created or closed a moment ago
can be missing from it, or shown in its old status, for seconds (Atlassian: sometimes
minutes). So responder reads its own writes back from a ``TicketLedger`` in Redis:
``find_open`` first reads the ticket it remembers for the key with ``GET
/rest/api/2/issue/{key}`` (strongly consistent) and trusts it while it is open and still
carries the key's labels; every Cloud search lists the issues responder created or closed
recently in ``reconcileIssues``, Jira Cloud's read-after-write for that endpoint; and after
a create whose answer was lost, ``find_open`` keeps searching until the search has had
time to show it. The Data Center search is consistent and takes no ``reconcileIssues``.
"""

from __future__ import annotations

import time
from typing import cast

from redis import Redis
from redis.client import Pipeline

from responder.integrations.base import TicketKey
from responder.store import locks, redis_keys

RECONCILE_MAX = 50  # Jira Cloud reconciles at most 50 issues per search
RECONCILE_WINDOW_SECONDS = 600  # most writes show in the search within seconds, a few take minutes


class TicketLedger:
    """Responder's own Jira writes, kept in Redis so that every worker reads them back at once.

    Per project it holds: the ticket opened (or last found) for each (alertname, model_id),
    for ``retention_seconds``; the ids of the last ``RECONCILE_MAX`` issues responder created
    or closed within ``RECONCILE_WINDOW_SECONDS``; and, while a create's outcome is unknown
    (its answer was lost), a marker that expires after ``search_lag_seconds``.
    """

    def __init__(self, redis: Redis, *, project: str, retention_seconds: int, search_lag_seconds: float) -> None:
        self._redis = redis
        self._project = project
        self._retention = retention_seconds
        self._lag_ms = max(1, int(search_lag_seconds * 1000))

    def _ticket_key(self, key: TicketKey) -> str:
        return redis_keys.jira_ticket_key(self._project, f"{key.alertname}:{key.ident}")

    def _creating_key(self, key: TicketKey) -> str:
        return redis_keys.jira_creating_key(self._project, f"{key.alertname}:{key.ident}")

    @property
    def _written_key(self) -> str:
        return redis_keys.jira_written_key(self._project)

    def remembered(self, key: TicketKey) -> str | None:
        """The issue key of the ticket remembered for ``key``."""
        value = cast(bytes | None, self._redis.get(self._ticket_key(key)))
        return value.decode() if value is not None else None

    def remember(self, key: TicketKey, issue_key: str) -> None:
        self._redis.set(self._ticket_key(key), issue_key, ex=self._retention)

    def forget(self, key: TicketKey, issue_key: str) -> None:
        """Forget ``issue_key`` as ``key``'s ticket, unless another has been remembered meanwhile."""
        locks.release(self._redis, self._ticket_key(key), issue_key)

    def creating(self, key: TicketKey) -> None:
        """Note, before the request, that a ticket for ``key`` is being created."""
        self._redis.set(self._creating_key(key), "1", px=self._lag_ms)

    def create_settled(self, key: TicketKey) -> None:
        """The create for ``key`` is known to have happened (and is remembered) or not."""
        self._redis.delete(self._creating_key(key))

    def create_unsettled(self, key: TicketKey) -> bool:
        """True while a create for ``key`` whose answer was lost may still be missing from the search."""
        return bool(self._redis.exists(self._creating_key(key)))

    def opened(self, key: TicketKey, issue_key: str, issue_id: int | None) -> None:
        """Remember the ticket just created for ``key`` and note it as written."""
        with self._redis.pipeline() as pipe:
            pipe.set(self._ticket_key(key), issue_key, ex=self._retention)
            pipe.delete(self._creating_key(key))
            if issue_id is not None:
                self._note_write(pipe, issue_id)
            pipe.execute()

    def wrote(self, issue_id: int) -> None:
        """Note that responder just created or changed the issue ``issue_id``."""
        with self._redis.pipeline() as pipe:
            self._note_write(pipe, issue_id)
            pipe.execute()

    def _note_write(self, pipe: Pipeline, issue_id: int) -> None:
        pipe.zadd(self._written_key, {str(issue_id): time.time()})
        pipe.zremrangebyrank(self._written_key, 0, -RECONCILE_MAX - 1)
        pipe.expire(self._written_key, RECONCILE_WINDOW_SECONDS)

    def recent(self) -> list[int]:
        """Ids of the issues responder wrote within the window, newest first."""
        since = time.time() - RECONCILE_WINDOW_SECONDS
        members = cast(list[bytes], self._redis.zrevrangebyscore(self._written_key, "+inf", since))
        return [int(member) for member in members[:RECONCILE_MAX]]
