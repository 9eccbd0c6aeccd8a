"""Playbook files written for a test, and the installed `responder` command that loads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

INSTALLED_CLI = str(Path(sys.executable).with_name("responder"))


def write(directory: Path, text: str, name: str = "sample.yaml") -> Path:
    """Write playbook ``text`` to ``directory``/``name`` (creating the directory); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def installed_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `responder` command, run in ``cwd`` with no playbooks setting but ``env``."""
    environ = {k: v for k, v in os.environ.items() if k != "RESPONDER_PLAYBOOKS_DIR"} | env
    return subprocess.run([INSTALLED_CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=environ)
