"""What happens to each alert of a notification: the intake's decision rules, with no I/O.

Two pure steps, tested table-driven without Redis (``tests/test_decisions.py``):

1. ``decide``: one alert on its own, against the playbooks. It is rejected (no alertname, a
   label unsafe to act on: it gets a needs-triage ticket), ignored (no playbook, or none for its
   status) or a ``Candidate``: a run to queue unless the store has seen its instance.
2. ``plan``: the candidates and rejected alerts of a commit, against what the store has seen
   (dedup and triage markers) and how full each playbook's storm window is: which runs are
   queued, which are duplicates or suppressed by the storm guard, which rejected alerts get a
   triage ticket. ``final`` then gives each alert its ``Decision``.

``responder.intake`` reads what the store has seen, calls these, and commits the plan's writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import Literal

from responder.alerts import Alert, Notification
from responder.errors import AlertError
from responder.playbooks.catalog import Catalog
from responder.runs import MAX_RELATED, QueuedRun, Source
from responder.store.redis_keys import digest, related_key, seen_key, triage_key

DecisionKind = Literal["queued", "duplicate", "ignored", "rejected", "suppressed"]
TRIAGE_PLAYBOOK = "needs-triage"
STORM_PLAYBOOK = "storm"


@dataclass(frozen=True)
class Decision:
    alert: Alert
    decision: DecisionKind
    job_id: str | None = None
    reason: str | None = None

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint

    @property
    def alertname(self) -> str:
        return self.alert.alertname

    @property
    def status(self) -> str:
        return self.alert.status

    def to_json(self) -> dict[str, str]:
        """What the webhook answers for the alert (also kept in the decision history). Built
        once, shared by the two, and not to be changed. (Cached by hand: functools.cached_property
        takes a lock on Python 3.11, which costs more than building the dict.)"""
        data = self.__dict__.get("_json")
        if data is None:
            data = self.__dict__["_json"] = self._answer()
        return data

    def _answer(self) -> dict[str, str]:
        data = {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "status": self.status,
            "decision": self.decision,
        }
        if self.job_id:
            data["job_id"] = self.job_id
        if self.reason:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class Found:
    """Where the alerts being decided were found: which notification of the commit, its id in
    the decision history (its runs read their alerts from its payload) and when it arrived."""

    origin: int
    notification_id: str
    received_at: float


@dataclass(slots=True)  # not frozen: built per alert, and frozen ones are slower to build
class Candidate:
    """A run to queue unless its instance was seen (dedup) or a storm suppresses it."""

    run: QueuedRun
    alert: Alert
    dedup: bool = True
    origin: int = 0  # which notification of a group commit it came from
    group: Group | None = None  # whose related alerts the run shares

    @property
    def dedup_key(self) -> str:
        return seen_key(self.run.id)

    @property
    def storm_guarded(self) -> bool:
        return self.dedup and self.alert.is_firing and self.run.source == "webhook"


@dataclass
class Plan:
    """What one commit writes, decided from what it read."""

    queued: set[str] = field(default_factory=set)
    suppressed: dict[str, str] = field(default_factory=dict)  # run id -> reason
    triage: dict[str, str] = field(default_factory=dict)  # rejected fingerprint -> triage run id
    triage_suppressed: set[str] = field(default_factory=set)  # rejected fingerprints past the storm limit
    repeated: dict[int, str] = field(default_factory=dict)  # id() of a candidate whose run id came earlier -> reason
    slots: dict[str, int] = field(default_factory=dict)  # storm-guard slots taken, by playbook

    @property
    def holds_back(self) -> bool:
        """Whether the storm guard suppresses anything in this plan."""
        return bool(self.suppressed or self.triage_suppressed)


@dataclass(frozen=True)
class StormGuard:
    """At most ``max_runs`` firing runs of a playbook per window of ``window_seconds``."""

    max_runs: int
    window_seconds: int

    def reason(self, playbook: str) -> str:
        return (
            f"storm: more than {self.max_runs} runs of {playbook} started within "
            f"{self.window_seconds}s; listed on the storm ticket"
        )


def decide(
    alert: Alert, index: int, groups: Groups, found: Found, catalog: Catalog, *, source: Source, dry_run: bool
) -> Decision | Candidate:
    """What to do with the ``index``-th alert of a notification on its own (see the module docstring)."""
    if not alert.alertname:
        return Decision(alert, "rejected", reason="missing required label: alertname")
    playbook = catalog.for_alertname(alert.alertname)
    if playbook is None:
        return Decision(alert, "ignored", reason=f"no playbook handles alertname {alert.alertname!r}")
    if not playbook.steps_for(alert):
        return Decision(alert, "ignored", reason=f"playbook {playbook.name} has no steps for {alert.status} alerts")
    try:
        alert.check_actionable(playbook.requires_labels)
    except AlertError as exc:
        return Decision(alert, "rejected", reason=str(exc))
    group = groups.get((alert.alertname, alert.model_id)) if alert.is_firing else None
    related = group.related(alert) if group is not None else []
    replay = source == "replay"
    run_id = f"replay-{secrets.token_hex(4)}-{alert.job_id()}" if replay else alert.job_id()
    run = QueuedRun(
        id=run_id[:120],
        playbook=playbook.name,
        source=source,
        dry_run=dry_run,
        notification=found.notification_id,
        alert_index=index,
        enqueued_at=found.received_at,
        related_key=group.key if group is not None and related else None,
    )
    return Candidate(run, alert, dedup=not replay, origin=found.origin, group=group if related else None)


def plan(
    candidates: Sequence[Candidate],
    rejected: Sequence[Decision],
    seen: Mapping[str, bytes | None],
    used: Mapping[str, int],
    guard: StormGuard,
    *,
    triage_id: Callable[[str], str] | None = None,
) -> Plan:
    """Which candidates are queued, duplicates or suppressed, and which rejected alerts get a
    triage run. ``seen``: the dedup and triage markers the store holds (a key absent from it
    counts as not seen); ``used``: storm-guard slots taken in this window, by playbook;
    ``triage_id``: the run id for a rejected fingerprint (random by default)."""
    room = {playbook: max(0, guard.max_runs - count) for playbook, count in used.items()}
    result = Plan()
    fresh: list[Candidate] = []
    first: dict[str, Candidate] = {}
    for candidate in candidates:
        run_id = candidate.run.id
        if run_id in first:
            result.repeated[id(candidate)] = (
                "listed twice in this notification"
                if first[run_id].origin == candidate.origin
                else f"this {candidate.alert.status} instance was already queued"
            )
            continue
        first[run_id] = candidate
        if not (candidate.dedup and seen.get(candidate.dedup_key) is not None):
            fresh.append(candidate)
    for candidate in fresh:
        playbook, run_id = candidate.run.playbook, candidate.run.id
        if candidate.storm_guarded:
            if room.get(playbook, guard.max_runs) == 0:
                result.suppressed[run_id] = guard.reason(playbook)
                continue
            room[playbook] = room.get(playbook, guard.max_runs) - 1
            result.slots[playbook] = result.slots.get(playbook, 0) + 1
        result.queued.add(run_id)
    fingerprints = list(dict.fromkeys(d.fingerprint for d in rejected if seen.get(triage_key(d.fingerprint)) is None))
    allowed = min(len(fingerprints), room.get(TRIAGE_PLAYBOOK, guard.max_runs))
    make_id = triage_id or _random_triage_id
    for fingerprint in fingerprints[:allowed]:
        result.triage[fingerprint] = make_id(fingerprint)
    if allowed:
        result.slots[TRIAGE_PLAYBOOK] = allowed
    result.triage_suppressed.update(fingerprints[allowed:])
    return result


def final(outcome: Decision | Candidate, plan: Plan) -> Decision:
    """The decision an alert's outcome comes to under ``plan`` (what the webhook answers)."""
    if isinstance(outcome, Decision):
        triage = plan.triage.get(outcome.fingerprint) if outcome.decision == "rejected" else None
        return Decision(outcome.alert, outcome.decision, job_id=triage, reason=outcome.reason)
    run_id, alert = outcome.run.id, outcome.alert
    if id(outcome) in plan.repeated:
        return Decision(alert, "duplicate", job_id=run_id, reason=plan.repeated[id(outcome)])
    if run_id in plan.queued:
        return Decision(alert, "queued", job_id=run_id, reason=None if outcome.dedup else "replay: not de-duplicated")
    if run_id in plan.suppressed:
        return Decision(alert, "suppressed", job_id=run_id, reason=plan.suppressed[run_id])
    return Decision(alert, "duplicate", job_id=run_id, reason=f"this {alert.status} instance was already queued")


