"""A check step that finds a problem (the integrity alert's digest mismatch) shows it as a finding
in every view: the run record, `jobs show` and `jobs list` (text and JSON), the runs page, the
ticket on either tracker and /metrics. The step's status stays ok: it ran fine.

Real Redis, a real RQ worker in-process, and the HTTP fakes of GitHub, Jira and the toggle service.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis import Redis

from responder.alerts import Alert, Notification
from responder.intake import Intake
from responder.output import run_text
from responder.playbooks.catalog import load_catalog
from responder.receiver import create_app
from responder.runs import RunRecord, RunStore, StepRecord
from responder.settings import Settings
from tests.conftest import WEBHOOK_TOKEN, Worker, integration_settings, load_example, run_cli, tickets_of
from tests.support.pages import Page
from tests.support.runs import MANIFEST_DIGEST, integrity

BEARER = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def run(settings: Settings, redis: Redis, payload: dict[str, Any]) -> RunRecord:
    """Hand the notification to the intake, run its one job on a real worker, return its record."""
    [decision] = Intake(redis, settings, load_catalog(settings.playbooks_dir)).accept(
        Notification.model_validate(payload)
    )
    assert decision.job_id is not None
    Worker(settings).drain()
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(decision.job_id)


# --- The run record ---


def test_a_digest_mismatch_is_a_finding_beside_status_ok(settings, redis):
    """The verify-digest step of a mismatch is recorded with status ok and finding "mismatch"."""
    step = run(settings, redis, integrity()).step("verify-digest")
    assert step is not None
    assert ("ok", "mismatch") == (step.status, step.finding)


def test_matching_digests_are_no_finding(settings, redis):
    """Digests that match leave the step's finding None."""
    step = run(settings, redis, integrity(MANIFEST_DIGEST)).step("verify-digest")
    assert step is not None
    assert ("ok", None) == (step.status, step.finding)


def test_a_missing_digest_is_a_finding(settings, redis):
    """Without a deployed_digest integrity cannot be confirmed: the finding is "missing"."""
    step = run(settings, redis, integrity(None)).step("verify-digest")
    assert step is not None
    assert ("ok", "missing") == (step.status, step.finding)


def test_a_run_with_a_finding_still_succeeds(settings, redis):
    """A finding is not a failure: the run (a missing digest, which proposes no rollback) succeeds with no error."""
    record = run(settings, redis, integrity(None))
    assert ("succeeded", None) == (record.status, record.error)


def test_a_step_with_a_finding_is_done_so_a_retry_does_not_repeat_it():
    """A step that ran and found a problem is a checkpoint like any ok step."""
    step = StepRecord(name="verify-digest", kind="verify_manifest_digest", status="ok", finding="mismatch")
    assert step.done


def test_a_record_stored_before_findings_existed_reads_as_no_finding(settings, redis):
    """A stored record whose steps have no "finding" field still reads; the finding is None."""
    store = RunStore(redis, retention_seconds=3600)
    record = run(settings, redis, integrity())
    document = json.loads(record.model_dump_json())
    for step in document["steps"]:
        del step["finding"]
    redis.set(store.key(record.id), json.dumps(document))
    assert [None] * len(document["steps"]) == [s.finding for s in store.get(record.id).steps]


# --- The CLI ---


def test_jobs_show_json_has_the_finding_beside_status_ok(settings, redis, cli_env):
    """`jobs show --json` has "finding": "mismatch" next to "status": "ok" on verify-digest."""
    record = run(settings, redis, integrity())
    shown = json.loads(run_cli(cli_env, "jobs", "show", record.id, "--json").stdout)
    [step] = [s for s in shown["steps"] if s["name"] == "verify-digest"]
    assert ("ok", "mismatch") == (step["status"], step["finding"])


def test_jobs_show_says_finding_not_ok_for_the_step(settings, redis, cli_env):
    """`jobs show` prints the step as FINDING, never OK, with the mismatch detail under it."""
    record = run(settings, redis, integrity())
    lines = run_cli(cli_env, "jobs", "show", record.id).stdout.splitlines()
    [index] = [i for i, line in enumerate(lines) if " verify-digest " in line]
    assert lines[index].split()[0] == "FINDING"
    assert lines[index + 1].strip().startswith("digest mismatch: deployed 9f2c4e0d8b7a…")


def test_jobs_show_header_names_the_findings(settings, redis, cli_env):
    """The run's header line counts its findings and a findings line names them."""
    record = run(settings, redis, integrity(None))
    lines = run_cli(cli_env, "jobs", "show", record.id).stdout.splitlines()
    assert f"run {record.id}: SUCCEEDED, 1 FINDING" == lines[0]
    assert "  findings   verify-digest: missing" in lines


