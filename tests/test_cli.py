"""The `responder` command as ops and on-call meet it: manual runs, jobs list/show, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import run_cli
from tests.support.github import with_previous_version


def test_run_wait_prints_record_and_exits_0(cli_env, worker_process, fake_github):
    """`run --wait` queues a manual run, waits for a worker, prints the record, exits 0."""
    result = run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer",
                       "--label", "segment=apac", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.splitlines()[0]
    assert job_id.startswith("manual-")
    assert f"run {job_id}: SUCCEEDED" in result.stdout
    assert [(d.workflow, d.inputs["REASON"]) for d in fake_github.dispatches] == [
        ("model-retraining.yml", "model_drift_detected")
    ]


def test_run_wait_exits_1_when_the_run_fails(cli_env, worker_process, fake_github):
    """`run --wait` exits 1 when a step fails, and the record says why."""
    fake_github.fail_next("POST", r"/dispatches", status=422, body={"message": "Unexpected inputs provided"})
    result = run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer", "--wait")
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "Unexpected inputs provided" in result.stdout


def test_run_dry_run_plans_without_writing(cli_env, worker_process, fake_github):
    """`run --dry-run` records planned steps and writes nothing to GitHub."""
    with_previous_version(fake_github)  # the mismatch plans the rollback to the manifest's previous version
    result = run_cli(cli_env, "run", "model_integrity_failed", "--label", "model_id=fraud-scorer",
                       "--annotation", "deployed_digest=sha256:abc", "--dry-run", "--wait")
    assert result.returncode == 0, result.stderr
    assert "PLANNED  freeze-deploys" in result.stdout
    assert [r for r in fake_github.requests if r.method != "GET"] == []


def test_run_without_wait_prints_only_the_job_id(cli_env):
    """Without --wait, `run` prints the job id and returns at once."""
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit")
    assert result.returncode == 0
    assert len(result.stdout.split()) == 1


def test_run_rejects_unsafe_model_id(cli_env):
    """A model_id that is not a safe identifier is refused with one line and exit 1."""
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=../../etc")
    assert result.returncode == 1
    assert result.stderr.startswith("responder: error: label model_id is not a valid identifier")
    assert "Traceback" not in result.stderr


def test_run_unknown_playbook_names_the_known_ones(cli_env):
    """An unknown playbook exits 1 and lists the known playbooks."""
    result = run_cli(cli_env, "run", "nope", "--label", "model_id=x")
    assert result.returncode == 1
    assert "no playbook named 'nope'" in result.stderr
    assert "model_bias_alert" in result.stderr


def test_usage_error_exits_2(cli_env):
    """A malformed --label is a usage error: exit 2, no traceback."""
    result = run_cli(cli_env, "run", "model_bias_alert", "--label", "no-equals-sign")
    assert result.returncode == 2
    assert "expected key=value" in result.stderr
    assert "Traceback" not in result.stderr


def test_jobs_list_json_has_the_contract_fields(cli_env, worker_process):
    """`jobs list --json` gives id, playbook, alertname, model_id, status, enqueued_at, ended_at."""
    run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer", "--wait")
    result = run_cli(cli_env, "jobs", "list", "--json")
    assert result.returncode == 0
    [row] = json.loads(result.stdout)
    assert {"id", "playbook", "alertname", "model_id", "status", "enqueued_at", "ended_at"} <= set(row)
    assert (row["playbook"], row["alertname"], row["model_id"], row["status"]) == (
        "model_drift_detected", "model_drift_detected", "fraud-scorer", "succeeded"
    )


def test_jobs_list_filters_by_status(cli_env):
    """`jobs list --status queued` shows queued runs only."""
    run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer")
    queued = json.loads(run_cli(cli_env, "jobs", "list", "--status", "queued", "--json").stdout)
    failed = json.loads(run_cli(cli_env, "jobs", "list", "--status", "failed", "--json").stdout)
    assert [r["status"] for r in queued] == ["queued"]
    assert failed == []


def test_jobs_list_table_is_readable(cli_env):
    """`jobs list` prints a table with a header and one row per run."""
    job_id = run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit").stdout.strip()
    lines = run_cli(cli_env, "jobs", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "PLAYBOOK", "MODEL", "STATUS", "QUEUED", "TOOK"]
    assert lines[1].startswith(job_id)
    assert lines[1].split()[3] == "queued"


def tty_run(env: dict[str, str], *args: str) -> str:
    """Run `responder ARGS` with a pseudo-terminal as stdout, as a person at a terminal does."""
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "responder.cli", *args], env=env, stdout=child,
                            stderr=subprocess.PIPE)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_jobs_list_colours_statuses_on_a_terminal(cli_env):
    """On a TTY the status is coloured; NO_COLOR turns it off; a pipe never gets escape codes."""
    run_cli(cli_env, "run", "model_bias_alert", "--label", "model_id=credit-limit")
    assert "\x1b[36mqueued\x1b[0m" in tty_run(cli_env, "jobs", "list")
    assert "\x1b[" not in tty_run({**cli_env, "NO_COLOR": "1"}, "jobs", "list")
    assert "\x1b[" not in run_cli(cli_env, "jobs", "list").stdout


def test_jobs_list_shows_relative_times():
    """The QUEUED column reads like "5 min ago" and TOOK like "1.2 s", as on the runs page."""
    from datetime import UTC, datetime, timedelta

    from responder.alerts import Alert
    from responder.output import runs_table
    from responder.runs import RunRecord

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    alert = Alert(status="firing", labels={"alertname": "a", "model_id": "m"}, startsAt=now, fingerprint="f")
    queued = now - timedelta(minutes=5)
    record = RunRecord(id="r1", playbook="p", alert=alert, status="succeeded", enqueued_at=queued,
                       started_at=queued, ended_at=queued + timedelta(seconds=1.2))
    row = runs_table([record], now=now).splitlines()[1].split()
    assert row[3:] == ["succeeded", "5", "min", "ago", "1.2", "s"]


def test_jobs_show_json_has_steps(cli_env, worker_process):
    """`jobs show --json` gives the run with its alert and each step's fields."""
    job_id = run_cli(cli_env, "run", "model_drift_detected", "--label", "model_id=fraud-scorer",
                       "--wait").stdout.splitlines()[0]
    record = json.loads(run_cli(cli_env, "jobs", "show", job_id, "--json").stdout)
    assert {"id", "playbook", "status", "alert", "steps"} <= set(record)
    assert [s["name"] for s in record["steps"]] == ["dispatch-retraining", "open-incident"]
    assert {"name", "kind", "status", "started_at", "ended_at", "detail", "error"} <= set(record["steps"][0])
    assert record["steps"][1]["url"].startswith("http://github.fake/")


def test_jobs_show_unknown_id_exits_1_with_one_line(cli_env):
    """An unknown job id exits 1 with one readable line."""
    result = run_cli(cli_env, "jobs", "show", "does-not-exist")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no run with id 'does-not-exist'" in result.stderr


def test_redis_down_is_one_line_exit_3(cli_env):
    """With Redis unreachable the CLI says so in one line and exits 3."""
    env = {**cli_env, "RESPONDER_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run_cli(env, "jobs", "list")
    assert result.returncode == 3
    assert result.stderr.startswith("responder: error: cannot reach Redis")
    assert "Traceback" not in result.stderr


def test_version_flag(cli_env):
    """`responder --version` prints the version."""
    result = run_cli(cli_env, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("responder ")
