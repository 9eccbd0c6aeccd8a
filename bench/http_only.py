"""`responder serve` with the intake's commit replaced by canned decisions: every alert is
answered "queued" and nothing is written to Redis. Run beside the bare handler and the real
receiver in the intake rounds, it shows what the HTTP path alone costs (aiohttp, auth, parsing
and validation, the answer, metrics), and so how much of the bare handler's throughput is left
for the intake's own work. A measuring tool only: it replaces ``GroupCommit.accept`` in its
own process."""

from __future__ import annotations

import sys

from responder.alerts import Notification
from responder.cli import main as responder_main
from responder.decisions import Decision
from responder.groupcommit import GroupCommit


async def _canned(self: GroupCommit, notification: Notification, payload: bytes | None = None) -> list[Decision]:
    return [Decision(alert, "queued", job_id=alert.job_id()) for alert in notification.alerts]


def main() -> int:
    GroupCommit.accept = _canned  # type: ignore[method-assign]
    return responder_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
