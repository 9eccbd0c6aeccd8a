"""The deployment files are wired the way the README says."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import pytest
import redis
import yaml

from responder.settings import Settings
from responder.settings_loading import load_settings
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


# --------------------------------------------------------------------------- the `ha` profile

HA_RESPONDERS = ("receiver-ha-a", "receiver-ha-b", "worker-ha")
SENTINELS = ("sentinel-a", "sentinel-b", "sentinel-c")


def ha_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if "ha" in s.get("profiles", [])}


def test_ha_profile_has_master_replica_three_sentinels_two_receivers_two_workers():
    """`--profile ha` adds Redis master and replica, three Sentinels, two receivers and two workers, and
    nothing without a profile changed its role: the default stack still uses the plain `redis`."""
    services = ha_services()
    assert {"redis-master", "redis-replica", *SENTINELS, *HA_RESPONDERS} == set(services)
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1 : replica.index("--replicaof") + 3] == ["redis-master", "6379"]
    for name in ("redis-master", "redis-replica"):
        command = services[name]["command"]
        assert command[command.index("--appendfsync") + 1] == "always", name
    assert sum(1 for s in services.values() if s.get("command", [None])[0] == "serve") == 2
    workers = [s for s in services.values() if s.get("command") == ["worker"]]
    assert 2 == sum(s.get("deploy", {}).get("replicas", 1) for s in workers)
    default = {name for name, spec in compose()["services"].items() if not spec.get("profiles")}
    assert {"redis", "receiver", "worker", "scheduler", "alertmanager", "prometheus"} == default


def test_ha_services_use_the_sentinels():
    """The ha receivers and workers find the master through the three Sentinels, by the name they monitor it
    under; every RESPONDER_* variable they set is a setting, and together they load."""
    known = {f"RESPONDER_{name.upper()}" for name in Settings.model_fields}
    monitored = sentinel_monitor()
    for name in HA_RESPONDERS:
        environment = service(name)["environment"]
        assert set(environment) <= known, name
        assert environment["RESPONDER_REDIS_SENTINELS"].split(",") == [f"{s}:26379" for s in SENTINELS]
        assert environment["RESPONDER_REDIS_SENTINEL_MASTER"] == monitored[0]
        assert environment["RESPONDER_REDIS_URL"].startswith("redis://")
        assert set(service(name)["depends_on"]) == set(SENTINELS)
        assert service(name)["healthcheck"]["test"], name
    assert int(service("worker-ha")["stop_grace_period"].removesuffix("s")) > Settings().job_timeout_seconds


def test_ha_settings_load(monkeypatch: pytest.MonkeyPatch):
    """The ha receivers' environment is a configuration responder starts with."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"RESPONDER_{name.upper()}", raising=False)
    for name, value in service("receiver-ha-a")["environment"].items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.redis_sentinel_master == "responder" and len(settings.redis_sentinels) == 3


def sentinel_monitor() -> list[str]:
    """The arguments of config/sentinel.conf's `sentinel monitor NAME HOST PORT QUORUM`."""
    [line] = [
        line.split()
        for line in (ROOT / "config" / "sentinel.conf").read_text().splitlines()
        if line.startswith("sentinel monitor ")
    ]
    return line[2:]


def test_sentinels_monitor_the_master_service_with_quorum_two():
    """config/sentinel.conf monitors the compose service redis-master by name; two of the three must agree."""
    name, host, port, quorum = sentinel_monitor()
    assert (name, host, port, quorum) == ("responder", "redis-master", "6379", "2")
    assert host in compose()["services"]
    assert "sentinel resolve-hostnames yes" in (ROOT / "config" / "sentinel.conf").read_text()
    for sentinel in SENTINELS:
        command = " ".join(service(sentinel)["command"])
        # Sentinel rewrites its config: it runs a writable copy, not the read-only mount.
        [mount] = service(sentinel)["volumes"]
        source, target, mode = mount.split(":")
        assert source == "./config/sentinel.conf" and mode == "ro"
        assert f"cp {target} /data/sentinel.conf" in command
        assert "redis-server /data/sentinel.conf --sentinel" in command


def test_every_depends_on_target_and_mounted_file_exists():
    """Each depends_on names a service of the file, in a profile the dependent also runs in (or none), and
    every ./ file any service mounts is in the repository."""
    services = compose()["services"]
    for name, spec in services.items():
        for target in spec.get("depends_on", {}):
            assert target in services, f"{name} depends on {target}"
            assert set(services[target].get("profiles", [])) <= set(spec.get("profiles", [])), (name, target)
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./config/"):
                assert (ROOT / source).is_file(), f"{name}: {source}"


def test_sentinel_config_runs_in_a_real_sentinel(tmp_path):
    """redis-server --sentinel accepts config/sentinel.conf (its master pointed at a local redis-server on a
    free port instead of the compose host name) and monitors `responder` with quorum 2."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not on PATH; install it with: apt-get install redis-server (or run scripts/test)")
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    master_port, sentinel_port = ports
    text = (ROOT / "config" / "sentinel.conf").read_text()
    text = text.replace("redis-master 6379", f"127.0.0.1 {master_port}").replace("port 26379", f"port {sentinel_port}")
    (tmp_path / "sentinel.conf").write_text(text)
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    processes = [subprocess.Popen([server, "--port", str(master_port), *common], stdout=subprocess.DEVNULL)]
    try:
        processes.append(
            subprocess.Popen([server, str(tmp_path / "sentinel.conf"), "--sentinel", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL)
        )
        sentinel = redis.Redis(port=sentinel_port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                master = sentinel.sentinel_master("responder")
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert (master["port"], master["quorum"]) == (master_port, 2)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
