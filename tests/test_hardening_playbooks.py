"""Playbook hardening: a template that does not parse is reported with its file and step, and a
dispatch's reason must be an identifier before anything is dispatched."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.errors import PlaybookError
from responder.playbooks.catalog import load_catalog, validate_path
from responder.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.support.playbooks import VALID, installed_cli, write
from tests.support.runs import run_manually

BROKEN = VALID.replace("name: dispatch\n", "name: dispatch-governance\n").replace(
    "reason: drift", "reason: '{{ alertname '"
)


# --- Template syntax errors name the file and the step ---


def test_validate_names_file_step_and_parameter_of_a_broken_template(tmp_path: Path) -> None:
    """validate_path reports a template syntax error with the file, the step and the parameter."""
    path = write(tmp_path, BROKEN)

    [problem] = validate_path(tmp_path)[1]
    [alone] = validate_path(path)[1]

    assert problem == alone
    assert problem.startswith(f"{path}: step 1 'dispatch-governance': with.reason: template '{{{{ alertname ' ")
    assert "does not parse" in problem


def test_loading_the_catalog_names_file_and_step_of_a_broken_template(tmp_path: Path) -> None:
    """load_catalog's error for a template that does not parse names the file and the step."""
    path = write(tmp_path, BROKEN)

    with pytest.raises(PlaybookError) as raised:
        load_catalog(tmp_path)

    assert str(raised.value).startswith(f"{path}: step 1 'dispatch-governance': ")


def test_a_broken_template_in_a_list_parameter_names_its_step(tmp_path: Path) -> None:
    """A broken template among a list parameter's items (incident labels) names the step too."""
    text = VALID + "  - name: open\n    kind: open_incident\n    with: {labels: [ok, '{% if %}']}\n"
    path = write(tmp_path, text)

    [problem] = validate_path(path)[1]

    assert problem.startswith(f"{path}: step 2 'open': with.labels: template '{{% if %}}' does not parse")


def test_validate_command_names_file_and_step_of_a_broken_template(tmp_path: Path) -> None:
    """`responder playbooks validate FILE` prints the file and the step of a broken template, exit 1."""
    path = write(tmp_path, BROKEN)

    result = installed_cli("playbooks", "validate", str(path), cwd=tmp_path)

    assert result.returncode == 1
    assert f"{path}: step 1 'dispatch-governance': with.reason: template" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_template_in_an_on_resolved_step_names_that_step(tmp_path: Path) -> None:
    """A broken template in an on_resolved step names it as such, not as the playbook's."""
    text = VALID + "on_resolved:\n  - name: note\n    kind: comment_incident\n    with: {text: '{{ x '}\n"
    path = write(tmp_path, text)

    [problem] = validate_path(path)[1]

    assert problem.startswith(f"{path}: on_resolved step 1 'note': with.text: template '{{{{ x ' does not parse")


# --- A dispatch's REASON is an identifier, as MODEL_ID and MODEL_VERSION are ---

PROBE = """\
name: probe
steps:
  - name: dispatch
    kind: dispatch_workflow
    with:
      workflow: model-governance.yml
      reason: "{{ annotations.reason }}"
  - name: open-incident
    kind: open_incident
"""




@pytest.mark.parametrize("reason", ["drift; rm -rf /", "$(id)", "a" * 129, "two\nlines", ""])
def test_a_rendered_reason_that_is_no_identifier_fails_the_step_before_dispatching(
    live_worker: Settings, fake_github: FakeGitHub, tmp_path: Path, reason: str
) -> None:
    """A REASON rendered from an annotation that is not an identifier fails its step; nothing is dispatched."""
    write(tmp_path, PROBE, "probe.yaml")

    record = run_manually(live_worker, "probe", {"alertname": "probe", "model_id": "credit-limit"}, {"reason": reason})

    dispatch, incident = record.steps
    assert (dispatch.status, incident.status) == ("failed", "ok")
    assert dispatch.error is not None and dispatch.error.startswith("REASON "), dispatch.error
    assert "is not a valid identifier" in dispatch.error
    assert fake_github.dispatches == []


def test_a_rendered_reason_that_is_an_identifier_is_dispatched(
    live_worker: Settings, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    """A REASON rendered from an annotation that is an identifier is dispatched as rendered."""
    write(tmp_path, PROBE, "probe.yaml")

    record = run_manually(
        live_worker, "probe", {"alertname": "probe", "model_id": "credit-limit"}, {"reason": "drift-2"}
    )

    assert [s.status for s in record.steps] == ["ok", "ok"]
    assert [d.inputs["REASON"] for d in fake_github.dispatches] == ["drift-2"]


def test_a_literal_reason_that_is_no_identifier_fails_validation(tmp_path: Path) -> None:
    """A dispatch reason written without a template must itself be an identifier: the load says so."""
    path = write(tmp_path, VALID.replace("reason: drift", "reason: drift detected"))

    [problem] = validate_path(path)[1]

    assert problem.startswith(f"{path}: step 1 'dispatch': with.reason: 'drift detected' is not a valid identifier")
