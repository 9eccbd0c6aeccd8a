"""Redis outages as a worker process sees them: when it last failed to reach Redis (``Outages``),
the longest wait between two attempts to reach it again, and errors shortened to one log line.

The process loop (``responder.worker``) and the RQ worker (``responder.worker_rq``) both note an
outage here; the RQ worker judges no other worker dead for ``worker_ttl`` after one.
"""

from __future__ import annotations

import time

RECONNECT_MAX_SECONDS = 10.0  # longest wait between two attempts to reach Redis again


class Outages:
    """When this process last failed to reach Redis (monotonic clock)."""

    def __init__(self) -> None:
        self._last: float | None = None

    def seen(self) -> None:
        self._last = time.monotonic()

    def within(self, seconds: float) -> bool:
        return self._last is not None and time.monotonic() - self._last < seconds