def test_jobs_list_json_lists_each_runs_findings(settings, redis, cli_env):
    """`jobs list --json` gives each run its findings as "step: finding", [] when there are none."""
    found = run(settings, redis, integrity())
    clean = run(settings, redis, load_example("bias-firing.json"))
    rows = json.loads(run_cli(cli_env, "jobs", "list", "--json").stdout)
    assert {found.id: ["verify-digest: mismatch"], clean.id: []} == {r["id"]: r["findings"] for r in rows}


def test_jobs_list_table_marks_a_run_with_a_finding(settings, redis, cli_env):
    """In the `jobs list` table a run with a finding reads "succeeded, 1 FINDING"."""
    record = run(settings, redis, integrity(None))
    [row] = [line for line in run_cli(cli_env, "jobs", "list").stdout.splitlines() if line.startswith(record.id)]
    assert "succeeded, 1 FINDING" in row


def test_a_finding_is_bold_red_on_a_terminal():
    """With colour on, the step's FINDING label is bold red, not the ok green."""
    alert = Alert(
        status="firing", labels={"alertname": "a"}, startsAt=datetime(2026, 11, 26, tzinfo=UTC), fingerprint="f"
    )
    step = StepRecord(name="verify-digest", kind="verify_manifest_digest", status="ok", finding="mismatch")
    record = RunRecord(id="r1", playbook="model_integrity_failed", status="succeeded", alert=alert, steps=[step])
    [step_line] = [line for line in run_text(record, colour=True).splitlines() if "verify-digest [" in line]
    assert "    \x1b[1;31mFINDING \x1b[0m verify-digest [verify_manifest_digest]" == step_line


# --- The runs page and /metrics ---


@pytest.fixture
async def receiver(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    return await aiohttp_client(
        create_app(settings, load_catalog(settings.playbooks_dir), token=SecretStr(WEBHOOK_TOKEN))
    )


async def page(client: TestClient, path: str) -> Page:
    response = await client.get(path, headers=BEARER)
    assert response.status == 200
    return Page(await response.text())


async def test_run_page_shows_the_step_as_a_finding_not_ok(receiver, settings, redis):
    """On the run's page verify-digest wears a "finding: mismatch" badge, not the ok one."""
    record = run(settings, redis, integrity())
    shown = await page(receiver, f"/runs/{record.id}")
    [step] = [s for s in shown.steps if "verify-digest" in s]
    assert step.startswith("⚠ finding: mismatch verify-digest")


async def test_run_page_lists_the_findings_above_the_steps(receiver, settings, redis):
    """The run's page says, before its steps, that checks found a problem and which."""
    record = run(settings, redis, integrity(None))
    above_steps = (await page(receiver, f"/runs/{record.id}")).text.split("Steps")[0]
    assert "⚠ 1 finding ✓ succeeded" in above_steps
    assert "Checks found a problem verify-digest: missing" in above_steps


async def test_runs_list_marks_the_run_with_a_finding(receiver, settings, redis):
    """In the runs list the run with a finding carries a finding badge; a clean run does not."""
    found = run(settings, redis, integrity(None))
    clean = run(settings, redis, load_example("bias-firing.json"))
    rows = (await page(receiver, "/runs")).rows
    assert {f"/runs/{found.id}": "⚠ finding ✓ succeeded", f"/runs/{clean.id}": "✓ succeeded"} == {
        row["href"]: row["status"] for row in rows
    }


async def test_findings_are_counted_on_metrics(receiver, settings, redis):
    """/metrics counts findings by playbook, step and finding."""
    run(settings, redis, integrity())
    response = await receiver.get("/metrics")
    samples = [
        sample
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
        if sample.name == "responder_step_findings_total"
    ]
    assert [({"playbook": "model_integrity_failed", "step": "verify-digest", "finding": "mismatch"}, 1.0)] == [
        (s.labels, s.value) for s in samples
    ]


# --- The ticket, on both trackers ---


@pytest.mark.parametrize(
    ("tracker", "verdict", "row"),
    [
        ("github", "**❌ digests DO NOT match**", "| verify\\-digest | ❌ FINDING: mismatch | digest mismatch"),
        ("jira", "*❌ digests DO NOT match*", "|verify\\-digest|❌ FINDING: mismatch|digest mismatch"),
    ],
)
def test_ticket_states_the_mismatch(redis, redis_url, fake_github, fake_toggles, fake_jira, tracker, verdict, row):
    """The incident ticket says in bold that the digests do not match, and its step table shows the
    finding where the status goes (Markdown on GitHub, wiki markup on Jira)."""
    run(integration_settings(redis_url, tracker, fake_github, fake_toggles, fake_jira), redis, integrity())
    [ticket] = tickets_of(tracker, fake_github, fake_jira)
    assert verdict in ticket.body
    assert row in ticket.body
