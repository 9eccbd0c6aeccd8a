"""GitHub writes are paced across workers through one Redis key."""

from __future__ import annotations

import itertools
import threading
import time

from responder.store.pacing import KEY, WritePacer
from tests.conftest import Worker, make_settings
from tests.support.runs import MANIFEST_DIGEST, integrity, run_notification


def test_writes_from_two_workers_are_spaced_by_the_interval(redis):
    """Two pacers (two workers) sharing Redis let writes through at most 10 per second, in turn."""
    pacers = [WritePacer(redis, 10), WritePacer(redis, 10)]
    passed: list[float] = []
    lock = threading.Lock()

    def writer(pacer: WritePacer) -> None:
        for _ in range(3):
            pacer.wait()
            with lock:
                passed.append(time.monotonic())

    threads = [threading.Thread(target=writer, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    passed.sort()
    gaps = [b - a for a, b in itertools.pairwise(passed)]
    assert len(passed) == 6
    # Each write wakes at or after its slot, 0.1 s after the one before; a busy machine may wake one
    # late, which shortens the gap after it: half an interval is the bound that still shows pacing.
    assert min(gaps) >= 0.05
    assert passed[-1] - passed[0] >= 0.45


def test_zero_turns_pacing_off(redis):
    """At 0 writes per second, waiting costs nothing and touches no Redis key."""
    pacer = WritePacer(redis, 0)
    assert [pacer.wait() for _ in range(5)] == [0.0] * 5
    assert redis.exists(KEY) == 0


def test_playbook_writes_go_through_the_pacer(redis, redis_url, fake_github):
    """With pacing at 5 writes per second, a playbook's GitHub writes reach GitHub spaced by about
    the interval (at least half of it, whatever the load: a slot is taken before each send)."""
    settings = make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                             github_repo=fake_github.full_name, github_writes_per_second=5)
    [record] = run_notification(settings, redis, Worker(settings), integrity(MANIFEST_DIGEST))
    assert record.status == "succeeded"
    writes = [r.at for r in fake_github.requests if r.method != "GET"]
    assert len(writes) >= 3  # the freeze, the dispatch, the ticket
    assert min(b - a for a, b in itertools.pairwise(writes)) >= 0.1
