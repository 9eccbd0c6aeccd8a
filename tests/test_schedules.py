"""Scheduled playbook runs: the quarterly slot, catch-up and missed slots, `responder schedules
list`, and real `responder scheduler` processes racing for one slot on a real Redis."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue

from responder.playbooks.catalog import load_catalog
from responder.runs import RunStore
from responder.scheduler import ScheduleLedger, Scheduler
from responder.schedules import Schedule, next_slot, plan_slots, slot_text
from responder.store.redis_keys import schedule_slot_key, schedule_state_key
from tests.conftest import ROOT, make_settings, run_cli, wait_until
from tests.support.github import RETRAINING

QUARTERLY = "0 9 * 1,4,7,10 mon#1"
MODELS = ["credit-limit", "fraud-scorer"]  # the sample manifest the GitHub fake serves


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def first_quarterly_monday_after(moment: datetime) -> datetime:
    """The rule written out without cron: 09:00 UTC on the first Monday of Jan, Apr, Jul or Oct."""
    year, month = moment.year, moment.month
    while True:
        if month in (1, 4, 7, 10):
            first = datetime(year, month, 1, 9, tzinfo=UTC)
            slot = first + timedelta(days=(0 - first.weekday()) % 7)
            if slot > moment:
                return slot
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2025, 1, 1), utc(2025, 1, 6, 9)),  # a new year: its first Monday
        (utc(2025, 1, 6, 8, 59), utc(2025, 1, 6, 9)),  # the morning of the slot
        (utc(2025, 1, 6, 9), utc(2025, 4, 7, 9)),  # the slot itself: the next quarter's
        (utc(2025, 2, 3, 9), utc(2025, 4, 7, 9)),  # a first Monday outside the quarter's months
        (utc(2025, 4, 14, 9), utc(2025, 7, 7, 9)),  # a second Monday of a quarter month
        (utc(2025, 9, 1, 9), utc(2025, 10, 6, 9)),
        (utc(2026, 6, 1), utc(2026, 7, 6, 9)),
        (utc(2025, 12, 31, 23, 59), utc(2026, 1, 5, 9)),  # across the year
    ],
)
def test_the_quarterly_schedule_fires_on_the_first_monday_of_each_quarter_at_nine_utc(after, expected):
    """`0 9 * 1,4,7,10 mon#1` names 09:00 UTC on the first Monday of January, April, July and October."""
    assert expected == next_slot(QUARTERLY, after)
    assert first_quarterly_monday_after(after) == next_slot(QUARTERLY, after)


@pytest.mark.parametrize(
    ("last", "now", "fire", "missed"),
    [
        ("2025-01-06T09:00:00Z", "2025-04-07T08:00:00Z", None, []),  # nothing due yet
        ("2025-01-06T09:00:00Z", "2025-04-07T09:00:00Z", "2025-04-07T09:00:00Z", []),  # on time
        ("2025-01-06T09:00:00Z", "2025-04-07T14:59:00Z", "2025-04-07T09:00:00Z", []),  # 5 h 59 late: fires
        ("2025-01-06T09:00:00Z", "2025-04-07T15:00:00Z", None, ["2025-04-07T09:00:00Z"]),  # 6 h late: missed
        # down for two quarters: the newest slot fires late, the one before is missed
        ("2025-01-06T09:00:00Z", "2025-07-07T10:00:00Z", "2025-07-07T09:00:00Z", ["2025-04-07T09:00:00Z"]),
        ("2025-04-07T09:00:00Z", "2025-05-01T00:00:00Z", None, []),  # already handled
    ],
)
def test_catch_up_fires_a_slot_missed_by_less_than_the_window_and_records_older_ones(last, now, fire, missed):
    """After downtime the newest slot fires late when it is under the window (6 h) old; others are missed."""
    plan = plan_slots(
        QUARTERLY, after=datetime.fromisoformat(last), now=datetime.fromisoformat(now), catch_up_seconds=6 * 3600
    )
    assert fire == (slot_text(plan.fire) if plan.fire else None)
    assert missed == [slot_text(m) for m in plan.missed]


def test_the_shipped_schedule_is_the_quarterly_baseline_per_manifest_model(cli_env):
    """`responder schedules list --json` shows the shipped schedule and the next quarterly slot."""
    result = run_cli(cli_env, "schedules", "list", "--json")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    expected = slot_text(first_quarterly_monday_after(datetime.now(UTC)))
    assert {
        "name": "quarterly-baseline",
        "cron": QUARTERLY,
        "playbook": "quarterly-baseline",
        "for_each": "manifest_model",
        "next": expected,
        "last_fired": None,
        "missed": [],
    } == {k: row[k] for k in ("name", "cron", "playbook", "for_each", "next", "last_fired", "missed")}


def test_schedules_list_shows_the_next_quarterly_slot(cli_env):
    """`responder schedules list` prints a table with each schedule's next fire time in UTC."""
    result = run_cli(cli_env, "schedules", "list")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert "NEXT" in header
    assert row.startswith("quarterly-baseline")
    assert slot_text(first_quarterly_monday_after(datetime.now(UTC))) in row


