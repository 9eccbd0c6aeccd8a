"""Reading a YAML file that a person wrote (playbooks, schedules): one readable line when it cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from responder.errors import ResponderError
from responder.text import one_line


def load_yaml(path: Path, error: type[ResponderError]) -> Any:
    """The document in ``path``; ``error`` naming the file and why when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {one_line(exc)}") from None
