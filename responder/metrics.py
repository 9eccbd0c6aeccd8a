"""Prometheus metrics, served by the receiver at GET /metrics.

Receiver metrics are ordinary prometheus-client metrics of the receiver process. What the
workers count (runs, step durations, external calls, GitHub's remaining rate limit) happens
in other processes, often on other hosts, so it is kept in Redis hashes and read at scrape
time by a collector: every receiver replica reports the same cluster-wide totals for those
(sum over one replica, or use max() across replicas).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, Protocol, TypeVar, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.client import Pipeline
from rq import Queue

from responder.errors import TransientError
from responder.store import redis_keys

STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, float("inf"))
# time to resolve: 1m, 5m, 15m, 30m, 1h, 2h, 6h, 12h, 24h, 3d
RESOLVE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0, 86400.0, 259200.0, float("inf"))
P = ParamSpec("P")
T = TypeVar("T")

_recorder: WorkerMetrics | None = None


class WorkerMetrics:
    """What a worker counts, written to Redis hashes.

    Outside a run each observation is written at once. During a run (``batching()``) they are
    kept in memory and the runner writes them in the same round trip as the run record's next
    checkpoint (``write_into``), so counting costs a run no round trips of its own; whatever is
    left when the batch ends is written then. Counts of a run whose worker dies between two
    checkpoints are lost with it (the run itself is recovered from its checkpoints).
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._lock = threading.Lock()
        self._batch: _Pending | None = None

    def run_finished(self, playbook: str, outcome: str) -> None:
        self._add(lambda p: p.increment(redis_keys.metrics_key("runs"), f"{playbook}|{outcome}"))

    def step_finished(self, playbook: str, step: str, kind: str, seconds: float) -> None:
        self._observe(redis_keys.metrics_key("steps"), STEP_BUCKETS, f"{playbook}|{step}|{kind}", seconds)

    def resolved(self, alertname: str, seconds: float) -> None:
        """An incident resolved ``seconds`` after responder's first action on it."""
        self._observe(redis_keys.metrics_key("resolve"), RESOLVE_BUCKETS, alertname, seconds)

    def workflow_run_ended(self, workflow: str, conclusion: str) -> None:
        """Following a workflow run ended: its conclusion, or "abandoned"."""
        self._add(lambda p: p.increment(redis_keys.metrics_key("workflow_runs"), f"{workflow}|{conclusion}"))

    def approval_ended(self, playbook: str, outcome: str) -> None:
        """An approval step ended: approved, rejected or expired."""
        self._add(lambda p: p.increment(redis_keys.metrics_key("approvals"), f"{playbook}|{outcome}"))

    def _observe(self, key: str, buckets: tuple[float, ...], series: str, seconds: float) -> None:
        """One histogram observation: a count in the (non-cumulative) bucket it falls in, and the sum."""
        bucket = next(b for b in buckets if seconds <= b)

        def add(p: _Pending) -> None:
            p.increment(key, f"{series}|{bucket}")
            p.increment(f"{key}:sum", series, float(seconds))

        self._add(add)

    def step_found(self, playbook: str, step: str, finding: str) -> None:
        """A check step found a problem (its finding, e.g. "mismatch": a word set by code, not alert text)."""
        self._add(lambda p: p.increment(redis_keys.metrics_key("findings"), f"{playbook}|{step}|{finding}"))

    def external_call(self, system: str, outcome: str) -> None:
        self._add(lambda p: p.increment(redis_keys.metrics_key("calls"), f"{system}|{outcome}"))

    def github_ratelimit(self, remaining: int) -> None:
        if remaining >= 0:

            def add(p: _Pending) -> None:
                p.ratelimit = remaining

            self._add(add)

    @contextmanager
    def batching(self) -> Iterator[None]:
        """Keep observations in memory until ``write_into`` (or the end of the block) writes them."""
        with self._lock:
            self._batch = _Pending()
        try:
            yield
        finally:
            with self._lock:
                pending, self._batch = self._batch, None
            if pending:
                self._write(pending)

    @contextmanager
    def write_into(self, pipe: Pipeline) -> Iterator[None]:
        """Queue the observations kept so far on ``pipe``; run the block that executes it. Should the
        block fail (Redis down), they are kept for the next write."""
        with self._lock:
            pending = self._batch
            if pending is not None:
                self._batch = _Pending()
        if pending:
            pending.queue_on(pipe)
        try:
            yield
        except BaseException:
            if pending:
                with self._lock:
                    if self._batch is not None:
                        self._batch.merge_older(pending)
            raise

    def _add(self, observe: Callable[[_Pending], None]) -> None:
        with self._lock:
            batch = self._batch
            if batch is not None:
                observe(batch)
                return
        single = _Pending()
        observe(single)
        self._write(single)

    def _write(self, pending: _Pending) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pending.queue_on(pipe)
            pipe.execute()


