"""The GitHub Actions workflows in config/github-workflows/ take what responder dispatches, pass
actionlint (with shellcheck) and zizmor, and upload the runbook's evidence.

The linters come with the test extras (their binaries sit beside this interpreter) and a missing
one fails the test, as in test_config_files. The scripts the workflows run themselves (input
validation, the evidence gates, the quarterly dispatch) run here under bash with the real jq.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.manifest import Manifest
from responder.settings import Settings
from tests.conftest import ROOT

WORKFLOWS = ROOT / "config" / "github-workflows"
GOVERNANCE = WORKFLOWS / str(Settings.model_fields["governance_workflow"].default)
RETRAINING = WORKFLOWS / str(Settings.model_fields["retraining_workflow"].default)
QUARTERLY = WORKFLOWS / "model-retraining-quarterly.yml"
DISPATCHED = [GOVERNANCE, RETRAINING]
ALL = sorted(WORKFLOWS.glob("*.yml"))
EVIDENCE = {
    GOVERNANCE.name: {"model-integrity.json", "bias-report.json", "drift-scan.json", "security-scan.json"},
    RETRAINING.name: {"training-summary.json", "bias-report.json", "security-scan.json"},
}
INPUTS_EXPRESSION = re.compile(r"\$\{\{\s*(github\.event\.)?inputs\.")
DIGEST = "5d41402abc4b2a76b9719d911017c592ae4d6e1f5c3b2a190817263544536271"


def tool(name: str) -> Path:
    """A linter installed by the test extras, beside this interpreter."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.fail(f"{path} is missing: install the test extras (scripts/test)")
    return path


def load(path: Path) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML 1.1 reads the key `on` as true
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job["steps"]:
            yield job_id, step


def uploads(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for _, step in steps(workflow) if step.get("uses", "").startswith("actions/upload-artifact@")]


def run_step(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a `run:` script as GitHub runs `shell: bash`, with only ``env`` (and PATH) set."""
    if shutil.which("jq") is None:
        pytest.fail("jq is not on PATH; install it with: apt-get install jq")
    environment = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(cwd / "github-output"), **env}
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=30)


def stub(bin_dir: Path, name: str, script: str) -> str:
    """Put an executable ``name`` running ``script`` (sh) in ``bin_dir``; return a PATH that finds it first."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / name).chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def outputs(cwd: Path) -> dict[str, str]:
    path = cwd / "github-output"
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def input_check(path: Path) -> str:
    [step] = load(path)["jobs"]["inputs"]["steps"]
    return str(step["run"])


def evidence_gates() -> Iterator[tuple[Path, str, str, str]]:
    """(workflow, job, evidence file, script) of each job's "status is pass" step."""
    for path in DISPATCHED:
        for job_id, job in load(path)["jobs"].items():
            for step in job["steps"]:
                if "jq -er" in step.get("run", ""):
                    yield path, job_id, job["env"]["EVIDENCE"], step["run"]


def summary_gate() -> str:
    [step] = [step for step in load(RETRAINING)["jobs"]["train"]["steps"] if step.get("id") == "summary"]
    return str(step["run"])


def summary(**changes: Any) -> dict[str, Any]:
    base = {
        "modelId": "fraud-scorer",
        "version": "2026.12.1",
        "artifact": {"uri": "s3://ml-artifacts/fraud-scorer/2026.12.1/model.onnx", "sha256": DIGEST},
        "metrics": {"auc": 0.93},
        "status": "pass",
    }
    return {**base, **changes}


# --------------------------------------------------------------------------- the files and the linters


def test_responder_default_workflow_names_are_shipped():
    """config/github-workflows/ holds the two files responder dispatches by default."""
    assert ["model-governance.yml", "model-retraining.yml"] == [GOVERNANCE.name, RETRAINING.name]
    assert GOVERNANCE.is_file()
    assert RETRAINING.is_file()


def test_workflows_pass_actionlint_with_shellcheck():
    """actionlint, running shellcheck on every `run:` script, reports nothing."""
    command = [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), "-pyflakes=", *ALL]
    result = subprocess.run(command, cwd=WORKFLOWS, capture_output=True, text=True, timeout=120)
    assert 0 == result.returncode, f"actionlint:\n{result.stdout}{result.stderr}"


