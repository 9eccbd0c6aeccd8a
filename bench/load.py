"""Load generation: wrk for the intake benchmark, a keep-alive HTTP client for single posts, and
builders of distinct Alertmanager notifications."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import secrets
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA = Path(__file__).resolve().parent / "alerts.lua"
WEBHOOK_PATH = "/webhooks/alertmanager"
ALERTNAME = "model_drift_detected"
MODEL_VERSION = "2026.11.1"


# --------------------------------------------------------------------------- wrk


def wrk_version() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        return "missing"
    out = subprocess.run([binary, "-v"], capture_output=True, text=True)
    match = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "?"


def run_wrk(base_url: str, *, token: str, tag: int, seconds: float, connections: int = 16,
            threads: int = 2) -> dict[str, Any]:
    """One wrk run; returns requests/s, latency percentiles (ms) and status counts."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", "-s", str(LUA), base_url + WEBHOOK_PATH, "--", token, str(tag)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    rps_line = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    duration = data["duration_us"] / 1e6
    lat = {k: v / 1000 for k, v in data["latency_us"].items()}  # ms
    statuses = {int(k): v for k, v in data["statuses"].items()}
    non_2xx = sum(v for k, v in statuses.items() if not 200 <= k < 300)
    errors = data["errors"]
    return {
        "requests": data["requests"],
        "seconds": round(duration, 3),
        "rps": round(data["requests"] / duration, 1),
        "wrk_rps": float(rps_line.group(1)) if rps_line else None,
        "latency_ms": {k: round(v, 3) for k, v in lat.items()},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": non_2xx,
        "socket_errors": {k: v for k, v in errors.items() if k != "status"},
    }


# --------------------------------------------------------------------------- notifications

_NONCE = secrets.randbits(24)
_COUNTER = itertools.count(1)


def fresh_id() -> int:
    return next(_COUNTER)


def _fingerprint(n: int) -> str:
    return f"{_NONCE:06x}{n:010x}"


def alert(model_id: str, *, segment: str, starts: datetime | None = None) -> dict[str, Any]:
    """A distinct firing drift alert (new fingerprint and startsAt each call)."""
    n = fresh_id()
    starts = (starts or datetime.now(UTC)) + timedelta(microseconds=n % 1_000_000)
    labels = {"alertname": ALERTNAME, "model_id": model_id, "model_version": MODEL_VERSION,
              "segment": segment, "severity": "warning"}
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"psi": "0.31", "summary": f"PSI 0.31 above 0.20 for segment {segment}"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.bench.internal:9090/graph?g0.expr=model_feature_psi%3E0.2",
        "fingerprint": _fingerprint(n),
    }


def new_model() -> str:
    return f"bench-{_NONCE:06x}-{fresh_id()}"


def notification(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    first = alerts[0]["labels"]
    models = {a["labels"]["model_id"] for a in alerts}
    group = {"alertname": ALERTNAME, **({"model_id": first["model_id"]} if len(models) == 1 else {})}
    common = {"alertname": ALERTNAME, "model_version": MODEL_VERSION, "severity": "warning", **group}
    key = ", ".join(f'{k}="{v}"' for k, v in group.items())
    return {
        "receiver": "responder",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench.internal:9093",
        "version": "4",
        "groupKey": "{}:{" + key + "}",
        "truncatedAlerts": 0,
    }


def group_one_model(size: int) -> dict[str, Any]:
    """``size`` alerts of one model, one per segment: what the shipped Alertmanager route
    (group_by [alertname, model_id]) puts in one notification."""
    model = new_model()
    now = datetime.now(UTC)
    return notification([alert(model, segment=f"seg-{i}", starts=now) for i in range(size)])


def group_many_models(size: int) -> dict[str, Any]:
    """``size`` alerts of ``size`` different models (a route grouping by alertname only)."""
    now = datetime.now(UTC)
    return notification([alert(new_model(), segment="eu", starts=now) for _ in range(size)])


# --------------------------------------------------------------------------- a keep-alive client


class Client:
    """A persistent HTTP/1.1 connection to one server; ``post`` returns (status, body, seconds)."""

    def __init__(self, base_url: str, token: str) -> None:
        split = urlsplit(base_url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, payload: dict[str, Any], path: str = WEBHOOK_PATH) -> tuple[int, bytes, float, float]:
        """Returns status, body, the perf_counter just before sending, and the seconds to the full answer."""
        body = json.dumps(payload).encode()
        for attempt in range(2):
            try:
                start = time.perf_counter()
                self.conn.request("POST", path, body=body, headers=self.headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, data, start, time.perf_counter() - start
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()
