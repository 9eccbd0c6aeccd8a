"""Loading and validating the playbooks directory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from responder.errors import PlaybookError
from responder.playbooks.model import Playbook
from responder.playbooks.steps import STEP_KINDS, Approval, Include
from responder.yamlfile import load_yaml

PLAYBOOK_SUFFIXES = (".yaml", ".yml")
SCHEDULES_FILE = "schedules.yaml"  # beside the playbooks, not one of them: read by responder.schedules


@dataclass(frozen=True)
class Catalog:
    """The loaded playbooks, by name and by the alertname they answer."""

    playbooks: dict[str, Playbook]

    def get(self, name: str) -> Playbook:
        try:
            return self.playbooks[name]
        except KeyError:
            known = ", ".join(sorted(self.playbooks)) or "none"
            raise PlaybookError(f"no playbook named {name!r} (known: {known})") from None

    def for_alertname(self, alertname: str) -> Playbook | None:
        return self._by_alertname.get(alertname)

    @cached_property
    def _by_alertname(self) -> dict[str, Playbook]:
        """The playbook of each alertname (the first, were two to name the same one)."""
        index: dict[str, Playbook] = {}
        for playbook in self.playbooks.values():
            if playbook.alertname is not None:
                index.setdefault(playbook.alertname, playbook)
        return index


def load_catalog(directory: Path) -> Catalog:
    """Load every playbook of the configured directory; raise PlaybookError listing every
    problem, one per line."""
    playbooks, problems = _load(directory, setting="RESPONDER_PLAYBOOKS_DIR")
    if problems:
        raise PlaybookError("\n".join(problems))
    return Catalog(playbooks)


def validate_path(path: Path, *, setting: str | None = None) -> tuple[list[str], list[str]]:
    """(names of valid playbooks, problems) of a playbook directory or of one playbook file,
    without raising. A file's includes are looked up among the playbooks beside it. ``setting``
    names where the path came from, for the message when it does not exist."""
    if path.is_dir():
        playbooks, problems = _load(path, setting=setting)
        return sorted(playbooks), problems
    if not path.exists():
        return [], [f"{path}: no such file or directory" + (f" (set {setting})" if setting else "")]
    if path.suffix not in PLAYBOOK_SUFFIXES:
        return [], [f"{path}: not a playbook file (playbooks are YAML files named *.yaml or *.yml)"]
    try:
        playbook = load_file(path)
    except PlaybookError as exc:
        return [], str(exc).splitlines()
    if playbook.includes():
        siblings, _ = _load(path.parent, setting=None)
        try:
            _expand_includes(playbook, {**siblings, playbook.name: playbook})
        except PlaybookError as exc:
            return [], [f"{path}: {exc}"]
    return [playbook.name], []


def unknown_approver_groups(path: Path, approvers: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per approval step (in the playbooks at ``path``) naming a group ``approvers`` lacks."""
    if path.is_dir():
        playbooks = list(_load(path, setting=None)[0].values())
    else:
        try:
            playbooks = [load_file(path)]
        except PlaybookError:
            return []  # validate_path reports it
    problems = []
    for playbook in playbooks:
        for step in [*playbook.steps, *(playbook.on_resolved or [])]:
            for group in step.params.groups if isinstance(step, Approval) else []:
                if not approvers.get(group):
                    problems.append(
                        f"playbook {playbook.name}: step {step.name!r}: approver group {group!r} has nobody "
                        "in RESPONDER_APPROVERS"
                    )
    return problems


def _load(directory: Path, *, setting: str | None) -> tuple[dict[str, Playbook], list[str]]:
    if not directory.is_dir():
        hint = f" (set {setting})" if setting else ""
        return {}, [f"{directory}: playbooks directory does not exist{hint}"]
    files = sorted(p for s in PLAYBOOK_SUFFIXES for p in directory.glob(f"*{s}") if p.name != SCHEDULES_FILE)
    if not files:
        return {}, [f"{directory}: no playbook files (*.yaml)"]
    playbooks: dict[str, Playbook] = {}
    problems: list[str] = []
    alertnames: dict[str, Path] = {}
    for path in files:
        try:
            playbook = load_file(path)
        except PlaybookError as exc:
            problems.append(str(exc))
            continue
        if playbook.name in playbooks:
            problems.append(f"{path}: playbook name {playbook.name!r} is used by another file")
            continue
        if playbook.alertname and playbook.alertname in alertnames:
            problems.append(
                f"{path}: alertname {playbook.alertname!r} is also handled by {alertnames[playbook.alertname]}"
            )
            continue
        if playbook.alertname:
            alertnames[playbook.alertname] = path
        playbooks[playbook.name] = playbook
    expanded: dict[str, Playbook] = {}
    for name, playbook in playbooks.items():
        try:
            expanded[name] = _expand_includes(playbook, playbooks)
        except PlaybookError as exc:
            problems.append(f"{directory / name}: {exc}")
    return expanded, problems


def _expand_includes(playbook: Playbook, playbooks: dict[str, Playbook]) -> Playbook:
    """Replace each `include` step by the included playbook's steps, named `<include>.<step>`."""
    if not playbook.includes():
        return playbook

    def expand(steps: list[Any]) -> list[Any]:
        out: list[Any] = []
        for step in steps:
            if not isinstance(step, Include):
                out.append(step)
                continue
            target = playbooks.get(step.params.playbook)
            if target is None:
                raise PlaybookError(f"step {step.name!r} includes unknown playbook {step.params.playbook!r}")
            if target.includes():
                raise PlaybookError(f"step {step.name!r} includes {target.name!r}, which includes others itself")
            for inner in target.steps:
                if step.when is not None and inner.when is not None:
                    raise PlaybookError(f"step {step.name!r}: both it and {target.name}/{inner.name} have `when`")
                out.append(
                    inner.model_copy(update={"name": f"{step.name}.{inner.name}", "when": inner.when or step.when})
                )
        return out

    return playbook.model_copy(
        update={"steps": expand(playbook.steps), "on_resolved": expand(playbook.on_resolved or [])}
    )


def load_file(path: Path) -> Playbook:
    data = load_yaml(path, PlaybookError)
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: a playbook must be a mapping with name, alertname and steps")
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        raise PlaybookError("\n".join(f"{path}: {_describe(e, data)}" for e in exc.errors())) from None
    except PlaybookError as exc:  # a validator that raised it bare: still name the file
        raise PlaybookError(f"{path}: {exc}") from None


def _describe(error: Any, data: dict[str, Any]) -> str:
    loc = list(error["loc"])
    where = "playbook"
    if len(loc) >= 2 and loc[0] in ("steps", "on_resolved") and isinstance(loc[1], int):
        index = loc[1]
        steps = data.get(loc[0]) or []
        raw = steps[index] if index < len(steps) and isinstance(steps[index], dict) else {}
        where = f"{'' if loc[0] == 'steps' else 'on_resolved '}step {index + 1} {raw.get('name', '?')!r}"
        loc = loc[3:] if len(loc) > 2 and loc[2] in STEP_KINDS else loc[2:]
    field = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key {field!r}"
    if kind == "union_tag_invalid":
        return f"{where}: unknown step kind {error['input'].get('kind')!r} (known: {', '.join(STEP_KINDS)})"
    if kind == "union_tag_not_found":
        return f"{where}: missing 'kind' (one of: {', '.join(STEP_KINDS)})"
    if kind == "missing":
        return f"{where}: missing {field!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {field + ': ' if field else ''}{message}"
