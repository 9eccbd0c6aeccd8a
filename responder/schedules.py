"""Scheduled playbook runs: what a schedule is, where schedules come from, and which of a
schedule's slots (the times its cron expression names, in UTC) fire and which were missed.

Everything here is pure but the file read; the scheduler process (``responder.scheduler``)
claims slots in Redis and queues the runs. A schedule comes from the ``schedules`` setting, or
when that is empty from ``schedules.yaml`` beside the playbooks::

    schedules:
      - name: quarterly-baseline
        cron: "0 9 * 1,4,7,10 mon#1"     # 09:00 UTC on the first Monday of each quarter
        playbook: quarterly-baseline
        for_each: manifest_model          # one run per model of the manifest (label model_id)
        labels: {team: ml-platform}       # more labels of each run's alert
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from responder.errors import ConfigError
from responder.yamlfile import load_yaml

if TYPE_CHECKING:
    from responder.playbooks.catalog import Catalog

MISSED_KEPT = 20  # missed slots remembered (and listed) per schedule, the newest
FOR_EACH_LABEL = {"manifest_model": "model_id"}  # the label each run of a for_each schedule gets


class Schedule(BaseModel):
    """A playbook run on a cron schedule (UTC), with the labels of the alert each run gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Names its slots in Redis: keep it stable.")
    cron: str = Field(description="Five fields, UTC: minute hour day-of-month month day-of-week (mon#1: first Monday).")
    playbook: str
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of each run's alert.")
    for_each: Literal["manifest_model"] | None = Field(
        None, description="manifest_model: one run per model of the manifest, its id as label model_id."
    )
    description: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        value = " ".join(value.split())
        # Five fields only: croniter would read a sixth as seconds, which no one means in a schedule.
        if len(value.split(" ")) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression of five fields (minute hour day-of-month month day-of-week), "
                "e.g. '0 9 * 1,4,7,10 mon#1'"
            )
        return value

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after``."""
        return next_slot(self.cron, after)

    def run_labels(self, playbook_alertname: str, item: str | None) -> dict[str, str]:
        """The labels of one run's alert: the schedule's, the alertname, and the for_each label."""
        labels = {"alertname": playbook_alertname, **self.labels}
        if self.for_each is not None and item is not None:
            labels[FOR_EACH_LABEL[self.for_each]] = item
        return labels


def next_slot(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` names, in UTC."""
    return _utc(croniter(cron, after.astimezone(UTC)).get_next(datetime))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class SlotPlan:
    """What one look at a schedule decides: the slot to fire now (on time or late) and the slots
    that were missed (too old to fire), newest first, at most ``MISSED_KEPT`` of them."""

    fire: datetime | None
    missed: tuple[datetime, ...]
    newest: datetime | None  # the newest slot handled here (fired or missed): the next look starts after it


def plan_slots(cron: str, *, after: datetime, now: datetime, catch_up_seconds: int) -> SlotPlan:
    """Which slots after ``after`` (the last slot handled) and up to ``now`` fire, and which were
    missed: the newest of them fires when it is less than ``catch_up_seconds`` old (late, after
    downtime); every other one is missed. Pure."""
    due: list[datetime] = []
    walk = croniter(cron, now.astimezone(UTC) + timedelta(microseconds=1))  # so that a slot at ``now`` is due
    while len(due) <= MISSED_KEPT:
        slot = _utc(walk.get_prev(datetime))
        if slot <= after:
            break
        due.append(slot)
    if not due:
        return SlotPlan(fire=None, missed=(), newest=None)
    newest = due[0]
    if (now - newest).total_seconds() < catch_up_seconds:
        return SlotPlan(fire=newest, missed=tuple(due[1 : MISSED_KEPT + 1]), newest=newest)
    return SlotPlan(fire=None, missed=tuple(due[:MISSED_KEPT]), newest=newest)


def slot_text(moment: datetime) -> str:
    """A slot as stored and shown: ISO 8601 in UTC to the second, e.g. 2026-01-05T09:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_slot(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- where schedules come from


def load_schedules(configured: Sequence[Schedule], playbooks_dir: Path) -> list[Schedule]:
    """The ``schedules`` setting, or when it is empty ``schedules.yaml`` in the playbooks directory
    (none when there is no such file). Raises ConfigError naming the file and schedule."""
    if configured:
        return _unique(list(configured), "RESPONDER_SCHEDULES")
    from responder.playbooks.catalog import SCHEDULES_FILE  # here: the settings import this module

    path = playbooks_dir / SCHEDULES_FILE
    if not path.exists():
        return []
    return _unique(read_schedules_file(path), str(path))


def read_schedules_file(path: Path) -> list[Schedule]:
    data = load_yaml(path, ConfigError)
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) != {"schedules"} or not isinstance(data["schedules"], list):
        raise ConfigError(f"{path}: must be a mapping with one key, 'schedules', a list of schedules")
    schedules = []
    for index, raw in enumerate(data["schedules"], start=1):
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        try:
            schedules.append(Schedule.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                message = "unknown key"
            raise ConfigError(f"{path}: schedule {index} {name!r}: {field + ': ' if field else ''}{message}") from None
    return schedules


def _unique(schedules: list[Schedule], where: str) -> list[Schedule]:
    seen: set[str] = set()
    for schedule in schedules:
        if schedule.name in seen:
            raise ConfigError(f"{where}: schedule name {schedule.name!r} is used twice")
        seen.add(schedule.name)
    return schedules


def check_against(schedules: Sequence[Schedule], catalog: Catalog) -> list[str]:
    """One line per schedule whose playbook is unknown or would refuse its runs' labels."""
    problems = []
    for schedule in schedules:
        playbook = catalog.playbooks.get(schedule.playbook)
        if playbook is None:
            known = ", ".join(sorted(catalog.playbooks)) or "none"
            problems.append(f"schedule {schedule.name!r}: no playbook named {schedule.playbook!r} (known: {known})")
            continue
        given = set(schedule.run_labels(playbook.alertname or playbook.name, "x"))
        if missing := [label for label in playbook.requires_labels if label not in given]:
            problems.append(
                f"schedule {schedule.name!r}: playbook {playbook.name!r} needs label(s) {', '.join(missing)}: "
                "set them in labels (or for_each: manifest_model for model_id)"
            )
    return problems


def require_valid(schedules: Sequence[Schedule], catalog: Catalog) -> None:
    """Raise ConfigError (exit 2) on the first problem ``check_against`` finds."""
    if problems := check_against(schedules, catalog):
        raise ConfigError(problems[0])
