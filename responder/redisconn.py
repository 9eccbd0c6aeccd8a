"""The Redis client every process builds from the settings (kept apart from the runtime so the
receiver does not import the GitHub, Jira and toggle clients it never uses)."""

from __future__ import annotations

from redis import Redis

from responder.settings import Settings


def redis_client(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30)