class _Pending:
    """Observations not written yet: hash increments and the last rate limit seen."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.ratelimit: int | None = None

    def __bool__(self) -> bool:
        return bool(self.counts or self.sums or self.ratelimit is not None)

    def increment(self, key: str, field: str, amount: float = 1) -> None:
        if isinstance(amount, int):
            self.counts[key, field] = self.counts.get((key, field), 0) + amount
        else:
            self.sums[key, field] = self.sums.get((key, field), 0.0) + amount

    def merge_older(self, older: _Pending) -> None:
        for k, n in older.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
        for k, x in older.sums.items():
            self.sums[k] = self.sums.get(k, 0.0) + x
        if self.ratelimit is None:
            self.ratelimit = older.ratelimit

    def queue_on(self, pipe: Pipeline) -> None:
        for (key, field), n in self.counts.items():
            pipe.hincrby(key, field, n)
        for (key, field), x in self.sums.items():
            pipe.hincrbyfloat(key, field, x)
        if self.ratelimit is not None:
            pipe.set(redis_keys.metrics_key("github_ratelimit_remaining"), self.ratelimit)


def install(recorder: WorkerMetrics | None) -> None:
    """Set the process's recorder (a worker does at start); without one nothing is counted."""
    global _recorder
    _recorder = recorder


def recorder() -> WorkerMetrics | None:
    return _recorder


@contextmanager
def external_call(system: str) -> Iterator[None]:
    """Count one call to an external system by its outcome: ok, transient or failed."""
    try:
        yield
    except TransientError:
        _count(system, "transient")
        raise
    except Exception:
        _count(system, "failed")
        raise
    _count(system, "ok")


