"""Playbook loading and validation: typos fail with the file and the step named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from responder.errors import PlaybookError
from responder.playbooks.catalog import load_catalog, validate_directory
from tests.conftest import ROOT

VALID = """\
name: sample
alertname: model_drift_detected
steps:
  - name: dispatch
    kind: dispatch_workflow
    with:
      workflow: "{{ settings.retraining_workflow }}"
      reason: drift
"""


def write(directory: Path, text: str, name: str = "sample.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def problems_for(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, text)
    return validate_directory(tmp_path)[1]


def test_shipped_playbooks_are_valid():
    """The shipped playbooks load: one per alert, and the manual rollback and freeze playbooks."""
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
    problems = validate_directory(tmp_path)[1]
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


def responder_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "responder.cli", *args], capture_output=True, text=True, timeout=60)


def test_validate_command_exits_1_with_readable_errors(tmp_path):
    """`responder playbooks validate DIR` prints each problem and exits 1, without a traceback."""
    write(tmp_path, VALID.replace("kind: dispatch_workflow", "kind: nope"))
    result = responder_cli("playbooks", "validate", str(tmp_path))
    assert result.returncode == 1
    assert "unknown step kind 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_command_accepts_shipped_playbooks():
    """`responder playbooks validate` exits 0 for the shipped playbooks."""
    result = responder_cli("playbooks", "validate", str(ROOT / "playbooks"))
    assert result.returncode == 0
    assert "8 playbook(s) valid" in result.stdout


def test_list_command_shows_playbooks_and_steps():
    """`responder playbooks list` shows each playbook with its alertname and steps."""
    result = subprocess.run([sys.executable, "-m", "responder.cli", "playbooks", "list"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0
    assert "model_integrity_failed" in result.stdout
    assert "freeze-deploys, verify-digest, dispatch-governance, open-incident" in result.stdout
