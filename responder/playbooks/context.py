"""What a step can see and use while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from responder.alerts import Alert
from responder.integrations.base import GitHubGateway, Tracker
from responder.manifest import Manifest
from responder.playbooks import templating
from responder.runs import RunRecord
from responder.settings import Settings


@dataclass
class StepContext:
    run: RunRecord
    settings: Settings
    github: GitHubGateway
    tracker: Tracker
    redis: Redis
    _manifest: Manifest | None = field(default=None, repr=False)

    @property
    def alert(self) -> Alert:
        return self.run.alert

    @property
    def model_id(self) -> str:
        # Checked by Alert.check_actionable before any run is queued.
        return self.alert.labels["model_id"]

    def template_vars(self) -> dict[str, Any]:
        s = self.settings
        return {
            "alertname": self.alert.alertname,
            "model_id": self.alert.model_id,
            "labels": dict(self.alert.labels),
            "annotations": dict(self.alert.annotations),
            "starts_at": self.alert.startsAt.isoformat(),
            "settings": {
                "governance_workflow": s.governance_workflow,
                "retraining_workflow": s.retraining_workflow,
                "freeze_variable": s.freeze_variable,
                "github_ref": s.github_ref,
                "github_repo": s.github_repo or "",
            },
        }

    def render(self, template: str) -> str:
        return templating.render(template, self.template_vars())

    def manifest(self) -> Manifest:
        """The manifest on the configured ref, read once per run."""
        if self._manifest is None:
            path = self.settings.manifest_path
            self._manifest = Manifest.parse(self.github.read_file(path), source=path)
        return self._manifest
