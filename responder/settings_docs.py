"""The settings reference in docs/configuration.md, generated from ``Settings``: each field's
environment variable, default and description, in the group classes settings.py declares them in.

``scripts/config-docs`` writes it (``python -m responder.settings_docs``); ``--check`` exits 1
when the document is stale, and tests/test_config_docs.py runs that check in CI, so the reference
cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo

from responder.settings import BUNDLED_PLAYBOOKS, ENV_PREFIX, Settings, SettingsGroup

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
BEGIN = "<!-- settings reference: generated from responder/settings.py by scripts/config-docs; do not edit -->"
END = "<!-- end of the settings reference -->"


def reference() -> str:
    """The generated reference: one table per group of settings."""
    parts = []
    for group, names in _groups():
        rows = [_row(name, Settings.model_fields[name]) for name in names]
        parts.append(f"### {group}\n\n| variable | default | meaning |\n|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


def updated(document: str) -> str:
    """``document`` with the text between the markers replaced by the current reference."""
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    return f"{document[:start]}\n\n{reference()}\n\n{document[end:]}"


def _groups() -> list[tuple[str, list[str]]]:
    """The group classes Settings is made of (their docstrings name them), with their fields, in order."""
    parts = (SettingsGroup, Settings)
    groups = [cls for cls in reversed(Settings.__mro__) if issubclass(cls, SettingsGroup) and cls not in parts]
    return [
        (str(cls.__doc__).strip(), [name for name in cls.__annotations__ if name in Settings.model_fields])
        for cls in groups
    ]


def _row(name: str, field: FieldInfo) -> str:
    return f"| {_variable(name, field)} | {_default(field)} | {_cell(field.description or '')} |"


def _variable(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first, *old = (str(choice) for choice in alias.choices)
        return f"`{first}`" + (f" (old name: {', '.join(f'`{o}`' for o in old)})" if old else "")
    return f"`{ENV_PREFIX}{name.upper()}`"


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return "—"
    if value == BUNDLED_PLAYBOOKS:
        return "the playbooks shipped in the package"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list | dict):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    current = DOCUMENT.read_text(encoding="utf-8")
    wanted = updated(current)
    if current == wanted:
        return 0
    if check:
        print(f"{DOCUMENT} is stale: run scripts/config-docs", file=sys.stderr)
        return 1
    DOCUMENT.write_text(wanted, encoding="utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