def _random_triage_id(fingerprint: str) -> str:
    return f"triage-{digest(fingerprint)}-{secrets.token_hex(3)}"


@dataclass
class Group:
    """The first MAX_RELATED + 1 firing alerts of one (alertname, model_id) in a notification (the
    only ones a related list can hold). Their labels-only copies are made once, when a run first
    asks for its related alerts, and shared: stored once under ``key`` (alerts are immutable)."""

    members: list[Alert] = field(default_factory=list)

    @cached_property
    def copies(self) -> list[Alert]:
        return [alert.model_copy(update={"annotations": {}}) for alert in self.members]

    @cached_property
    def key(self) -> str:
        return related_key(digest("\n".join(alert.instance_key() for alert in self.members)))

    def related(self, alert: Alert) -> list[Alert]:
        """Other firing alerts of the group, labels only."""
        if len(self.members) < 2:
            return []
        others = (copy for original, copy in zip(self.members, self.copies, strict=True) if original is not alert)
        return list(islice(others, MAX_RELATED))


Groups = dict[tuple[str, str | None], Group]


def firing_groups(notification: Notification) -> Groups:
    """The notification's firing alerts by (alertname, model_id), built once per notification."""
    groups: Groups = {}
    firing = notification.firing()
    if len(firing) < 2:
        return groups  # a lone firing alert has no related alerts
    for alert in firing:
        group = groups.setdefault((alert.alertname, alert.model_id), Group())
        if len(group.members) <= MAX_RELATED:
            group.members.append(alert)
    return groups
