"""The RQ job function, and the per-process runtime it uses.

RQ imports jobs by dotted name, so the runtime (clients built once from the settings) is
installed by ``responder worker`` before work starts, or built on first use from the
environment by a plain ``rq worker``.
"""

from __future__ import annotations

from rq import get_current_job

from responder.playbooks.runner import run_playbook
from responder.runtime import Runtime
from responder.settings import load_settings

_runtime: Runtime | None = None


def install_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.build(load_settings())
    return _runtime


def run_playbook_job(run_id: str) -> str:
    """Run one playbook run; returns its final status. Transient failures raise (RQ retries)."""
    job = get_current_job()
    final_attempt = job is None or not job.retries_left
    return run_playbook(current_runtime(), run_id, final_attempt=final_attempt).status
