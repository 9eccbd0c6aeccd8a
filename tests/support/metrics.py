"""Reading responder's Prometheus metrics as GET /metrics would show them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from responder.metrics import ReceiverMetrics
from responder.settings import Settings


def metric(settings: Settings, redis: Redis, name: str, **labels: str) -> float:
    """A sample of what GET /metrics would show (the receiver's registry, read from Redis)."""
    exposition = ReceiverMetrics(redis, settings.queue, known_alertnames=set()).exposition().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