def test_workflows_have_no_zizmor_findings():
    """zizmor's offline audits find nothing, code smells included (the pedantic persona)."""
    command = [tool("zizmor"), "--offline", "--no-config", "--persona=pedantic", "--color=never", *ALL]
    result = subprocess.run(command, cwd=WORKFLOWS, capture_output=True, text=True, timeout=120)
    assert 0 == result.returncode, f"zizmor exited {result.returncode}:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- what responder relies on


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_dispatch_inputs_are_exactly_model_id_version_and_reason(path: Path):
    """workflow_dispatch takes exactly MODEL_ID, MODEL_VERSION and REASON: required strings."""
    inputs = load(path)["on"]["workflow_dispatch"]["inputs"]
    assert {"MODEL_ID", "MODEL_VERSION", "REASON"} == set(inputs)
    for name, spec in inputs.items():
        assert (True, "string") == (spec.get("required"), spec.get("type")), name


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_workflow_dispatch_is_the_only_trigger(path: Path):
    """No schedule or push runs: those would have no inputs, so no model in their title."""
    assert ["workflow_dispatch"] == list(load(path)["on"])


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_run_name_names_the_model_as_a_word_of_its_own(path: Path):
    """run-name holds ${{ inputs.MODEL_ID }} between spaces or ends, so the run's title names the
    model as a whole word, which responder needs to attribute the run."""
    run_name = load(path)["run-name"]
    assert re.search(r"(?:^|\s)\$\{\{ inputs\.MODEL_ID \}\}(?:\s|$)", run_name), run_name


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_run_title_follows_the_convention(path: Path):
    """The workflow is named as its file, and its runs are titled
    "<name> <MODEL_ID> <MODEL_VERSION> (<REASON>)" (what tests/fakes/github.py renders too)."""
    workflow = load(path)
    assert path.stem == workflow["name"]
    expected = f"{path.stem} ${{{{ inputs.MODEL_ID }}}} ${{{{ inputs.MODEL_VERSION }}}} (${{{{ inputs.REASON }}}})"
    assert expected == workflow["run-name"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_run_script_expands_inputs(path: Path):
    """Inputs reach `run:` scripts only as environment variables, never as ${{ inputs.X }}."""
    for job_id, step in steps(load(path)):
        assert not INPUTS_EXPRESSION.search(step.get("run", "")), f"{job_id}: {step.get('name')}"


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_uploads_the_runbook_evidence_under_its_file_name(path: Path):
    """Governance uploads model-integrity, bias-report, drift-scan and security-scan .json; retraining
    uploads training-summary, bias-report and security-scan .json; each artifact is named after its file."""
    uploaded = [(step["with"]["name"], Path(step["with"]["path"]).name) for step in uploads(load(path))]
    assert EVIDENCE[path.name] == {name for name, _ in uploaded}
    assert all(name == file for name, file in uploaded), uploaded


@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_evidence_is_uploaded_when_its_check_fails(path: Path):
    """Each upload runs unless the run was cancelled, and a missing evidence file is an error."""
    for step in uploads(load(path)):
        assert "!cancelled()" in step.get("if", ""), step["with"]["name"]
        assert "error" == step["with"]["if-no-files-found"], step["with"]["name"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_checkouts_leave_no_credentials_behind(path: Path):
    """Every actions/checkout sets persist-credentials: false."""
    checkouts = [step for _, step in steps(load(path)) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path):
    """Each job sets timeout-minutes (GitHub's default lets a hung job hold a runner for 6 hours)."""
    jobs = load(path)["jobs"]
    assert [] == [job_id for job_id, job in jobs.items() if "timeout-minutes" not in job]


# --------------------------------------------------------------------------- the workflows' own scripts


@pytest.mark.parametrize(
    ("model_id", "version", "reason", "ok"),
    [
        ("fraud-scorer", "2026.11.1", "model_integrity_failed", True),
        ("credit-limit", "3.2.0", "rollback", True),
        ("fraud-scorer; rm -rf ~", "2026.11.1", "rollback", False),
        ("fraud-scorer", "../2026.11.1", "rollback", False),
        ("fraud-scorer", "2026.11.1\n", "rollback", False),
        ("fraud-scorer", "2026.11.1", "", False),
        ("fraud-scorer", "2026.11.1", "two\nlines", False),
    ],
    ids=["integrity", "rollback", "shell-in-id", "path-in-version", "newline-in-version", "no-reason", "two-lines"],
)
@pytest.mark.parametrize("path", DISPATCHED, ids=lambda p: p.name)
def test_input_check_admits_identifiers_and_a_one_line_reason(tmp_path, path, model_id, version, reason, ok):
    """The first job fails unless MODEL_ID and MODEL_VERSION are identifiers and REASON is one line."""
    result = run_step(input_check(path), tmp_path, MODEL_ID=model_id, MODEL_VERSION=version, REASON=reason)
    assert ok == (0 == result.returncode), result.stdout + result.stderr


@pytest.mark.parametrize(
    ("evidence", "ok"),
    [
        ('{"status": "pass", "checks": []}', True),
        ('{"status": "fail"}', False),
        ('{"result": "pass"}', False),
        ('[{"status": "pass"}]', False),
        ("not json", False),
    ],
    ids=["pass", "fail", "no-status", "array", "not-json"],
)
@pytest.mark.parametrize(
    ("evidence_file", "script"),
    [(file, script) for _, _, file, script in evidence_gates()],
    ids=[f"{path.stem}-{job}" for path, job, _, _ in evidence_gates()],
)
def test_evidence_gate_passes_only_a_top_level_status_of_pass(tmp_path, evidence_file, script, evidence, ok):
    """A check job passes only when its evidence is a JSON object whose status is "pass"."""
    (tmp_path / "evidence").mkdir()
    (tmp_path / evidence_file).write_text(evidence)
    result = run_step(script, tmp_path, EVIDENCE=evidence_file)
    assert ok == (0 == result.returncode), result.stdout + result.stderr


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"modelId": "credit-limit"}, False),
        ({"version": "2026.11.1"}, False),
        ({"version": "2026.12.1\nversion=evil"}, False),
        ({"version": "2026.12.1\n"}, False),
        ({"artifact": {"uri": "s3://x", "sha256": "sha256:" + DIGEST}}, False),
        ({"artifact": {"uri": "s3://x"}}, False),
        ({"metrics": None}, False),
        ({"status": "fail"}, False),
    ],
    ids=[
        "new-version",
        "other-model",
        "same-version",
        "newline",
        "trailing-newline",
        "prefixed-digest",
        "no-digest",
        "no-metrics",
        "fail",
    ],
)
def test_training_summary_gate_checks_model_new_version_digest_metrics_and_status(tmp_path, changes, ok):
    """The training job passes only for a summary of this model with a new version, a bare sha256,
    metrics and status "pass"; then it hands the new version to the evidence jobs."""
    (tmp_path / "training-summary.json").write_text(json.dumps(summary(**changes)))
    env = {"MODEL_ID": "fraud-scorer", "MODEL_VERSION": "2026.11.1", "EVIDENCE": "training-summary.json"}
    result = run_step(summary_gate(), tmp_path, **env)
    assert ok == (0 == result.returncode), result.stdout + result.stderr
    assert ({"version": "2026.12.1"} if ok else {}) == outputs(tmp_path)


