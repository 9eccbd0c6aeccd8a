"""Playbook loading and validation: typos fail with the file and the step named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from responder.errors import PlaybookError
from responder.playbooks.catalog import load_catalog, validate_path
from tests.conftest import ROOT, TEST_APPROVERS
from tests.support.playbooks import INSTALLED_CLI, VALID, installed_cli, write


def problems_for(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, text)
    return validate_path(tmp_path)[1]


def test_shipped_playbooks_are_valid():
    """The shipped playbooks load: one per alert, the manual rollback and freeze playbooks, and the
    quarterly baseline's (run by a schedule)."""
    catalog = load_catalog(ROOT / "playbooks")
    assert {name: p.alertname for name, p in catalog.playbooks.items()} == {
        "model_integrity_failed": "model_integrity_failed",
        "model_bias_alert": "model_bias_alert",
        "model_drift_detected": "model_drift_detected",
        "rollback": None,
        "freeze-set": None,
        "freeze-lift": None,
        "needs-triage": None,
        "storm": None,
        "quarterly-baseline": None,
    }


def test_unknown_step_key_names_file_and_step(tmp_path):
    """A misspelt step parameter is reported with the file, the step and the key."""
    [problem] = problems_for(tmp_path, VALID.replace("reason: drift", "reasn: drift\n      reason: drift"))
    assert str(tmp_path / "sample.yaml") in problem
    assert "step 1 'dispatch'" in problem
    assert "unknown key 'with.reasn'" in problem


def test_unknown_step_kind_is_an_error(tmp_path):
    """An unknown step kind is reported with the known kinds."""
    [problem] = problems_for(tmp_path, VALID.replace("kind: dispatch_workflow", "kind: launch_rockets"))
    assert "unknown step kind 'launch_rockets'" in problem
    assert "dispatch_workflow" in problem


def test_unknown_playbook_key_is_an_error(tmp_path):
    """An unknown top-level key is an error naming it."""
    [problem] = problems_for(tmp_path, VALID + "retries: 3\n")
    assert "unknown key 'retries'" in problem


def test_missing_required_parameter_is_an_error(tmp_path):
    """A dispatch step without a workflow names the missing parameter."""
    text = VALID.replace('      workflow: "{{ settings.retraining_workflow }}"\n', "")
    [problem] = problems_for(tmp_path, text)
    assert "missing 'with.workflow'" in problem


def test_template_syntax_error_is_caught_at_load(tmp_path):
    """A template that does not parse fails validation, not a run."""
    problems = problems_for(tmp_path, VALID.replace("reason: drift", "reason: '{{ labels.segment '"))
    assert any("does not parse" in p for p in problems)


def test_duplicate_step_names_are_an_error(tmp_path):
    """Two steps with one name are rejected (checkpoints are per step name)."""
    text = VALID + """  - name: dispatch
    kind: open_incident
"""
    [problem] = problems_for(tmp_path, text)
    assert "used twice" in problem


def test_two_playbooks_for_one_alertname_are_an_error(tmp_path):
    """Only one playbook may answer an alertname."""
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID.replace("name: sample", "name: other"), "b.yaml")
    problems = validate_path(tmp_path)[1]
    assert any("also handled by" in p for p in problems)


def test_invalid_yaml_is_an_error(tmp_path):
    """A file that is not YAML is reported with its name."""
    [problem] = problems_for(tmp_path, "name: [unclosed\n")
    assert "not valid YAML" in problem


def test_load_catalog_raises_with_every_problem(tmp_path):
    """Loading an invalid directory raises PlaybookError listing the problems."""
    write(tmp_path, VALID.replace("kind: dispatch_workflow", "kind: nope"))
    with pytest.raises(PlaybookError, match="unknown step kind 'nope'"):
        load_catalog(tmp_path)


def test_when_condition_must_be_labels(tmp_path):
    """A `when` with an unknown key is rejected."""
    when = "    kind: dispatch_workflow\n    when: {severity: critical}\n"
    text = VALID.replace("    kind: dispatch_workflow\n", when)
    [problem] = problems_for(tmp_path, text)
    assert "unknown key 'when.severity'" in problem


def responder_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "responder.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_validate_command_exits_1_with_readable_errors(tmp_path):
    """`responder playbooks validate DIR` prints each problem and exits 1, without a traceback."""
    write(tmp_path, VALID.replace("kind: dispatch_workflow", "kind: nope"))
    result = responder_cli("playbooks", "validate", str(tmp_path))
    assert result.returncode == 1
    assert "unknown step kind 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_command_accepts_shipped_playbooks():
    """`responder playbooks validate` exits 0 for the shipped playbooks, with their approver groups configured."""
    shipped = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yaml") if p.stem != "schedules")
    result = responder_cli("playbooks", "validate", str(ROOT / "playbooks"),
                           env={"RESPONDER_APPROVERS": json.dumps(TEST_APPROVERS)})
    assert result.returncode == 0, result.stderr
    assert f"{len(shipped)} playbook(s) valid" in result.stdout


