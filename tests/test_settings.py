"""Settings: defaults, the YAML file, the environment, one-line errors, secrets, and the CLI's start-up checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from responder.errors import ConfigError
from responder.settings import Settings
from responder.settings_loading import load_settings
from tests.conftest import ROOT

SECRET = "s3cr3t-value-never-printed"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No RESPONDER_* variable of the surrounding shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)
    yield


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "responder.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    """With no file and no environment, every documented default applies."""
    settings = load_settings()

    expected = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "queue": "responder",
        "github_api_url": "https://api.github.com",
        "github_ref": "main",
        "tracker": "github",
        "dry_run": False,
        "governance_workflow": "model-governance.yml",
        "retraining_workflow": "model-retraining.yml",
        "freeze_variable": "DEPLOY_FREEZE",
        "dedup_retention_seconds": 7 * 24 * 3600,
        "webhook_token": None,
        "github_token": None,
        "github_repo": None,
    }
    assert {name: getattr(settings, name) for name in expected} == expected


def test_yaml_file_as_argument(tmp_path: Path) -> None:
    """Values from the YAML file passed to load_settings are used."""
    path = write_config(tmp_path, "queue: from-file\ngithub_ref: release\ndry_run: true\n")

    settings = load_settings(path)

    assert (settings.queue, settings.github_ref, settings.dry_run) == ("from-file", "release", True)


def test_yaml_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RESPONDER_CONFIG names the YAML file when no argument is given."""
    path = write_config(tmp_path, "queue: from-env-file\n")
    monkeypatch.setenv("RESPONDER_CONFIG", str(path))

    assert load_settings().queue == "from-env-file"


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    """An empty config file is the same as no file."""
    assert load_settings(write_config(tmp_path, "")).queue == "responder"


