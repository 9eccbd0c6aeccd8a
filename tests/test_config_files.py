"""The Prometheus and Alertmanager files in config/ are valid for the real tools and route the
model alerts to responder.

Each check runs the real binary (amtool from prometheus-alertmanager, promtool from prometheus)
and fails, not skips, when it is missing: a config nobody can check is not verified.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

CONFIG = ROOT / "config"
ALERTMANAGER_YML = CONFIG / "alertmanager.yml"
MODEL_ALERTS = ("model_integrity_failed", "model_bias_alert", "model_drift_detected")
INSTALL_HINTS = {
    "amtool": "apt-get install prometheus-alertmanager",
    "promtool": "apt-get install prometheus",
}


def run_tool(binary: str, *args: str, cwd: Path = CONFIG) -> subprocess.CompletedProcess[str]:
    """Run ``binary`` with ``args`` in ``cwd`` (config/, so relative rule paths resolve)."""
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not on PATH; install it with: {INSTALL_HINTS[binary]} (or run scripts/test)")
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    output = f"{result.stdout}{result.stderr}"
    assert result.returncode == 0, f"{' '.join(map(str, result.args))} exited {result.returncode}:\n{output}"
    return output


def alertmanager_config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_YML.read_text())


def routed_receiver(*labels: str) -> str:
    """The receiver Alertmanager picks for an alert with ``labels`` (name=value), per amtool."""
    result = run_tool("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *labels)
    assert_ok(result)
    return result.stdout.strip()


# --------------------------------------------------------------------------- the real tools


def test_alertmanager_config_passes_amtool():
    """config/alertmanager.yml passes `amtool check-config`."""
    assert "SUCCESS" in assert_ok(run_tool("amtool", "check-config", "alertmanager.yml"))


def test_prometheus_rules_pass_promtool():
    """config/prometheus-rules.yml passes `promtool check rules` and holds the four rules (bias twice)."""
    assert "SUCCESS: 4 rules found" in assert_ok(run_tool("promtool", "check", "rules", "prometheus-rules.yml"))


def test_prometheus_rule_unit_tests_pass():
    """config/prometheus-rules.test.yml (firing, labels, annotations, thresholds, `for:`) passes."""
    assert_ok(run_tool("promtool", "test", "rules", "prometheus-rules.test.yml"))


def test_prometheus_config_passes_promtool_with_its_rules():
    """config/prometheus.yml passes `promtool check config`, which also checks the rule file it loads."""
    output = assert_ok(run_tool("promtool", "check", "config", "prometheus.yml"))
    assert "1 rule files found" in output
    assert "prometheus-rules.yml" in output


def test_prometheus_config_wiring():
    """Prometheus loads the rules, notifies alertmanager:9093 and scrapes responder's /metrics."""
    config = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    assert config["rule_files"] == ["prometheus-rules.yml"]
    [alertmanagers] = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["responder"]["static_configs"][0]["targets"] == ["responder:8080"]
    assert jobs["responder"].get("metrics_path", "/metrics") == "/metrics"
    assert "prometheus" in jobs


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize("alertname", MODEL_ALERTS)
def test_model_alert_routes_to_responder(alertname: str):
    """Alertmanager (amtool's route test) sends each model alert to receiver `responder`."""
    assert routed_receiver(f"alertname={alertname}", "model_id=fraud-scorer", "severity=warning") == "responder"


def test_other_alerts_do_not_reach_responder():
    """Any other alert goes to the default receiver, not to responder."""
    assert routed_receiver("alertname=HighRequestLatency", "model_id=fraud-scorer") != "responder"
    assert routed_receiver("alertname=model_drift_detected_v2", "model_id=fraud-scorer") != "responder"


def test_every_playbook_alertname_is_routed_to_responder():
    """The alerts the playbooks answer are exactly the model alerts routed here."""
    answered = {
        doc["alertname"]
        for path in (ROOT / "playbooks").glob("*.yaml")
        if (doc := yaml.safe_load(path.read_text())) and doc.get("alertname")
    }
    assert answered == set(MODEL_ALERTS)


def test_responder_receiver_sends_resolved_with_a_bearer_token_file():
    """The responder webhook: production url, resolved notifications on, bearer token read from a file."""
    config = alertmanager_config()
    receivers = {r["name"]: r for r in config["receivers"]}
    [webhook] = receivers["responder"]["webhook_configs"]
    assert webhook["url"] == "http://responder:8080/webhooks/alertmanager"
    assert webhook["send_resolved"] is True
    assert isinstance(webhook.get("max_alerts", 0), int)
    authorization = webhook["http_config"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer"
    assert authorization["credentials_file"] == "/etc/alertmanager/secrets/responder-webhook-token"
    assert "credentials" not in authorization, "the token must come from the file, not be inlined"
    assert config["route"]["receiver"] != "responder", "the default route must not send everything to responder"


def test_responder_route_groups_by_alert_and_model():
    """The route to responder groups by alertname and model_id (one group per responder ticket)."""
    [route] = [r for r in alertmanager_config()["route"]["routes"] if r["receiver"] == "responder"]
    assert route["group_by"] == ["alertname", "model_id"]
    for timer in ("group_wait", "group_interval", "repeat_interval"):
        assert timer in route, f"{timer} is chosen on the responder route, not inherited"
