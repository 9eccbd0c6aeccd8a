"""The in-repo GitHub fake (tests/fakes/github.py), with the arrival time of every request kept
in a light list (``arrivals``: perf_counter, method, target, status) so the bench can tell when a
run's first GitHub call arrived without deep-copying ``requests``."""

from __future__ import annotations

import time

from tests.fakes.github import FakeGitHub
from tests.fakes.server import Response


class BenchGitHub(FakeGitHub):
    def reset(self) -> None:
        with self._lock:
            super().reset()
            self.arrivals: list[tuple[float, str, str, int]] = []

    def _handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> tuple[Response, float]:
        arrived = time.perf_counter()  # the request (headers and body) has been read
        response, delay = super()._handle(method, target, headers, raw_body)
        with self._lock:
            self.arrivals.append((arrived, method, target, response.status))
        return response, delay

    def mark(self) -> float:
        """A point in time; :meth:`first_since` gives the first request that arrived after it."""
        return time.perf_counter()

    def first_since(self, mark: float) -> tuple[float, str, str, int] | None:
        with self._lock:
            later = [a for a in self.arrivals[-50:] if a[0] >= mark]
        return min(later) if later else None
