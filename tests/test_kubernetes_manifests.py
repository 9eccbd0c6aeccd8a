"""deploy/kubernetes/ is valid for a current Kubernetes and wired together: every manifest passes
kubernetes-validate in strict mode (the schemas of Kubernetes KUBERNETES_VERSION, shipped in the
package: offline); the ServiceMonitor, a CRD it has no schema for, is checked field by field here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from responder.settings import Settings
from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))
KUBERNETES_VERSION = "1.37"  # the newest kubernetes-validate 1.37 ships schemas for
KNOWN_ENV = {f"RESPONDER_{name.upper()}" for name in Settings.model_fields}
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # no schema in kubernetes-validate: see below


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def resource(kind: str, name: str) -> dict[str, Any]:
    [found] = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def deployments() -> list[dict[str, Any]]:
    return [r for r in resources() if r["kind"] == "Deployment"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_the_manifests_are_there():
    """Every resource the issue lists is in deploy/kubernetes/, with a README."""
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources()}
    assert {
        ("Namespace", "responder"),
        ("ConfigMap", "responder-settings"),
        ("ConfigMap", "responder-playbooks"),
        ("Secret", "responder-secrets"),
        ("Deployment", "responder-receiver"),
        ("Service", "responder"),
        ("PodDisruptionBudget", "responder-receiver"),
        ("Deployment", "responder-worker"),
        ("Deployment", "responder-scheduler"),
        ("ServiceMonitor", "responder"),
    } <= kinds
    assert (KUBERNETES / "README.md").is_file()
    # The only Secret shipped is the example, with placeholders.
    secrets = [path.name for path in MANIFESTS if any(d["kind"] == "Secret" for d in documents(path))]
    assert ["secret.example.yaml"] == secrets
    assert all("CHANGE_ME" in value for value in resource("Secret", "responder-secrets")["stringData"].values())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_passes_kubernetes_validate_strict(path: Path):
    """Each resource is valid for KUBERNETES_VERSION, unknown fields rejected (strict)."""
    for doc in documents(path):
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            continue
        assert KUBERNETES_VERSION == kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelled_field():
    """Strict validation is not a no-op: a typo in a probe's name fails it."""
    deployment = resource("Deployment", "responder-receiver")
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_validated_against_the_newest_kubernetes_the_package_knows():
    """KUBERNETES_VERSION keeps up with the installed kubernetes-validate."""
    assert kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()) == KUBERNETES_VERSION


def test_receiver_probes_service_and_disruption_budget():
    """Two receivers; readiness on /readyz and liveness on /healthz at the container's port; the Service and
    the PodDisruptionBudget (at least one left) select exactly the receiver pods."""
    deployment = resource("Deployment", "responder-receiver")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    receiver = container(deployment)
    assert receiver["args"][0] == "serve"
    port = receiver["args"][receiver["args"].index("--port") + 1]
    [container_port] = receiver["ports"]
    assert int(port) == container_port["containerPort"]
    assert receiver["args"][receiver["args"].index("--host") + 1] == "0.0.0.0"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = receiver[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in (container_port["name"], container_port["containerPort"])

    service = resource("Service", "responder")
    assert service["spec"]["selector"].items() <= labels.items()
    [service_port] = service["spec"]["ports"]
    assert service_port["targetPort"] in (container_port["name"], container_port["containerPort"])
    other_pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in deployments()
        if d["metadata"]["name"] != deployment["metadata"]["name"]
    ]
    assert not any(service["spec"]["selector"].items() <= other.items() for other in other_pods)

    budget = resource("PodDisruptionBudget", "responder-receiver")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_service_monitor_scrapes_the_receivers_metrics():
    """Checked by hand, not against a schema (kubernetes-validate has none for CRDs): the ServiceMonitor
    selects the Service by its labels and scrapes its named port at /metrics."""
    monitor = resource("ServiceMonitor", "responder")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    service = resource("Service", "responder")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_worker_gets_time_for_a_warm_shutdown():
    """The worker's grace period outlasts the job timeout (the configured one, else the default)."""
    worker = resource("Deployment", "responder-worker")
    assert worker["spec"]["replicas"] >= 2
    assert container(worker)["args"] == ["worker"]
    settings = resource("ConfigMap", "responder-settings")["data"]
    timeout = int(settings.get("RESPONDER_JOB_TIMEOUT_SECONDS", Settings().job_timeout_seconds))
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > timeout


def test_scheduler_runs_twice():
    scheduler = resource("Deployment", "responder-scheduler")
    assert container(scheduler)["args"] == ["scheduler"]
    assert scheduler["spec"]["replicas"] == 2


def test_env_names_are_settings_and_secret_keys_exist():
    """Every RESPONDER_* variable (env, and the settings ConfigMap's keys) is a setting; every secretKeyRef and
    configMapRef names a Secret key or ConfigMap shipped here."""
    secret = resource("Secret", "responder-secrets")
    configmaps = {r["metadata"]["name"] for r in resources() if r["kind"] == "ConfigMap"}
    assert set(resource("ConfigMap", "responder-settings")["data"]) <= KNOWN_ENV
    for deployment in deployments():
        spec = container(deployment)
        for variable in spec.get("env", []):
            assert variable["name"] in KNOWN_ENV, variable["name"]
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] in secret["stringData"], ref["key"]
        for source in spec.get("envFrom", []):
            assert source["configMapRef"]["name"] in configmaps
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        for volume in volumes:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps


def test_settings_configmap_loads_as_settings(monkeypatch: pytest.MonkeyPatch):
    """The settings ConfigMap with the example Secret is a configuration responder starts with."""
    from responder.settings_loading import load_settings

    for name in KNOWN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RESPONDER_CONFIG", raising=False)
    env = dict(resource("ConfigMap", "responder-settings")["data"])
    env["RESPONDER_REDIS_URL"] = resource("Secret", "responder-secrets")["stringData"]["redis-url"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert len(settings.redis_sentinels) == 3
    assert str(settings.playbooks_dir) == "/etc/responder/playbooks"


def test_pods_run_unprivileged():
    """Non-root (by uid: the image's user is a name), no privilege escalation, read-only root filesystem; the
    playbooks are mounted where RESPONDER_PLAYBOOKS_DIR points."""
    playbooks_dir = resource("ConfigMap", "responder-settings")["data"]["RESPONDER_PLAYBOOKS_DIR"]
    for deployment in deployments():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        spec = container(deployment)
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert playbooks_dir in {mount["mountPath"] for mount in spec["volumeMounts"]}
        assert "resources" in spec


def test_playbooks_configmap_is_generated_from_playbooks():
    """The checked-in ConfigMap is exactly what generate-playbooks-configmap.py writes from playbooks/."""
    spec = importlib.util.spec_from_file_location("generate", KUBERNETES / "generate-playbooks-configmap.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    expected = generate.render(ROOT / "playbooks")
    assert expected == (KUBERNETES / "playbooks-configmap.yaml").read_text(encoding="utf-8"), (
        "deploy/kubernetes/playbooks-configmap.yaml is stale: run deploy/kubernetes/generate-playbooks-configmap.py"
    )
    data = resource("ConfigMap", "responder-playbooks")["data"]
    assert {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "playbooks").glob("*.yaml")} == data