def counted(system: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator form of external_call."""

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            with external_call(system):
                return fn(*args, **kwargs)

        return inner

    return wrap


def _count(system: str, outcome: str) -> None:
    if _recorder is not None:
        _recorder.external_call(system, outcome)


class Decided(Protocol):
    """What the receiver counts of one decision (responder.intake.Decision)."""

    @property
    def alertname(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def decision(self) -> str: ...


class ReceiverMetrics:
    """The receiver's own counters, and the collector of what workers wrote to Redis.

    The receiver counts each alert it is sent in plain dicts, read at scrape time: a
    prometheus-client child counter's ``inc()`` takes a lock and costs about as much as the
    rest of the counting, once per alert of every delivery.
    """

    def __init__(self, redis: Redis, queue: str, *, known_alertnames: set[str]) -> None:
        self._known = known_alertnames
        self._received: dict[tuple[str, str], int] = {}  # (alertname or "other", status) -> alerts
        self._decided: dict[str, int] = {}  # decision -> alerts
        # when each series was first counted (the counters' _created samples)
        self._received_since: dict[tuple[str, str], float] = {}
        self._decided_since: dict[str, float] = {}
        self.registry = CollectorRegistry()
        self.registry.register(_ReceiverCollector(self))
        self.registry.register(_RedisCollector(redis, queue))

    def observe(self, decisions: Iterable[Decided]) -> None:
        received, decided = self._received, self._decided
        for d in decisions:
            # alertname is untrusted text: unknown ones share one label value (bounded cardinality).
            series = (d.alertname if d.alertname in self._known else "other", d.status)
            if series not in received:
                self._received_since[series] = time.time()
            received[series] = received.get(series, 0) + 1
            if d.decision not in decided:
                self._decided_since[d.decision] = time.time()
            decided[d.decision] = decided.get(d.decision, 0) + 1

    def received(self) -> list[tuple[tuple[str, str], int, float]]:
        """Alerts received so far: ((alertname or "other", status), count, first counted at)."""
        # Read from a scrape thread while the event loop counts: the counts are copied first, and
        # observe() notes a series' first time before its first count, so every copied series has one.
        counts = dict(self._received)
        since = dict(self._received_since)
        return [(series, count, since[series]) for series, count in counts.items()]

    def decided(self) -> list[tuple[str, int, float]]:
        """Decisions taken so far: (decision, count, first counted at)."""
        counts = dict(self._decided)
        since = dict(self._decided_since)
        return [(decision, count, since[decision]) for decision, count in counts.items()]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ReceiverCollector(Collector):
    """The receiver's counts as Prometheus counters (read from another thread: copied first)."""

    def __init__(self, metrics: ReceiverMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        received = CounterMetricFamily(
            "responder_alerts_received",
            "Alerts received in webhooks, by alertname and the alert's own status.",
            labels=["alertname", "status"],
        )
        for series, count, since in self._metrics.received():
            received.add_metric(list(series), count, created=since)
        yield received
        decided = CounterMetricFamily(
            "responder_alert_decisions", "Decisions taken on received alerts.", labels=["decision"]
        )
        for decision, count, since in self._metrics.decided():
            decided.add_metric([decision], count, created=since)
        yield decided


class _RedisCollector(Collector):
    def __init__(self, redis: Redis, queue: str) -> None:
        self._redis = redis
        self._queue = Queue(queue, connection=redis)

    def collect(self) -> Iterable[Metric]:
        runs = CounterMetricFamily(
            "responder_runs", "Playbook runs finished, by outcome.", labels=["playbook", "outcome"]
        )
        for (playbook, outcome), value in self._fields(redis_keys.metrics_key("runs"), 2):
            runs.add_metric([playbook, outcome], value)
        yield runs
        calls = CounterMetricFamily(
            "responder_external_calls",
            "Calls to GitHub, Jira and the toggle service, by outcome.",
            labels=["system", "outcome"],
        )
        for (system, outcome), value in self._fields(redis_keys.metrics_key("calls"), 2):
            calls.add_metric([system, outcome], value)
        yield calls
        findings = CounterMetricFamily(
            "responder_step_findings",
            "Problems check steps found (e.g. a digest mismatch), by playbook, step and finding.",
            labels=["playbook", "step", "finding"],
        )
        for names, value in self._fields(redis_keys.metrics_key("findings"), 3):
            findings.add_metric(names, value)
        yield findings
        workflow_runs = CounterMetricFamily(
            "responder_workflow_runs",
            "Followed workflow runs that ended, by workflow and conclusion (abandoned: following gave up).",
            labels=["workflow", "conclusion"],
        )
        for names, value in self._fields(redis_keys.metrics_key("workflow_runs"), 2):
            workflow_runs.add_metric(names, value)
        yield workflow_runs
        approvals = CounterMetricFamily(
            "responder_approvals",
            "Approval steps that ended, by playbook and outcome (approved, rejected, expired).",
            labels=["playbook", "outcome"],
        )
        for names, value in self._fields(redis_keys.metrics_key("approvals"), 2):
            approvals.add_metric(names, value)
        yield approvals
        yield self._histogram(
            "responder_step_duration_seconds",
            "How long playbook steps took.",
            ["playbook", "step", "kind"],
            redis_keys.metrics_key("steps"),
            STEP_BUCKETS,
        )
        yield self._histogram(
            "responder_time_to_resolve_seconds",
            "From responder's first action on an incident (its firing run's start) to the alert's resolve.",
            ["alertname"],
            redis_keys.metrics_key("resolve"),
            RESOLVE_BUCKETS,
        )
        remaining = cast(bytes | None, self._redis.get(redis_keys.metrics_key("github_ratelimit_remaining")))
        ratelimit = GaugeMetricFamily(
            "responder_github_ratelimit_remaining", "GitHub API requests left in the current window (last seen)."
        )
        if remaining is not None:
            ratelimit.add_metric([], float(remaining))
        yield ratelimit
        yield GaugeMetricFamily("responder_queue_depth", "Runs waiting in the queue.", value=float(len(self._queue)))

    def _fields(self, key: str, parts: int) -> Iterator[tuple[list[str], float]]:
        for field, value in cast(dict[bytes, bytes], self._redis.hgetall(key)).items():
            names = field.decode().split("|")
            if len(names) == parts:
                yield names, float(value)

    def _histogram(
        self, name: str, documentation: str, labels: list[str], key: str, bounds: tuple[float, ...]
    ) -> Metric:
        """A histogram read from the bucket counts at ``key`` (a field per series and bucket, not
        cumulative) and the sums at ``key:sum`` (a field per series)."""
        family = HistogramMetricFamily(name, documentation, labels=labels)
        parts = len(labels)
        counts: dict[tuple[str, ...], dict[float, float]] = {}
        for names, value in self._fields(key, parts + 1):
            counts.setdefault(tuple(names[:parts]), {})[float(names[parts])] = value
        sums = {tuple(names): value for names, value in self._fields(f"{key}:sum", parts)}
        for series, by_bucket in sorted(counts.items()):
            cumulative, buckets = 0.0, []
            for bound in bounds:
                cumulative += by_bucket.get(bound, 0.0)
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            family.add_metric(list(series), buckets, sums.get(series, 0.0))
        return family
