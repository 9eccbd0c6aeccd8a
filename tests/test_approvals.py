"""Approval-gated steps (issue 18, first slice: the CLI): a run waits at an `approval` step, holding
no worker, until one person of each group approves (distinct people, never the one who started it);
a rejection or the end of its time ends it. Real Redis, an RQ worker in this process, the GitHub fake
over HTTP, the `responder` CLI as a process."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from responder.alerts import Alert
from responder.intake import Intake
from responder.playbooks.catalog import load_catalog
from responder.runs import RunRecord, RunStore
from responder.settings import Settings
from responder.store.redis_keys import metrics_key
from tests.conftest import ROOT, Worker, make_settings, run_cli
from tests.fakes.github import FakeGitHub

APPROVERS = {"ml-lead": ["alice", "dave", "ops"], "responsible-ai": ["carol", "dave"]}
GATED = """
name: gated
description: a production change behind two approvals
steps:
  - name: approve
    kind: approval
    with:
      groups: [ml-lead, responsible-ai]
      ttl: {ttl}
  - name: set-freeze
    kind: freeze_deploys
    with:
      reason: approved change
"""


def gated_settings(redis_url: str, fake_github: FakeGitHub, tmp_path: Path, ttl: str = "1h") -> Settings:
    playbooks = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", playbooks)
    (playbooks / "gated.yaml").write_text(GATED.format(ttl=ttl))
    return make_settings(redis_url, github_api_url=fake_github.url, github_token=fake_github.token,
                         github_repo=fake_github.full_name, approvers=APPROVERS, playbooks_dir=str(playbooks))


@pytest.fixture
def settings(redis: Redis, redis_url: str, fake_github: FakeGitHub, tmp_path: Path) -> Settings:
    return gated_settings(redis_url, fake_github, tmp_path)


@pytest.fixture
def env(cli_env: dict[str, str], settings: Settings) -> dict[str, str]:
    playbooks = str(settings.playbooks_dir)
    return {**cli_env, "RESPONDER_APPROVERS": json.dumps(APPROVERS), "RESPONDER_PLAYBOOKS_DIR": playbooks}


def waiting_run(settings: Settings, redis: Redis) -> str:
    """A gated run started by `ops`, worked until it waits; its id."""
    alert = Alert(status="firing", labels={"alertname": "gated", "model_id": "fraud-scorer"}, annotations={},
                  startsAt=datetime.now(UTC), fingerprint=uuid.uuid4().hex[:16])
    record = Intake(redis, settings, load_catalog(settings.playbooks_dir)).enqueue_manual(
        "gated", alert, dry_run=False, requested_by="ops")
    Worker(settings).drain()
    return record.id


def record_of(settings: Settings, redis: Redis, run_id: str) -> RunRecord:
    return RunStore(redis, retention_seconds=settings.dedup_retention_seconds).get(run_id)


def answer(env: dict[str, str], verb: str, run_id: str, who: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, verb, run_id, "--as", who, *extra)


def test_a_run_waits_at_the_approval_step_holding_no_worker(settings, redis, fake_github):
    run_id = waiting_run(settings, redis)
    record = record_of(settings, redis, run_id)
    assert (record.status, [s.status for s in record.steps]) == ("awaiting_approval", ["waiting", "skipped"])
    assert "DEPLOY_FREEZE" not in fake_github.variables
    queue = Queue(settings.queue, connection=redis)
    assert (queue.job_ids, queue.scheduled_job_registry.get_job_ids()) == ([], [f"{run_id}-expiry"])


def test_one_approval_from_each_group_lets_the_run_go_on(settings, env, redis, fake_github):
    run_id = waiting_run(settings, redis)
    first = answer(env, "approve", run_id, "alice")
    assert (first.returncode, first.stdout.strip()) == (
        0, f"approved run {run_id} as alice; still waiting for responsible-ai")
    second = answer(env, "approve", run_id, "carol")
    assert second.returncode == 0 and "the run goes on" in second.stdout
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert record.status == "succeeded", record.error
    assert record.step("approve").detail == "approved by alice (ml-lead), carol (responsible-ai)"
    assert fake_github.variables["DEPLOY_FREEZE"] == "true"
    assert [(a.who, a.how) for a in record.approvals] == [("alice", "cli"), ("carol", "cli")]


def test_one_person_in_both_groups_counts_once(settings, env, redis):
    run_id = waiting_run(settings, redis)
    result = answer(env, "approve", run_id, "dave")
    assert result.stdout.strip().endswith("still waiting for responsible-ai")
    assert record_of(settings, redis, run_id).status == "awaiting_approval"


@pytest.mark.parametrize(
    ("who", "why"),
    [("ops", "ops started this run and cannot approve it"),
     ("mallory", "mallory is not an approver of ml-lead or responsible-ai (RESPONDER_APPROVERS)")],
)
def test_the_requester_and_non_approvers_are_refused(settings, env, redis, who, why):
    run_id = waiting_run(settings, redis)
    result = answer(env, "approve", run_id, who)
    assert (result.returncode, result.stderr.strip()) == (1, f"responder: error: run {run_id}: {why}")
    assert record_of(settings, redis, run_id).approvals == []


def test_an_approver_answers_once(settings, env, redis):
    run_id = waiting_run(settings, redis)
    answer(env, "approve", run_id, "alice")
    again = answer(env, "approve", run_id, "alice")
    refused = f"responder: error: run {run_id}: alice has already answered"
    assert (again.returncode, again.stderr.strip()) == (1, refused)


def test_a_rejection_ends_the_run_and_skips_the_rest(settings, env, redis, fake_github):
    run_id = waiting_run(settings, redis)
    result = answer(env, "reject", run_id, "carol", "--reason", "evidence incomplete")
    assert result.returncode == 0
    Worker(settings).drain()
    record = record_of(settings, redis, run_id)
    assert (record.status, record.step("approve").error) == ("failed", "rejected by carol: evidence incomplete")
    assert record.step("set-freeze").status == "skipped"
    assert "DEPLOY_FREEZE" not in fake_github.variables


def test_no_answer_in_time_ends_the_run_as_expired(redis, redis_url, fake_github, tmp_path):
    settings = gated_settings(redis_url, fake_github, tmp_path, ttl="1s")
    run_id = waiting_run(settings, redis)
    Worker(settings).drain_scheduled(timeout=15)
    record = record_of(settings, redis, run_id)
    assert record.status == "expired"
    assert (record.step("approve").error or "").startswith("expired: no approval from ml-lead and responsible-ai")
    assert record.step("set-freeze").status == "skipped"


def test_a_run_that_does_not_wait_cannot_be_approved(settings, env, redis):
    run_id = waiting_run(settings, redis)
    answer(env, "reject", run_id, "carol", "--reason", "no")
    Worker(settings).drain()
    result = answer(env, "approve", run_id, "alice")
    assert (result.returncode, result.stderr.strip()) == (
        1, f"responder: error: run {run_id} is not waiting for approval (it is failed)")


def test_waiting_runs_are_listed(settings, env, redis):
    run_id = waiting_run(settings, redis)
    listed = json.loads(run_cli(env, "jobs", "list", "--status", "awaiting_approval", "--json").stdout)
    assert [r["id"] for r in listed] == [run_id]


def test_validate_refuses_an_approver_group_nobody_is_in(env, settings, cli_env):
    """`playbooks validate` names an approval step whose group RESPONDER_APPROVERS does not fill."""
    gated = str(Path(settings.playbooks_dir) / "gated.yaml")
    without = {**env, "RESPONDER_APPROVERS": json.dumps({"ml-lead": ["alice"]})}
    result = run_cli(without, "playbooks", "validate", gated)
    assert result.returncode == 1
    assert "step 'approve': approver group 'responsible-ai' has nobody in RESPONDER_APPROVERS" in result.stderr
    assert run_cli(env, "playbooks", "validate", gated).returncode == 0


def test_the_expiry_check_of_an_approved_run_changes_nothing(redis, redis_url, fake_github, tmp_path, cli_env):
    """Approved before its time ran out: when the expiry check comes due, the run stays as it ended."""
    settings = gated_settings(redis_url, fake_github, tmp_path, ttl="2s")
    playbooks = str(settings.playbooks_dir)
    env = {**cli_env, "RESPONDER_APPROVERS": json.dumps(APPROVERS), "RESPONDER_PLAYBOOKS_DIR": playbooks}
    run_id = waiting_run(settings, redis)
    answer(env, "approve", run_id, "alice")
    answer(env, "approve", run_id, "carol")
    Worker(settings).drain()
    done = record_of(settings, redis, run_id)
    Worker(settings).drain_scheduled(timeout=15)  # the expiry check runs
    after = record_of(settings, redis, run_id)
    assert (after.status, after.attempts, after.ended_at) == ("succeeded", done.attempts, done.ended_at)


# --------------------------------------------------------------------------- the ticket and /metrics

TICKETED = """
name: gated
description: a production change behind two approvals, on the model's incident ticket
steps:
  - name: open-incident
    kind: open_incident
  - name: approve
    kind: approval
    with:
      groups: [ml-lead, responsible-ai]
      ttl: {ttl}
  - name: set-freeze
    kind: freeze_deploys
