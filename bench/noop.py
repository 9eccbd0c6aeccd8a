"""The reference job of the worker-throughput ratio (part 4): a job that does nothing, worked by
two plain RQ ``SimpleWorker`` processes (`rq worker --worker-class rq.worker.SimpleWorker`) on
the bench's Redis in the same run as the drift runs. What RQ itself costs per job (dequeue, the
job's status and registries, its result), with no playbook, no run record and no GitHub call."""

from __future__ import annotations

FUNCTION = "bench.noop.noop"


def noop() -> None:
    """Does nothing."""