@pytest.mark.parametrize(
    ("schedules_yaml", "env_schedules", "says"),
    [
        ('schedules: [{name: q, cron: "61 9 * * *", playbook: quarterly-baseline}]', None, "is not a cron expression"),
        ('schedules: [{name: q, cron: "0 9 * * * *", playbook: quarterly-baseline}]', None, "of five fields"),
        (None, [{"name": "q", "cron": "0 9 * * 1", "playbook": "nope"}], "no playbook named 'nope'"),
        (None, [{"name": "q", "cron": "0 9 * * 1", "playbook": "quarterly-baseline"}], "needs label(s) model_id"),
        (None, [{"name": "q", "cron": "0 9 * * mon#9", "playbook": "quarterly-baseline"}], "RESPONDER_SCHEDULES"),
    ],
)
def test_a_bad_schedule_is_one_line_and_exit_2(cli_env, tmp_path, schedules_yaml, env_schedules, says):
    """A bad cron expression or an unknown playbook stops `schedules list` and `scheduler` with one line, exit 2."""
    playbooks = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", playbooks)
    env = {**cli_env, "RESPONDER_PLAYBOOKS_DIR": str(playbooks)}
    if schedules_yaml is not None:
        (playbooks / "schedules.yaml").write_text(schedules_yaml)
    if env_schedules is not None:
        env["RESPONDER_SCHEDULES"] = json.dumps(env_schedules)
    for command in (["schedules", "list"], ["scheduler"]):
        result = run_cli(env, *command, timeout=30)
        assert 2 == result.returncode, (command, result.stderr)
        assert 1 == len(result.stderr.splitlines()), result.stderr
        assert result.stderr.startswith("responder: error: ")
        assert says in result.stderr


def schedules_env(cli_env: dict[str, str], *schedules: dict[str, object]) -> dict[str, str]:
    return {**cli_env, "RESPONDER_SCHEDULES": json.dumps(list(schedules))}


def fired(*schedulers) -> list[dict[str, object]]:
    return [event for s in schedulers for event in s.events("schedule.fired")]


def test_two_schedulers_racing_for_one_slot_run_it_once_per_model(cli_env, services, fake_github):
    """Two `responder scheduler` processes waiting for the same slot queue one run per model between
    them, and a worker dispatches model-retraining.yml once per model with REASON quarterly-baseline."""
    env = schedules_env(
        cli_env,
        {"name": "race", "cron": "* * * * *", "playbook": "quarterly-baseline", "for_each": "manifest_model"},
    )
    if 60 - datetime.now(UTC).second < 10:  # both must be up and waiting before the slot
        time.sleep(60 - datetime.now(UTC).second + 0.5)
    slot = next_slot("* * * * *", datetime.now(UTC))
    a = services(env, "scheduler-a", "scheduler")
    b = services(env, "scheduler-b", "scheduler")
    logs = (a.log, b.log)
    wait_until(lambda: a.events("scheduler.started") and b.events("scheduler.started"), "both schedulers", logs=logs)
    assert datetime.now(UTC) < slot, "the schedulers came up after the slot"

    [event] = wait_until(lambda: fired(a, b), "the slot to fire", logs=logs, timeout=75)
    a.stop()
    b.stop()
    assert [event] == fired(a, b)
    assert slot_text(slot) == event["slot"]
    assert 2 == len(event["runs"])
    for scheduler in (a, b):  # SIGTERM stops each cleanly
        assert 0 == scheduler.proc.returncode
        assert scheduler.events("scheduler.stopped")

    worker = services(env, "worker", "worker")

    def retrainings() -> list[tuple[str, str]]:
        return sorted(
            (d.inputs["MODEL_ID"], d.inputs["REASON"]) for d in fake_github.dispatches if d.workflow == RETRAINING
        )

    wait_until(lambda: len(retrainings()) >= 2, "two retraining dispatches", logs=(worker.log,))
    time.sleep(1)  # a third would have come by now
    assert [(model, "quarterly-baseline") for model in MODELS] == retrainings()


