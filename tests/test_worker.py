"""The worker runs jobs in its own process: what that buys, seen from outside."""

from __future__ import annotations

from redis import Redis

from responder.jobs import install_runtime
from responder.runtime import Runtime
from responder.settings import Settings
from responder.worker import Outages, ResponderWorker
from tests.fakes.github import FakeGitHub
from tests.support.runs import MANIFEST_DIGEST, enqueue_example, finished, integrity


def test_a_workers_runs_share_its_connection_to_github(
    redis: Redis, settings: Settings, fake_github: FakeGitHub
) -> None:
    """Runs execute in the worker's process with the runtime built once, so consecutive runs send
    their GitHub requests over the connection the first one opened (keep-alive) instead of one
    connection per request, as runs in forked work horses did."""
    runtime = Runtime.build(settings)
    install_runtime(runtime)
    try:
        jobs = [enqueue_example(redis, settings, name) for name in (integrity(MANIFEST_DIGEST), "bias-firing.json")]
        ResponderWorker([settings.queue], runtime=runtime, outages=Outages()).work(burst=True)
    finally:
        install_runtime(None)

    assert ["succeeded", "succeeded"] == [getattr(finished(redis, job), "status", None) for job in jobs]
    assert len(fake_github.requests) >= 6
    assert 1 == fake_github.connections
