"""Loading the settings: the environment, the optional YAML file (``--config`` or
``RESPONDER_CONFIG``), renamed keys, and one readable line for what is wrong."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from responder.errors import ConfigError
from responder.settings import DEPRECATED_KEYS, ENV_PREFIX, Settings
from responder.text import one_line


def load_settings(config_file: Path | str | None = None) -> Settings:
    """Build the settings from the environment and the optional YAML file.

    Raises ConfigError with one line naming the bad setting.
    """
    path = config_file or os.environ.get(f"{ENV_PREFIX}CONFIG") or None
    file_values = _read_config_file(Path(path)) if path else {}
    notes = _renamed(file_values, path)
    try:
        settings = Settings(**file_values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except SettingsError as exc:  # an environment value that is not the JSON a list or dict needs
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"RESPONDER_{field.group(1).upper()}" if field else "a RESPONDER_ variable"
        raise ConfigError(f"invalid setting {name}: must be JSON, e.g. [10, 60, 300] for a list") from None
    settings._deprecations = tuple(notes)
    return settings


def _renamed(file_values: dict[str, Any], path: Path | str | None) -> list[str]:
    """Move old keys of ``file_values`` to their new names (unless those are set too); one line for
    each old name in use, in the file or in the environment."""
    notes = []
    environ = {name.upper() for name in os.environ}
    for old, new in DEPRECATED_KEYS.items():
        if old in file_values:
            value = file_values.pop(old)
            if new in file_values:
                notes.append(f"'{old}' in {path} is ignored: '{new}' is set there too; remove '{old}'")
            else:
                file_values[new] = value
                notes.append(f"'{old}' in {path} is deprecated: rename it '{new}'")
        old_env, new_env = f"{ENV_PREFIX}{old.upper()}", f"{ENV_PREFIX}{new.upper()}"
        if old_env in environ:
            if new_env in environ:
                notes.append(f"{old_env} is ignored: {new_env} is set too; remove {old_env}")
            else:
                notes.append(f"{old_env} is deprecated: rename it {new_env}")
    return notes


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: fix --config or RESPONDER_CONFIG") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {one_line(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting names to values")
    return loaded


def _describe(exc: ValidationError, path: Path | str | None) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    where = f"RESPONDER_{field.upper()}" + (f" (or '{field}' in {path})" if path else "")
    if first["type"] == "extra_forbidden":
        return f"unknown setting '{field}' in {path}: remove it or check the spelling"
    return f"invalid setting {where}: {first['msg']}; fix it in the environment or the config file"