def test_a_scheduler_starting_after_downtime_fires_a_recent_slot_late_and_records_an_older_one_missed(
    cli_env, services, redis, redis_url
):
    """On start, a slot missed by less than the catch-up window runs late; an older one is recorded as
    missed, logged, shown by `schedules list`, and not run."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    recent, old = now - timedelta(minutes=10), now - timedelta(hours=7)  # the window is 6 h
    daily = {"playbook": "quarterly-baseline", "for_each": "manifest_model"}
    env = schedules_env(
        cli_env,
        {"name": "recent", "cron": f"{recent.minute} {recent.hour} * * *", **daily},
        {"name": "old", "cron": f"{old.minute} {old.hour} * * *", **daily},
    )
    ledger = ScheduleLedger(redis, fired_keep_seconds=3600)
    for name, slot in (("recent", recent), ("old", old)):  # both fired the day before, then the scheduler was down
        ledger.note_seen(name, slot - timedelta(days=2))
        ledger.fired(name, slot - timedelta(days=1), slot - timedelta(days=1))

    scheduler = services(env, "scheduler", "scheduler")
    [event] = wait_until(lambda: scheduler.events("schedule.fired"), "the recent slot", logs=(scheduler.log,))
    [missed] = wait_until(lambda: scheduler.events("schedule.missed"), "the missed slot", logs=(scheduler.log,))
    scheduler.stop()

    assert ("recent", slot_text(recent)) == (event["schedule"], event["slot"])
    assert 600 <= float(str(event["late_seconds"])) < 700
    assert ("old", [slot_text(old)]) == (missed["schedule"], missed["slots"])
    runs = RunStore(redis, retention_seconds=3600).recent(limit=10)
    assert sorted(MODELS) == sorted(r.model_id for r in runs)
    assert {"schedule:recent"} == {r.requested_by for r in runs}

    listed = {row["name"]: row for row in json.loads(run_cli(env, "schedules", "list", "--json").stdout)}
    assert (slot_text(recent), []) == (listed["recent"]["last_fired"], listed["recent"]["missed"])
    assert (slot_text(old - timedelta(days=1)), [slot_text(old)]) == (
        listed["old"]["last_fired"],
        listed["old"]["missed"],
    )


def test_a_slot_fired_again_after_a_crash_queues_no_run_twice(redis, redis_url):
    """A scheduler that died before marking its slot fired leaves it to the next one, which queues
    only the runs not queued yet: each run's id is derived from (schedule, slot, model)."""
    settings = make_settings(redis_url)
    schedule = Schedule(name="q", cron=QUARTERLY, playbook="quarterly-baseline", for_each="manifest_model")
    scheduler = Scheduler(
        settings, [schedule], redis=redis, catalog=load_catalog(ROOT / "playbooks"), manifest_models=lambda: MODELS
    )
    slot = utc(2026, 1, 5, 9)
    scheduler.start(slot - timedelta(days=1))
    scheduler.tick(slot + timedelta(seconds=1))
    queued = sorted(r.id for r in RunStore(redis, retention_seconds=3600).recent(limit=10))
    # The crash: neither the claim (its lease ran out) nor the schedule's state survived it.
    redis.delete(schedule_slot_key("q", slot_text(slot)))
    redis.hdel(schedule_state_key("q"), "last_slot", "last_fired", "fired_at")

    scheduler.tick(slot + timedelta(minutes=6))

    assert 2 == len(queued)
    assert queued == sorted(r.id for r in RunStore(redis, retention_seconds=3600).recent(limit=10))
    assert 2 == Queue(settings.queue, connection=redis).count
    assert slot == scheduler.ledger.state("q").last_fired


def test_a_schedule_needs_a_known_for_each():
    """for_each takes manifest_model only."""
    with pytest.raises(ValueError, match="manifest_model"):
        Schedule(name="q", cron="0 9 * * 1", playbook="p", for_each="models")  # type: ignore[arg-type]
