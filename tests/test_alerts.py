"""The Alertmanager payload model: parsing the real samples, per-alert status, label checks, job ids."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from responder.alerts import Alert, Notification
from responder.errors import AlertError
from tests.conftest import SAMPLES, load_example

SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.json") if p.name != "model-manifest.json")
JOB_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def notification(name: str) -> Notification:
    return Notification.model_validate(load_example(name))


def alert_with(**labels: Any) -> Alert:
    """The firing alert of bias-firing.json with some labels replaced (None removes one)."""
    alert = notification("bias-firing.json").alerts[0]
    merged = {**alert.labels, **labels}
    return alert.model_copy(update={"labels": {k: v for k, v in merged.items() if v is not None}})


def test_samples_exist() -> None:
    """The sample payloads these tests parse are present."""
    assert len(SAMPLE_NAMES) >= 5


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_parses(name: str) -> None:
    """Every real Alertmanager 0.25 sample parses into a Notification with all its alerts."""
    raw = load_example(name)

    parsed = Notification.model_validate(raw)

    assert len(raw["alerts"]) == len(parsed.alerts)
    assert [a["fingerprint"] for a in raw["alerts"]] == [a.fingerprint for a in parsed.alerts]


@pytest.mark.parametrize("parse", ["python", "json"])
def test_lone_surrogate_escape_is_refused_from_python_and_from_json(parse: str) -> None:
    """Text that has no UTF-8 form is refused whichever way a payload is read: from Python
    objects by our check, from JSON by pydantic's parser (which the receiver relies on)."""
    raw = load_example("bias-firing.json")
    raw["alerts"][0]["labels"]["segment"] = "x\ud800y"

    with pytest.raises(ValidationError):
        if parse == "python":
            Notification.model_validate(raw)
        else:
            Notification.model_validate_json(json.dumps(raw))  # json.dumps writes the escape \ud800


def test_zero_end_time_means_still_open() -> None:
    """An endsAt of Go's zero time means the alert is still open."""
    alert = notification("bias-firing.json").alerts[0]

    assert alert.still_open is True


def test_real_end_time_means_not_open() -> None:
    """An alert with a real endsAt is no longer open."""
    alert = notification("drift-all-resolved.json").alerts[0]

    assert alert.still_open is False


def test_per_alert_status_decides_not_the_group_status() -> None:
    """A group whose summary is firing still reports its resolved alert as resolved."""
    parsed = notification("drift-one-resolved-one-firing.json")

    assert parsed.status == "firing"
    assert [a.fingerprint for a in parsed.firing()] == ["4f2588905e9e0230"]
    assert [a.fingerprint for a in parsed.resolved()] == ["88b289594cc5a4bf"]


def test_missing_model_id_is_not_actionable() -> None:
    """An alert without a model_id label is rejected with the label named."""
    with pytest.raises(AlertError, match="model_id"):
        alert_with(model_id=None).check_actionable()


def test_empty_model_id_is_not_actionable() -> None:
    """An empty model_id label counts as missing."""
    with pytest.raises(AlertError, match="model_id"):
        alert_with(model_id="").check_actionable()


BAD_IDENTIFIERS = ["../x", "a b", "x;rm", "a" * 129, "-leading-dash", ".hidden", "x/y", "x\n", "ünïcode"]


@pytest.mark.parametrize("label", ["model_id", "model_version"])
@pytest.mark.parametrize("value", BAD_IDENTIFIERS, ids=repr)
def test_unsafe_identifier_is_not_actionable(label: str, value: str) -> None:
    """model_id and model_version must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ in full."""
    with pytest.raises(AlertError, match=label):
        alert_with(**{label: value}).check_actionable()


GOOD_IDENTIFIERS = ["fraud-scorer", "2026.11.1", "credit_limit", "a", "A" * 128, "3.2.0-rc.1"]


@pytest.mark.parametrize("label", ["model_id", "model_version"])
@pytest.mark.parametrize("value", GOOD_IDENTIFIERS)
def test_safe_identifier_is_actionable(label: str, value: str) -> None:
    """Identifiers of letters, digits, '.', '_' and '-' up to 128 characters are accepted."""
    alert_with(**{label: value}).check_actionable()


def test_missing_model_version_is_actionable() -> None:
    """model_version is optional: only its format is checked when present."""
    alert_with(model_version=None).check_actionable()


def test_job_id_is_stable_for_the_same_firing_instance() -> None:
    """The same (alertname, fingerprint, startsAt) from two deliveries gives the same job id."""
    first = notification("drift-two-segments-firing.json").alerts[0]
    again = notification("drift-one-resolved-one-firing.json").alerts[0]

    assert first.job_id() == again.job_id()


def test_job_id_ignores_annotations_and_other_labels() -> None:
    """Changed annotations or extra labels do not make a new firing instance."""
    alert = notification("bias-firing.json").alerts[0]
    changed = alert.model_copy(update={"annotations": {"summary": "other"}, "labels": {**alert.labels, "x": "y"}})

    assert alert.job_id() == changed.job_id()


def test_job_id_differs_when_starts_at_differs() -> None:
    """A new startsAt is a new firing instance, with a new job id."""
    alert = notification("bias-firing.json").alerts[0]
    later = alert.model_copy(update={"startsAt": alert.startsAt + timedelta(minutes=5)})

    assert alert.job_id() != later.job_id()


def test_job_id_differs_when_fingerprint_differs() -> None:
    """Two alerts of one group have different job ids."""
    first, second = notification("drift-two-segments-firing.json").alerts

    assert first.job_id() != second.job_id()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_job_id_of_samples_uses_only_rq_characters(name: str) -> None:
    """Job ids of the samples contain only [A-Za-z0-9_-], as RQ requires."""
    ids = [a.job_id() for a in notification(name).alerts]

    assert [bool(JOB_ID_CHARS.fullmatch(i)) for i in ids] == [True] * len(ids), ids


@pytest.mark.parametrize("alertname", ["ModelDrift:fraud", "model.drift v2"])
def test_job_id_uses_only_rq_characters_for_any_alertname(alertname: str) -> None:
    """An alertname is any label value, yet the job id still contains only [A-Za-z0-9_-]."""
    job_id = alert_with(alertname=alertname).job_id()

    assert JOB_ID_CHARS.fullmatch(job_id), f"job id {job_id!r} would be refused by RQ"
