"""The GitHub side of the tests: workflow names, how late the fake lists a dispatched run, and what
the fake received."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import MANIFEST
from tests.fakes.github import FakeGitHub

GOVERNANCE = "model-governance.yml"
RETRAINING = "model-retraining.yml"
LIST_LAG_SECONDS = 2  # GitHub lists a new run seconds after its dispatch
LOOKUP_SECONDS = 3  # RESPONDER_DISPATCH_LOOKUP_SECONDS here
MANIFEST_READ = "/contents/"  # the digest check's manifest read: read-only, so safe to interrupt


def workflow_comments(fake: FakeGitHub) -> list[str]:
    """The comments about workflow runs, with Markdown's escapes taken out."""
    return [c.replace("\\", "") for issue in fake.issues for c in issue.comments if "Workflow" in c]


def in_flight(fake: FakeGitHub, path_part: str) -> Callable[[], bool]:
    """True once the fake has received a request whose path contains ``path_part``."""
    return lambda: any(path_part in r.path for r in fake.requests)


def manifest(versions: dict[str, str]) -> dict[str, Any]:
    """The sample manifest with the given models at the given versions."""
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    for model in data["models"]:
        if model["modelId"] in versions:
            version = versions[model["modelId"]]
            model["version"] = model["modelVersion"] = version
            model["artifact"]["uri"] = f"s3://ml-artifacts/{model['modelId']}/{version}/model.bin"
    return data


def with_previous_version(fake: FakeGitHub) -> None:
    """The manifest's history: fraud-scorer 2026.10.3 (credit-limit 3.1.0), then the sample manifest."""
    fake.set_manifest(manifest({"fraud-scorer": "2026.10.3", "credit-limit": "3.1.0"}))
    fake.set_manifest(json.loads(MANIFEST.read_text()))