def test_list_command_shows_playbooks_and_steps():
    """`responder playbooks list` shows each playbook with its alertname and steps."""
    result = subprocess.run([sys.executable, "-m", "responder.cli", "playbooks", "list"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0
    assert "model_integrity_failed" in result.stdout
    assert "freeze-deploys, verify-digest, dispatch-governance, open-incident" in result.stdout


# --- Playbooks from anywhere: the defaults ship in the package ---

def test_installed_command_lists_the_shipped_playbooks_outside_the_repository(tmp_path):
    """`responder playbooks list` in a folder with no playbooks/ lists the packaged defaults."""
    result = installed_cli("playbooks", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yaml"))
    for name in ("model_integrity_failed", "rollback", "freeze-lift"):
        assert name in shipped
        assert name in result.stdout


def test_playbooks_dir_setting_replaces_the_shipped_playbooks(tmp_path):
    """RESPONDER_PLAYBOOKS_DIR names the playbooks to load instead of the packaged ones."""
    own = tmp_path / "own"
    write(own, VALID)
    result = installed_cli("playbooks", "list", cwd=tmp_path, RESPONDER_PLAYBOOKS_DIR=str(own))
    assert result.returncode == 0, result.stderr
    assert "sample" in result.stdout
    assert "model_integrity_failed" not in result.stdout


def test_missing_playbooks_dir_setting_is_named_in_the_error(tmp_path):
    """A RESPONDER_PLAYBOOKS_DIR that does not exist: one line naming the setting, exit 1."""
    result = installed_cli("playbooks", "validate", cwd=tmp_path, RESPONDER_PLAYBOOKS_DIR=str(tmp_path / "nope"))
    assert result.returncode == 1
    assert f"{tmp_path / 'nope'}: no such file or directory (set RESPONDER_PLAYBOOKS_DIR)" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_a_file_that_is_no_playbook_says_so_without_blaming_the_setting(tmp_path):
    """`playbooks validate README.md` says it is not a playbook file; it names no setting."""
    result = installed_cli("playbooks", "validate", str(ROOT / "README.md"), cwd=tmp_path)
    assert result.returncode == 1
    assert "README.md: not a playbook file" in result.stderr
    assert "RESPONDER_PLAYBOOKS_DIR" not in result.stderr


def test_validate_a_missing_path_names_the_path(tmp_path):
    """`playbooks validate PATH` for a path that does not exist says so, not the setting."""
    result = installed_cli("playbooks", "validate", "typo.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "typo.yaml: no such file or directory" in result.stderr
    assert "RESPONDER_PLAYBOOKS_DIR" not in result.stderr


def test_validate_one_playbook_file(tmp_path):
    """`playbooks validate FILE` checks that file alone and names it."""
    path = write(tmp_path, VALID)
    result = installed_cli("playbooks", "validate", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 playbook(s) valid" in result.stdout
    assert "sample" in result.stdout


def test_validate_one_broken_playbook_file_names_the_step(tmp_path):
    """A broken file given by path: its problem, with the step, and exit 1."""
    path = write(tmp_path, VALID.replace("kind: dispatch_workflow", "kind: nope"))
    result = installed_cli("playbooks", "validate", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "step 1 'dispatch': unknown step kind 'nope'" in result.stderr


def test_validate_one_file_finds_its_includes_beside_it(tmp_path):
    """A file that includes another playbook is checked against the playbooks in its folder."""
    includes = "name: outer\nsteps:\n  - {name: inner, kind: include, with: {playbook: sample}}\n"
    path = write(tmp_path, includes, name="outer.yaml")
    alone = installed_cli("playbooks", "validate", str(path), cwd=tmp_path)
    write(tmp_path, VALID)
    beside = installed_cli("playbooks", "validate", str(path), cwd=tmp_path)
    assert alone.returncode == 1
    assert "includes unknown playbook 'sample'" in alone.stderr
    assert beside.returncode == 0, beside.stderr


def test_the_wheel_carries_every_shipped_playbook(tmp_path):
    """A non-editable install has the playbooks too: the built wheel holds each playbooks/*.yaml."""
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True, timeout=120)
    [wheel] = tmp_path.glob("responder-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {Path(n).name for n in archive.namelist() if n.startswith("responder/default_playbooks/")}
    assert {p.name for p in (ROOT / "playbooks").glob("*.yaml")} == packaged


def test_installed_command_runs_a_shipped_playbook_outside_the_repository(cli_env, tmp_path):
    """`responder run rollback …` in a folder with no playbooks/ queues the packaged playbook."""
    env = {k: v for k, v in cli_env.items() if k != "RESPONDER_PLAYBOOKS_DIR"}
    result = subprocess.run([INSTALLED_CLI, "run", "rollback", "--label", "model_id=fraud-detector"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    shown = subprocess.run([INSTALLED_CLI, "jobs", "show", result.stdout.strip(), "--json"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert '"playbook": "rollback"' in shown.stdout
