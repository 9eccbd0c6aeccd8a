"""The intake's decision rules as pure functions (responder.decisions), table-driven, no Redis:
an alert and the playbooks give a decision or a candidate run; the candidates, what the store has
seen and the storm counters give the plan; the plan gives each alert's final decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from responder.alerts import Alert
from responder.decisions import (
    TRIAGE_PLAYBOOK,
    Candidate,
    Decision,
    Found,
    StormGuard,
    decide,
    final,
    plan,
)
from responder.playbooks.catalog import Catalog, load_catalog
from responder.store.redis_keys import seen_key, triage_key
from tests.conftest import ROOT

GUARD = StormGuard(max_runs=2, window_seconds=600)
FOUND = Found(origin=0, notification_id="n-1", received_at=0.0)


@pytest.fixture(scope="module")
def playbooks() -> Catalog:
    return load_catalog(ROOT / "playbooks")


def alert(fingerprint: str = "f1", status: str = "firing", **labels: str) -> Alert:
    base = {"alertname": "model_drift_detected", "model_id": "fraud-scorer"}
    ends = {"endsAt": datetime(2026, 12, 4, 22, 0, tzinfo=UTC)} if status == "resolved" else {}
    return Alert(status=status, labels={**base, **labels}, annotations={}, fingerprint=fingerprint,
                 startsAt=datetime(2026, 12, 4, 21, 0, tzinfo=UTC), **ends)


def candidate(playbooks: Catalog, item: Alert, *, origin: int = 0, source: Any = "webhook") -> Candidate:
    found = Found(origin=origin, notification_id=f"n-{origin}", received_at=0.0)
    outcome = decide(item, 0, {}, found, playbooks, source=source, dry_run=False)
    assert isinstance(outcome, Candidate)
    return outcome


# --------------------------------------------------------------------------- one alert on its own


@pytest.mark.parametrize(
    ("labels", "decision", "reason"),
    [
        ({"alertname": ""}, "rejected", "missing required label: alertname"),
        ({"alertname": "disk_full"}, "ignored", "no playbook handles alertname 'disk_full'"),
        ({"model_id": "fraud scorer; rm"}, "rejected",
         "label model_id is not a valid identifier (letters, digits, '.', '_', '-')"),
        ({"model_id": ""}, "rejected", "missing required label(s): model_id"),
    ],
)
def test_an_alert_that_cannot_run_is_decided_at_once(playbooks, labels, decision, reason):
    outcome = decide(alert(**labels), 0, {}, FOUND, playbooks, source="webhook", dry_run=False)
    assert isinstance(outcome, Decision)
    assert (outcome.decision, outcome.reason) == (decision, reason)


def test_an_actionable_alert_is_a_candidate_run_of_its_playbook(playbooks):
    item = alert()
    outcome = candidate(playbooks, item)
    assert (outcome.run.id, outcome.run.playbook, outcome.dedup) == (item.job_id(), "model_drift_detected", True)


def test_a_replay_is_a_candidate_that_is_not_deduplicated(playbooks):
    outcome = candidate(playbooks, alert(), source="replay")
    assert outcome.run.id.startswith("replay-") and outcome.dedup is False


# --------------------------------------------------------------------------- the plan


def test_an_instance_not_seen_is_queued(playbooks):
    fresh = candidate(playbooks, alert())
    result = plan([fresh], [], {}, {}, GUARD)
    assert final(fresh, result).decision == "queued"


def test_an_instance_the_store_has_seen_is_a_duplicate(playbooks):
    seen = candidate(playbooks, alert())
    result = plan([seen], [], {seen_key(seen.run.id): b"1"}, {}, GUARD)
    assert (final(seen, result).decision, final(seen, result).reason) == (
        "duplicate", "this firing instance was already queued")


@pytest.mark.parametrize(
    ("second_origin", "reason"),
    [(0, "listed twice in this notification"), (1, "this firing instance was already queued")],
)
def test_one_instance_twice_in_a_commit_is_queued_once(playbooks, second_origin, reason):
    first, again = candidate(playbooks, alert()), candidate(playbooks, alert(), origin=second_origin)
    result = plan([first, again], [], {}, {}, GUARD)
    assert [final(c, result).decision for c in (first, again)] == ["queued", "duplicate"]
    assert final(again, result).reason == reason


@pytest.mark.parametrize(
    ("used", "queued", "suppressed"),
    [({}, 2, 1), ({"model_drift_detected": 1}, 1, 2), ({"model_drift_detected": 2}, 0, 3)],
)
def test_the_storm_guard_queues_up_to_the_room_left_and_suppresses_the_rest(playbooks, used, queued, suppressed):
    firing = [candidate(playbooks, alert(f"f{n}", model_id=f"m{n}")) for n in range(3)]
    result = plan(firing, [], {}, used, GUARD)
    decisions = [final(c, result) for c in firing]
    assert [d.decision for d in decisions].count("queued") == queued
    assert [d.decision for d in decisions].count("suppressed") == suppressed
    assert all(d.reason == GUARD.reason("model_drift_detected") for d in decisions if d.decision == "suppressed")


@pytest.mark.parametrize("kind", ["resolved", "replay"])
def test_resolves_and_replays_are_not_held_back_by_a_full_storm_window(playbooks, kind):
    item = alert(status="resolved") if kind == "resolved" else alert()
    run = candidate(playbooks, item, source="replay" if kind == "replay" else "webhook")
    result = plan([run], [], {}, {"model_drift_detected": GUARD.max_runs}, GUARD)
    assert final(run, result).decision == "queued"


def rejected(fingerprint: str) -> Decision:
    return Decision(alert(fingerprint, model_id="bad model"), "rejected", reason="label model_id is not valid")


@pytest.mark.parametrize(
    ("seen", "used", "triaged", "held"),
    [
        (set(), 0, ["r1", "r2"], []),  # each new fingerprint gets its triage run
        ({"r1"}, 0, ["r2"], []),  # a fingerprint already triaged gets none
        (set(), 1, ["r1"], ["r2"]),  # past the storm room: listed on the storm ticket instead
    ],
)
def test_rejected_alerts_get_one_triage_run_per_fingerprint_within_the_storm_room(seen, used, triaged, held):
    alerts = [rejected("r1"), rejected("r2")]
    markers = {triage_key(fp): b"run" for fp in seen}
    result = plan([], alerts, markers, {TRIAGE_PLAYBOOK: used}, GUARD, triage_id=lambda fp: f"triage-{fp}")
    assert sorted(result.triage) == triaged and sorted(result.triage_suppressed) == held
    assert [final(d, result).job_id for d in alerts] == [result.triage.get("r1"), result.triage.get("r2")]
