"""``responder demo``: the main job on an embedded default.

Starts a local Redis if none answers, a receiver and a worker in dry-run (no GitHub
credentials needed: the manifest comes from the bundled sample), posts the bundled sample
Alertmanager notifications, and prints each run's record.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from pydantic import TypeAdapter
from redis import Redis

from responder import output
from responder.errors import ConfigError, ResponderError
from responder.runs import RunStore
from responder.settings import Settings

SAMPLES = Path(__file__).parent / "samples"
# Posted in this order; the last two repeat instances already sent, to show dedup.
SEQUENCE = [
    "integrity-firing.json",
    "bias-firing.json",
    "drift-two-segments-firing.json",
    "drift-one-resolved-one-firing.json",
    "integrity-firing.json",
]


def run_demo(settings: Settings, *, port: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="responder-demo-"))
    ensure_redis(settings.redis_url, workdir)
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "RESPONDER_REDIS_URL": settings.redis_url,
        "RESPONDER_DRY_RUN": "true",
        "RESPONDER_WEBHOOK_TOKEN": token,
        "RESPONDER_PLAYBOOKS_DIR": str(settings.playbooks_dir.resolve()),
        "RESPONDER_OFFLINE_MANIFEST_FILE": str(SAMPLES / "model-manifest.json"),
        "RESPONDER_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "responder.cli"]
    print(f"demo: dry-run; logs in {workdir}")
    procs = [
        _spawn([*command, "serve", "--port", str(port)], env, workdir / "receiver.log"),
        _spawn([*command, "worker"], env, workdir / "worker.log"),
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, procs, workdir)
        job_ids = _post_samples(base, token)
        runs = RunStore(Redis.from_url(settings.redis_url), retention_seconds=settings.dedup_retention_seconds)
        failed = False
        for job_id in job_ids:
            record = _wait_done(runs, job_id)
            print()
            print(output.run_text(record))
            failed |= record.status != "succeeded"
        print(f"\ndemo: {len(job_ids)} run(s); see them again with `responder jobs list`")
        return 1 if failed else 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def ensure_redis(url: str, workdir: Path) -> None:
    """Start redis-server for a local URL when nothing answers there."""
    try:
        Redis.from_url(url, socket_connect_timeout=1).ping()
        return
    except Exception:
        pass
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"no Redis answers at {url} and it is not local: start it or fix RESPONDER_REDIS_URL")
    server = shutil.which("redis-server")
    if server is None:
        raise ConfigError("no Redis answers and redis-server is not installed: apt-get install redis-server")
    subprocess.run(
        [
            server,
            "--port",
            str(parsed.port or 6379),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes",
            "--logfile",
            str(workdir / "redis.log"),
        ],
        check=True,
    )
    for _ in range(50):
        try:
            Redis.from_url(url, socket_connect_timeout=1).ping()
            print(f"demo: started redis-server on port {parsed.port or 6379}")
            return
        except Exception:
            time.sleep(0.1)
    raise ConfigError(f"started redis-server but {url} does not answer; see {workdir / 'redis.log'}")


def _spawn(command: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    handle = log_file.open("wb")
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait_ready(base: str, procs: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    for _ in range(100):
        if any(p.poll() is not None for p in procs):
            raise ResponderError(f"receiver or worker exited at start; see the logs in {workdir}")
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ResponderError(f"receiver did not become ready; see {workdir / 'receiver.log'}")


def restamped(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shift every startsAt/endsAt by one offset so the samples fire 'now' (a new instance
    each demo run), keeping which alerts share a firing instance."""
    starts = [_parse(a["startsAt"]) for p in payloads for a in p["alerts"]]
    offset = datetime.now(UTC) - max(starts)
    out: list[dict[str, Any]] = json.loads(json.dumps(payloads))
    for payload in out:
        for alert in payload["alerts"]:
            alert["startsAt"] = (_parse(alert["startsAt"]) + offset).isoformat()
            if not alert["endsAt"].startswith("0001-"):
                alert["endsAt"] = (_parse(alert["endsAt"]) + offset).isoformat()
    return out


_TIMESTAMP = TypeAdapter(datetime)


def _parse(text: str) -> datetime:
    """Alertmanager's RFC 3339 times have nanoseconds, which datetime.fromisoformat refuses."""
    return _TIMESTAMP.validate_python(text)


def _post_samples(base: str, token: str) -> list[str]:
    payloads = restamped([json.loads((SAMPLES / name).read_text()) for name in SEQUENCE])
    job_ids: list[str] = []
    for name, payload in zip(SEQUENCE, payloads, strict=True):
        response = requests.post(
            f"{base}/webhooks/alertmanager", json=payload, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        print(f"\nPOST {name} -> {response.status_code}")
        for decision in response.json().get("alerts", []):
            print(
                f"  {decision['alertname']} {decision['status']} {decision['fingerprint']}: "
                f"{decision['decision']}" + (f" ({decision['reason']})" if decision.get("reason") else "")
            )
            if decision["decision"] == "queued":
                job_ids.append(decision["job_id"])
    return job_ids


def _wait_done(runs: RunStore, job_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = runs.get(job_id)
        if record.status in ("succeeded", "failed"):
            return record
        time.sleep(0.2)
    return runs.get(job_id)