"""


def ticketed_settings(redis_url: str, fake_github: FakeGitHub, tmp_path: Path, ttl: str = "1h") -> Settings:
    settings = gated_settings(redis_url, fake_github, tmp_path, ttl=ttl)
    (Path(settings.playbooks_dir) / "gated.yaml").write_text(TICKETED.format(ttl=ttl))
    return settings


def test_each_answer_is_said_on_the_incident_ticket(redis, redis_url, fake_github, tmp_path, cli_env):
    settings = ticketed_settings(redis_url, fake_github, tmp_path)
    playbooks = str(settings.playbooks_dir)
    env = {**cli_env, "RESPONDER_APPROVERS": json.dumps(APPROVERS), "RESPONDER_PLAYBOOKS_DIR": playbooks}
    run_id = waiting_run(settings, redis)
    answer(env, "approve", run_id, "alice", "--reason", "evidence attached")
    answer(env, "reject", run_id, "carol", "--reason", "bias report missing")
    [ticket] = fake_github.issues
    comments = [c.replace("\\", "") for c in ticket.comments[1:]]  # after the step's question
    assert [c.split(" (cli)")[0].split(": ", 1)[1] for c in comments] == ["Approved by alice", "Rejected by carol"]
    assert "bias report missing" in comments[1]


def test_the_waiting_step_asks_on_the_incident_ticket(redis, redis_url, fake_github, tmp_path):
    settings = ticketed_settings(redis_url, fake_github, tmp_path)
    run_id = waiting_run(settings, redis)
    [ticket] = fake_github.issues
    [question] = [c.replace("\\", "").strip() for c in ticket.comments]
    assert question.startswith(f"Run {run_id} waits at step approve for approval by one person of each of "
                               "ml-lead and responsible-ai until ")
    assert question.endswith(f"Comment /approve, or /reject and a reason, here, or run: responder approve {run_id} "
                             f"(run `{run_id}`)")


def test_an_expired_approval_is_said_on_the_ticket(redis, redis_url, fake_github, tmp_path):
    settings = ticketed_settings(redis_url, fake_github, tmp_path, ttl="1s")
    run_id = waiting_run(settings, redis)
    Worker(settings).drain_scheduled(timeout=15)
    [ticket] = fake_github.issues
    [_question, comment] = ticket.comments
    assert f"Approval of run {run_id} expired: no approval from ml-lead and responsible-ai" in comment.replace("\\", "")


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_metrics_count_approval_steps_by_outcome(settings, env, redis, verb):
    run_id = waiting_run(settings, redis)
    if verb == "approve":
        answer(env, "approve", run_id, "alice")
        answer(env, "approve", run_id, "carol")
    else:
        answer(env, "reject", run_id, "carol", "--reason", "no")
    Worker(settings).drain()
    outcome = "approved" if verb == "approve" else "rejected"
    assert redis.hgetall(metrics_key("approvals")) == {f"gated|{outcome}".encode(): b"1"}
