"""Queueing a notification's runs the way the webhook does, working them off on an in-process RQ
worker (retries included, or not), and reading their records back."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from responder.alerts import Alert, Notification
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from tests.conftest import MANIFEST, Worker, load_example

# The sample manifest's digest of fraud-scorer: an integrity alert deployed with it finds no mismatch.
MANIFEST_DIGEST = "sha256:5d41402abc4b2a76b9719d911017c592ae4d6e1f5c3b2a190817263544536271"


def manifest_digest(model_id: str) -> str:
    """The sample manifest's artifact digest of ``model_id``, as an alert's deployed_digest."""
    models = json.loads(MANIFEST.read_text())["models"]
    return "sha256:" + next(m["artifact"]["sha256"] for m in models if m["modelId"] == model_id)


def integrity(deployed_digest: str | None = "mismatch") -> dict[str, Any]:
    """The integrity alert: its sample's (mismatching) digest, ``MANIFEST_DIGEST`` (a match: the
    playbook proposes no rollback), or none (None)."""
    payload = load_example("integrity-firing.json")
    annotations = payload["alerts"][0]["annotations"]
    if deployed_digest is None:
        del annotations["deployed_digest"]
    elif deployed_digest != "mismatch":
        annotations["deployed_digest"] = deployed_digest
    return payload


# --------------------------------------------------------------------------- queueing


def queue_runs(settings: Settings, redis: Redis, payload: dict[str, Any]) -> list[str]:
    """Hand a notification to the intake, as the webhook does; the ids of the runs it queued."""
    decisions = Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(
        Notification.model_validate(payload)
    )
    return [d.job_id for d in decisions if d.decision == "queued" and d.job_id]


def enqueue_example(redis: Redis, settings: Settings, sample: str | dict[str, Any]) -> str:
    """Queue the firing alert of sample ``sample`` (a name, or a payload) the way the webhook does;
    returns its job id."""
    notification = Notification.model_validate(load_example(sample) if isinstance(sample, str) else sample)
    [decision] = Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(notification)
    assert decision.decision == "queued" and decision.job_id
    return decision.job_id


def refired(payload: dict[str, Any], starts_at: str = "2026-11-26T16:00:00Z") -> dict[str, Any]:
    """The notification's alerts as a new firing instance, started at ``starts_at``."""
    for alert in payload["alerts"]:
        alert["startsAt"] = starts_at
    return payload


# --------------------------------------------------------------------------- working runs off


def is_follow(job_id: str) -> bool:
    """A job that polls a dispatched workflow run (``responder.store.queueing.enqueue_follow``)."""
    return "-follow-" in job_id


class RetryingWorker(Worker):
    """Runs queued jobs and the retries they schedule once due; the polls that follow a dispatched
    workflow run are left scheduled (tests/test_following.py runs them)."""

    def drain(self, timeout: float = 30.0) -> None:
        self.drain_scheduled(lambda job_id: not is_follow(job_id), timeout=timeout)


def run_notification(settings: Settings, redis: Redis, worker: Worker, payload: dict[str, Any]) -> list[RunRecord]:
    """Queue the notification's runs, work them off on ``worker``; their records."""
    job_ids = queue_runs(settings, redis, payload)
    worker.drain()
    store = RunStore(redis, retention_seconds=settings.dedup_retention_seconds)
    return [store.get(job_id) for job_id in job_ids]


def run_in_env(env: dict[str, Any], payload: dict[str, Any]) -> list[RunRecord]:
    """Queue the notification's runs with ``env["settings"]`` on ``env["redis"]`` and work them off on
    ``env["worker"]``; their records."""
    settings: Settings = env["settings"]
    intake = Intake(env["redis"], settings, load_catalog(settings.playbooks_dir))
    decisions = intake.accept(Notification.model_validate(payload))
    env["worker"].drain()
    store = RunStore(env["redis"], retention_seconds=settings.dedup_retention_seconds)
    return [store.get(d.job_id) for d in decisions if d.decision == "queued" and d.job_id]


def run_manually(settings: Settings, playbook: str, labels: dict[str, str], annotations: dict[str, str]) -> Any:
    """Queue ``playbook`` for an alert with these labels, run it on a worker, return its run record."""
    alert = Alert(
        status="firing",
        labels=labels,
        annotations=annotations,
        startsAt=datetime.now(UTC),
        fingerprint=uuid.uuid4().hex[:16],
    )
    record = Intake(Redis.from_url(settings.redis_url), settings, load_catalog(settings.playbooks_dir)).enqueue_manual(
        playbook, alert, dry_run=False
    )
    worker = Worker(settings)
    worker.drain()
    return RunStore(worker.runtime.redis, retention_seconds=60).get(record.id)


# --------------------------------------------------------------------------- run records


def record_of(settings: Settings, redis: Redis, job_id: str) -> RunRecord:
    """The run record of ``job_id``."""
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(job_id)


def run_of(redis: Redis, job_id: str) -> RunRecord:
    """The run record of ``job_id``, read without settings."""
    return RunStore(redis, retention_seconds=3600).get(job_id)


def finished(redis: Redis, job_id: str) -> RunRecord | None:
    """The run record of ``job_id`` once it has succeeded or failed, else None."""
    record = run_of(redis, job_id)
    return record if record.status in ("succeeded", "failed") else None


def drift_for(models: list[str], *, starts_at: str = "2026-11-26T13:26:42Z", offset: int = 0) -> dict[str, Any]:
    """One notification with a firing drift alert per model (fingerprints ``offset``, ``offset + 1``...)."""
    payload = load_example("drift-two-segments-firing.json")
    template = payload["alerts"][0]
    payload["alerts"] = []
    for i, model in enumerate(models):
        alert = copy.deepcopy(template)
        alert["labels"]["model_id"] = model
        alert["fingerprint"] = f"{offset + i:016x}"
        alert["startsAt"] = starts_at
        payload["alerts"].append(alert)
    return payload
