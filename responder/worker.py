"""`responder worker`: an RQ worker on the configured queue, with the project's runtime.

The runtime (clients built once from the settings) is installed before work starts; each
job forks from this process and inherits it.
"""

from __future__ import annotations

from rq import Queue, Worker

from responder.jobs import install_runtime
from responder.runtime import Runtime
from responder.settings import Settings


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    runtime = Runtime.build(settings)
    runtime.redis.ping()
    install_runtime(runtime)
    queue = Queue(settings.queue, connection=runtime.redis)
    Worker([queue], connection=runtime.redis).work(burst=burst, with_scheduler=True)
