"""The runs page's own read-only token, RESPONDER_UI_TOKEN (RESPONDER_READ_TOKEN its deprecated old
name): it opens the page and nothing else; without it the page takes the webhook token, and
`responder serve` warns of that at start-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder.playbooks.catalog import Catalog
from responder.receiver import create_app
from responder.settings_loading import load_settings
from tests.conftest import WEBHOOK_TOKEN, load_example, make_settings
from tests.support.processes import serving

UI_TOKEN = "ui-only-token-789"
FALLBACK_EVENT = "runs_page.webhook_token_fallback"
DEPRECATED_EVENT = "settings.deprecated"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RESPONDER_* variable of the surrounding shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("RESPONDER_") or name.upper() in ("UI_TOKEN", "READ_TOKEN"):
            monkeypatch.delenv(name)


@pytest.fixture
async def ui_client(aiohttp_client, redis, redis_url: str, catalog: Catalog) -> TestClient:
    settings = make_settings(redis_url, dry_run=True, ui_token=UI_TOKEN)
    client: TestClient = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
    return client


# --- The receiver ---


async def test_ui_token_opens_the_runs_page(ui_client):
    """RESPONDER_UI_TOKEN, as bearer token, opens /runs and /runs/{id}."""
    for path in ("/runs", "/runs/some-run"):
        response = await ui_client.get(path, headers={"Authorization": f"Bearer {UI_TOKEN}"})
        assert response.status in (200, 404), path  # 404: a run that does not exist, past the sign-in


async def test_ui_token_is_refused_by_the_webhook(ui_client):
    """RESPONDER_UI_TOKEN cannot post webhooks: 401."""
    response = await ui_client.post(
        "/webhooks/alertmanager", json=load_example("bias-firing.json"), headers={"Authorization": f"Bearer {UI_TOKEN}"}
    )
    assert response.status == 401


async def test_without_ui_token_the_page_takes_the_webhook_token(aiohttp_client, redis, redis_url, catalog):
    """With RESPONDER_UI_TOKEN unset (or empty) the webhook token opens the page; nothing else does."""
    for ui_token in (None, ""):
        settings = make_settings(redis_url, dry_run=True, ui_token=ui_token)
        client = await aiohttp_client(create_app(settings, catalog, token=SecretStr(WEBHOOK_TOKEN)))
        assert (await client.get("/runs", headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})).status == 200
        assert (await client.get("/runs", headers={"Authorization": "Bearer "})).status == 401


# --- The setting and its old name ---


def test_ui_token_from_env_is_a_secret(clean_env, monkeypatch):
    """RESPONDER_UI_TOKEN sets ui_token, a SecretStr redacted from logs, with no deprecation noted."""
    monkeypatch.setenv("RESPONDER_UI_TOKEN", UI_TOKEN)
    settings = load_settings()
    assert isinstance(settings.ui_token, SecretStr) and settings.ui_token.get_secret_value() == UI_TOKEN
    assert UI_TOKEN in settings.secret_values()
    assert UI_TOKEN not in repr(settings)
    assert settings.deprecations == ()


def test_read_token_env_is_a_deprecated_alias(clean_env, monkeypatch):
    """RESPONDER_READ_TOKEN alone still sets ui_token, and is noted as deprecated in favour of RESPONDER_UI_TOKEN."""
    monkeypatch.setenv("RESPONDER_READ_TOKEN", UI_TOKEN)
    settings = load_settings()
    assert settings.ui_token is not None and settings.ui_token.get_secret_value() == UI_TOKEN
    [note] = settings.deprecations
    assert "RESPONDER_READ_TOKEN" in note and "RESPONDER_UI_TOKEN" in note


def test_ui_token_env_wins_over_read_token(clean_env, monkeypatch):
    """With both names set RESPONDER_UI_TOKEN is used, and the old one is noted as ignored."""
    monkeypatch.setenv("RESPONDER_UI_TOKEN", UI_TOKEN)
    monkeypatch.setenv("RESPONDER_READ_TOKEN", "old-token-000")
    settings = load_settings()
    assert settings.ui_token is not None and settings.ui_token.get_secret_value() == UI_TOKEN
    [note] = settings.deprecations
    assert "RESPONDER_READ_TOKEN" in note and "ignored" in note


def test_read_token_in_the_config_file_is_a_deprecated_alias(clean_env, tmp_path: Path):
    """'read_token' in the YAML file still sets ui_token, and is noted as deprecated in favour of 'ui_token'."""
    path = tmp_path / "responder.yaml"
    path.write_text(f"read_token: {UI_TOKEN}\n", encoding="utf-8")
    settings = load_settings(path)
    assert settings.ui_token is not None and settings.ui_token.get_secret_value() == UI_TOKEN
    [note] = settings.deprecations
    assert "read_token" in note and "ui_token" in note


def test_ui_token_in_the_config_file(clean_env, tmp_path: Path):
    """'ui_token' in the YAML file sets ui_token."""
    path = tmp_path / "responder.yaml"
    path.write_text(f"ui_token: {UI_TOKEN}\n", encoding="utf-8")
    settings = load_settings(path)
    assert settings.ui_token is not None and settings.ui_token.get_secret_value() == UI_TOKEN
    assert settings.deprecations == ()


def test_unprefixed_names_are_not_read(clean_env, monkeypatch):
    """UI_TOKEN and READ_TOKEN without the RESPONDER_ prefix are not the setting."""
    monkeypatch.setenv("UI_TOKEN", UI_TOKEN)
    monkeypatch.setenv("READ_TOKEN", UI_TOKEN)
    assert load_settings().ui_token is None


# --- `responder serve` at start-up ---


def test_serve_warns_when_the_page_falls_back_to_the_webhook_token(redis, redis_url, tmp_path):
    """Without RESPONDER_UI_TOKEN, serve logs a warning at start-up naming it; the webhook token opens the page."""
    log = tmp_path / "serve.log"
    with serving(redis_url, log) as base:
        page = requests.get(f"{base}/runs", auth=("oncall", WEBHOOK_TOKEN), timeout=5)
    assert page.status_code == 200
    [line] = [line for line in log.read_text().splitlines() if FALLBACK_EVENT in line]
    assert '"level": "warning"' in line and "RESPONDER_UI_TOKEN" in line and "[redacted]" not in line


def test_serve_with_ui_token_does_not_warn(redis, redis_url, tmp_path):
    """With RESPONDER_UI_TOKEN set, serve warns of neither fallback nor deprecation, and the page takes that token."""
    log = tmp_path / "serve.log"
    with serving(redis_url, log, RESPONDER_UI_TOKEN=UI_TOKEN) as base:
        page = requests.get(f"{base}/runs", auth=("oncall", UI_TOKEN), timeout=5)
        hook = requests.post(f"{base}/webhooks/alertmanager", json=load_example("bias-firing.json"),
                             headers={"Authorization": f"Bearer {UI_TOKEN}"}, timeout=5)
    assert (page.status_code, hook.status_code) == (200, 401)
    text = log.read_text()
    assert FALLBACK_EVENT not in text and DEPRECATED_EVENT not in text


def test_serve_with_only_the_old_name_warns_and_takes_it(redis, redis_url, tmp_path):
    """With only RESPONDER_READ_TOKEN, serve logs a deprecation warning naming RESPONDER_UI_TOKEN; the page takes it."""
    log = tmp_path / "serve.log"
    with serving(redis_url, log, RESPONDER_READ_TOKEN=UI_TOKEN) as base:
        page = requests.get(f"{base}/runs", auth=("oncall", UI_TOKEN), timeout=5)
    assert page.status_code == 200
    [line] = [line for line in log.read_text().splitlines() if DEPRECATED_EVENT in line]
    assert '"level": "warning"' in line and "RESPONDER_READ_TOKEN" in line and "RESPONDER_UI_TOKEN" in line
    assert FALLBACK_EVENT not in log.read_text()
