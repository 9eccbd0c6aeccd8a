"""The README's first screen: the two commands CI runs, and how to run responder for real."""

from __future__ import annotations

import re

import yaml

from responder.settings import ENV_PREFIX, Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
FIRST_SCREEN = README[: README.index("## How an alert flows")]
REAL = FIRST_SCREEN[FIRST_SCREEN.index("## Run it for real") :]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_first_block_is_the_two_commands_ci_runs():
    """The README opens with scripts/demo and scripts/test, and .ci/run runs both."""
    first = fenced(README, "sh")[0]
    assert [line.split()[0] for line in first.splitlines()] == ["scripts/demo", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/demo" in ci
    assert "bash scripts/test" in ci


def test_run_it_for_real_sets_redis_github_and_webhook_token():
    """The first screen names the settings a real deployment needs, each a real setting."""
    [shell] = fenced(REAL, "sh")
    named = set(re.findall(rf"export {ENV_PREFIX}([A-Z_]+)=", shell))
    assert {"REDIS_URL", "GITHUB_TOKEN", "GITHUB_REPO", "WEBHOOK_TOKEN"} <= named
    fields = {name.upper() for name in Settings.model_fields}
    assert named <= fields


def test_run_it_for_real_starts_the_receiver_and_a_worker():
    """The first screen shows `responder serve` and `responder worker`."""
    [shell] = fenced(REAL, "sh")
    assert re.search(r"responder serve\b", shell)
    assert re.search(r"responder worker\b", shell)


def test_run_it_for_real_has_an_alertmanager_receiver_for_the_webhook():
    """The Alertmanager snippet is YAML whose webhook posts to the receiver's path with resolves on."""
    [snippet] = fenced(REAL, "yaml")
    [receiver] = yaml.safe_load(snippet)["receivers"]
    [hook] = receiver["webhook_configs"]
    assert hook["url"].endswith("/webhooks/alertmanager")
    assert hook["send_resolved"] is True
    assert "authorization" in hook["http_config"]
