"""The deployment files are wired the way the README says."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from responder.settings import Settings, load_settings
from tests.conftest import ROOT


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def test_compose_redis_persists_every_write():
    """Redis in docker-compose runs with appendonly and fsync on every write."""
    command = service("redis")["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


def test_compose_runs_receiver_and_scalable_workers_on_that_redis():
    """Receiver and worker use the compose Redis and the secrets env file; workers run more than once."""
    for name in ("receiver", "worker"):
        assert service(name)["environment"]["RESPONDER_REDIS_URL"] == "redis://redis:6379/0"
        assert service(name)["env_file"] == ["responder.env"]
    assert service("receiver")["command"][0] == "serve"
    assert service("worker")["command"] == ["worker"]
    assert service("worker")["deploy"]["replicas"] >= 2


def test_every_long_running_service_has_a_healthcheck():
    """Redis, receiver, worker, Alertmanager and Prometheus each declare a healthcheck."""
    for name in ("redis", "receiver", "worker", "alertmanager", "prometheus"):
        assert service(name)["healthcheck"]["test"], name


def test_alertmanager_reaches_the_receiver_by_the_name_its_config_uses():
    """config/alertmanager.yml posts to http://responder:8080, which is the receiver's network alias."""
    config = yaml.safe_load((ROOT / "config" / "alertmanager.yml").read_text())
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert "http://responder:8080/webhooks/alertmanager" in urls
    assert "responder" in service("receiver")["networks"]["default"]["aliases"]


def test_mounted_config_files_exist():
    """Every ./config file the compose services mount is in the repository."""
    for name in ("alertmanager", "prometheus"):
        for volume in service(name)["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./config/"):
                assert (ROOT / source).is_file(), source


def test_worker_gets_time_for_a_warm_shutdown():
    """docker stop waits longer than the job timeout before it kills a worker."""
    grace = int(service("worker")["stop_grace_period"].removesuffix("s"))
    assert grace > Settings().job_timeout_seconds


def test_image_runs_as_a_non_root_user():
    """The Dockerfile switches to an unprivileged user."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_secrets_are_not_committed():
    """responder.env and secrets/ are ignored by git."""
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "responder.env" in ignored and "secrets/" in ignored


def test_docker_compose_accepts_the_file(tmp_path):
    """`docker compose config` parses the file (where the compose plugin is installed)."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed on this machine")
    (tmp_path / "responder.env").write_text("RESPONDER_WEBHOOK_TOKEN=x\n")
    result = subprocess.run([docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "--project-directory",
                             str(tmp_path), "config", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_example_config_documents_every_setting():
    """config/responder.example.yaml mentions every setting, each with a comment, and loads."""
    text = (ROOT / "config" / "responder.example.yaml").read_text()
    for name in Settings.model_fields:
        lines = [line for line in text.splitlines() if line.lstrip("# ").startswith(f"{name}:")]
        assert lines, f"{name} is missing from the example config"
        assert "#" in lines[0].split(f"{name}:", 1)[1] or lines[0].lstrip().startswith("#"), name
    assert load_settings(ROOT / "config" / "responder.example.yaml").github_repo == "acme/ml-platform"


def test_env_example_sets_only_known_settings():
    """Each variable in config/responder.env.example is a setting responder reads."""
    known = {f"RESPONDER_{name.upper()}" for name in Settings.model_fields}
    for line in (ROOT / "config" / "responder.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert name in known, name
            assert "#" not in value, f"{name}: compose would keep an inline comment in the value"