@pytest.mark.parametrize(
    ("event", "day", "due"),
    [("schedule", "5", "true"), ("schedule", "12", "false"), ("workflow_dispatch", "12", "true")],
)
def test_quarterly_retraining_runs_on_the_first_monday_or_by_hand(tmp_path, event, day, due):
    """The cron fires every Monday of a quarter's first month; only the first one (day 1-7) goes on."""
    path = stub(tmp_path / "bin", "date", f"echo {day}")
    [check] = [step["run"] for step in load(QUARTERLY)["jobs"]["dispatch"]["steps"] if step.get("id") == "due"]
    result = run_step(check, tmp_path, GITHUB_EVENT_NAME=event, PATH=path)
    assert 0 == result.returncode, result.stderr
    assert {"due": due} == outputs(tmp_path)


def run_quarterly_dispatch(cwd: Path, models: list[dict[str, str]]) -> tuple[int, list[str]]:
    """Run the quarterly dispatch step on a manifest of ``models`` with a stub gh; its exit status
    and the gh command lines it ran."""
    manifest = cwd / "artifacts" / "ml" / "model-manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"schemaVersion": 1, "models": models}))
    calls = cwd / "gh-calls"
    path = stub(cwd / "bin", "gh", f'echo "$*" >> {calls}')
    dispatch = next(step["run"] for _, step in steps(load(QUARTERLY)) if "gh workflow run" in step.get("run", ""))
    result = run_step(dispatch, cwd, GITHUB_REF_NAME="main", PATH=path)
    return result.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_quarterly_retraining_dispatches_each_manifest_model_at_its_deployed_version(tmp_path):
    """One `gh workflow run model-retraining.yml` per model in the manifest, at the version responder
    takes for deployed (modelVersion, else version), with REASON quarterly-baseline."""
    models = [
        {"modelId": "fraud-scorer", "version": "2026.11.1", "modelVersion": "2026.11.1"},
        {"modelId": "credit-limit", "version": "3.2.0"},
        {"modelId": "churn", "version": "1.0.0", "modelVersion": "1.1.0"},
        {"modelId": "ltv", "version": "2.0.0", "modelVersion": ""},
    ]
    returncode, calls = run_quarterly_dispatch(tmp_path, models)
    assert 0 == returncode
    expected = [
        f"workflow run {RETRAINING.name} --ref main -f MODEL_ID={entry.modelId} "
        f"-f MODEL_VERSION={entry.current_version} -f REASON=quarterly-baseline"
        for entry in Manifest.parse(json.dumps({"models": models}), source="test").models
    ]
    assert expected == calls


def test_quarterly_retraining_dispatches_nothing_when_a_manifest_entry_is_not_an_identifier(tmp_path):
    """Every model id and version is checked before the first dispatch, so a bad entry stops them all."""
    models = [{"modelId": "fraud-scorer", "version": "2026.11.1"}, {"modelId": "credit limit", "version": "3.2.0"}]
    returncode, calls = run_quarterly_dispatch(tmp_path, models)
    assert 0 != returncode
    assert [] == calls
