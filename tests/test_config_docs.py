"""docs/configuration.md's settings reference is generated from Settings and must be current."""

from __future__ import annotations

from responder import settings_docs
from responder.settings import Settings


def test_the_settings_reference_in_the_docs_is_current():
    """A setting added, renamed or redescribed in settings.py without `scripts/config-docs` fails here."""
    document = settings_docs.DOCUMENT.read_text(encoding="utf-8")
    assert settings_docs.updated(document) == document, "docs/configuration.md is stale: run scripts/config-docs"


def test_every_setting_is_in_the_reference_with_its_environment_variable():
    reference = settings_docs.reference()
    for name in Settings.model_fields:
        assert f"`RESPONDER_{name.upper()}`" in reference, name


def test_the_check_command_says_what_to_run_when_stale(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"intro\n{settings_docs.BEGIN}\n| old | table |\n{settings_docs.END}\n", encoding="utf-8")
    monkeypatch.setattr(settings_docs, "DOCUMENT", stale)
    assert settings_docs.main(["--check"]) == 1
    assert "run scripts/config-docs" in capsys.readouterr().err