def test_env_wins_over_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment variable overrides the same setting in the YAML file."""
    path = write_config(tmp_path, "queue: from-file\ngithub_ref: release\n")
    monkeypatch.setenv("RESPONDER_QUEUE", "from-env")

    settings = load_settings(path)

    assert (settings.queue, settings.github_ref) == ("from-env", "release")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("redis_url", "http://x"),
        ("dry_run", "maybe"),
        ("tracker", "bugzilla"),
        ("dedup_retention_seconds", "0"),
        ("max_body_bytes", "lots"),
        ("github_api_url", "ftp://github"),
        ("github_repo", "no-slash"),
        ("log_level", "loud"),
        ("job_retry_intervals", "not-a-list"),
    ],
)
def test_invalid_env_value_is_a_one_line_config_error(field: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid environment value raises ConfigError with one line naming RESPONDER_<FIELD>."""
    monkeypatch.setenv(f"RESPONDER_{field.upper()}", value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert f"RESPONDER_{field.upper()}" in message
    assert len(message.splitlines()) == 1


def test_invalid_yaml_value_names_the_setting(tmp_path: Path) -> None:
    """An invalid value in the YAML file raises ConfigError naming the setting."""
    path = write_config(tmp_path, "tracker: bugzilla\n")

    with pytest.raises(ConfigError, match="RESPONDER_TRACKER"):
        load_settings(path)


def test_unknown_yaml_key_is_named(tmp_path: Path) -> None:
    """A misspelt key in the YAML file raises ConfigError naming the key."""
    path = write_config(tmp_path, "queue: q\ngovernance_workfow: x.yml\n")

    with pytest.raises(ConfigError, match="governance_workfow"):
        load_settings(path)


def test_missing_config_file(tmp_path: Path) -> None:
    """A config file that does not exist raises ConfigError naming the path."""
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_settings(path)


def test_missing_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RESPONDER_CONFIG naming a missing file raises ConfigError."""
    monkeypatch.setenv("RESPONDER_CONFIG", str(tmp_path / "absent.yaml"))

    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_settings()


def test_config_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    """A YAML list instead of a mapping raises ConfigError."""
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write_config(tmp_path, "- queue\n- q\n"))


def test_config_file_that_is_not_yaml(tmp_path: Path) -> None:
    """Broken YAML raises a one-line ConfigError."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, "queue: [unclosed\n"))

    assert len(str(caught.value).splitlines()) == 1


def test_secrets_from_env_are_secret_str(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens from the environment are SecretStr and absent from repr(settings)."""
    monkeypatch.setenv("RESPONDER_GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("RESPONDER_WEBHOOK_TOKEN", SECRET + "-hook")

    settings = load_settings()

    assert isinstance(settings.github_token, SecretStr)
    assert isinstance(settings.webhook_token, SecretStr)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_secrets_from_yaml_are_secret_str(tmp_path: Path) -> None:
    """Tokens from the YAML file are SecretStr and absent from repr(settings)."""
    settings = load_settings(write_config(tmp_path, f"github_token: {SECRET}\nwebhook_token: {SECRET}\n"))

    assert settings.github_token.get_secret_value() == SECRET  # type: ignore[union-attr]
    assert SECRET not in repr(settings)


def test_require_github_without_token() -> None:
    """Outside dry-run, a missing GitHub token is a ConfigError naming RESPONDER_GITHUB_TOKEN."""
    settings = Settings(github_repo="acme/ml-platform")

    with pytest.raises(ConfigError, match="RESPONDER_GITHUB_TOKEN"):
        settings.require_github()


def test_require_github_without_repo() -> None:
    """Outside dry-run, a missing repository is a ConfigError naming RESPONDER_GITHUB_REPO."""
    settings = Settings(github_token=SECRET)

    with pytest.raises(ConfigError, match="RESPONDER_GITHUB_REPO"):
        settings.require_github()


def test_require_github_in_dry_run() -> None:
    """In dry-run no GitHub credentials are needed."""
    Settings(dry_run=True).require_github()


def test_require_github_with_token_and_repo() -> None:
    """A token and a repository satisfy require_github."""
    Settings(github_token=SECRET, github_repo="acme/ml-platform").require_github()


def test_require_webhook_token_missing() -> None:
    """Without a webhook token, require_webhook_token names RESPONDER_WEBHOOK_TOKEN."""
    with pytest.raises(ConfigError, match="RESPONDER_WEBHOOK_TOKEN"):
        Settings().require_webhook_token()


def test_require_webhook_token_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty RESPONDER_WEBHOOK_TOKEN counts as missing."""
    monkeypatch.setenv("RESPONDER_WEBHOOK_TOKEN", "")

    with pytest.raises(ConfigError, match="RESPONDER_WEBHOOK_TOKEN"):
        load_settings().require_webhook_token()


def test_require_webhook_token_present() -> None:
    """A configured webhook token is returned as a SecretStr."""
    assert Settings(webhook_token=SECRET).require_webhook_token().get_secret_value() == SECRET


# --- The CLI refuses to start with one line on stderr, exit code 2 ---


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    return subprocess.run(
        [sys.executable, "-m", "responder.cli", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], names: str) -> None:
    assert (result.returncode, len(result.stderr.splitlines())) == (2, 1), result.stderr
    assert names in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_without_webhook_token(redis_url: str) -> None:
    """`responder serve` with no webhook token exits 2 with one line naming RESPONDER_WEBHOOK_TOKEN."""
    result = run_cli("serve", "--port", "1", RESPONDER_REDIS_URL=redis_url)

    assert_one_line_error(result, "RESPONDER_WEBHOOK_TOKEN")


def test_invalid_redis_url_stops_any_command() -> None:
    """RESPONDER_REDIS_URL that is not a Redis URL exits 2 with one line naming it."""
    result = run_cli("jobs", "list", RESPONDER_REDIS_URL="http://x")

    assert_one_line_error(result, "RESPONDER_REDIS_URL")


def test_worker_without_github_token(redis_url: str) -> None:
    """`responder worker` outside dry-run with no GitHub token exits 2 naming RESPONDER_GITHUB_TOKEN."""
    result = run_cli("worker", "--burst", RESPONDER_REDIS_URL=redis_url)

    assert_one_line_error(result, "RESPONDER_GITHUB_TOKEN")


def test_unparsable_list_setting_stops_the_cli_cleanly(redis_url: str) -> None:
    """A malformed list setting exits 2 with one line, not a traceback."""
    result = run_cli("jobs", "list", RESPONDER_REDIS_URL=redis_url, RESPONDER_JOB_RETRY_INTERVALS="10,60")

    assert_one_line_error(result, "RESPONDER_JOB_RETRY_INTERVALS")
