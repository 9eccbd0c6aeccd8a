"""The deployment files say what the README promises."""

from __future__ import annotations

import yaml

from responder.settings import load_settings
from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_redis_persists_every_write():
    """Redis in docker-compose runs with appendonly and fsync on every write."""
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


def test_compose_runs_receiver_and_workers_on_that_redis():
    """Receiver and worker services use the compose Redis."""
    services = compose()["services"]
    assert services["receiver"]["command"][0] == "serve"
    assert services["worker"]["command"] == ["worker"]
    for name in ("receiver", "worker"):
        assert services[name]["environment"]["RESPONDER_REDIS_URL"] == "redis://redis:6379/0"


def test_example_config_loads():
    """config/responder.example.yaml is a valid settings file."""
    settings = load_settings(ROOT / "config" / "responder.example.yaml")
    assert settings.github_repo == "acme/ml-platform"
