"""A model's entry in the manifest moved to a new version, as an edit of the file's text.

A change request must change only what it proposes: the entry's ``version``, ``modelVersion``,
``artifact.sha256`` (and ``artifact.uri`` when the training summary names one). Loading the JSON
and dumping it again would re-indent, re-order or re-escape the rest, so the file is scanned for
where those values sit and only their text is replaced; every other byte stays as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from responder.errors import PermanentError

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


@dataclass
class _Node:
    """Where one JSON value sits in the text; an object's members by key, an array's items in order."""

    start: int
    end: int
    members: dict[str, _Node] = field(default_factory=dict)
    items: list[_Node] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """One value of the entry: its path in the entry, what it was and what it becomes."""

    path: str
    old: Any
    new: str


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _value(text: str, i: int) -> _Node:
    """The value starting at ``i`` (no leading whitespace)."""
    if i >= len(text):
        raise ValueError("unexpected end of the document")
    if text[i] == "{":
        node = _Node(i, i)
        i = _skip(text, i + 1)
        if text[i : i + 1] == "}":
            node.end = i + 1
            return node
        while True:
            key, i = _DECODER.raw_decode(text, i)
            if not isinstance(key, str):
                raise ValueError(f"an object key at {i} is not a string")
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError(f"':' expected at {i}")
            member = _value(text, _skip(text, i + 1))
            node.members[key] = member
            i = _skip(text, member.end)
            if text[i : i + 1] == "}":
                node.end = i + 1
                return node
            if text[i : i + 1] != ",":
                raise ValueError(f"',' or '}}' expected at {i}")
            i = _skip(text, i + 1)
    if text[i] == "[":
        node = _Node(i, i)
        i = _skip(text, i + 1)
        if text[i : i + 1] == "]":
            node.end = i + 1
            return node
        while True:
            item = _value(text, i)
            node.items.append(item)
            i = _skip(text, item.end)
            if text[i : i + 1] == "]":
                node.end = i + 1
                return node
            if text[i : i + 1] != ",":
                raise ValueError(f"',' or ']' expected at {i}")
            i = _skip(text, i + 1)
    _, end = _DECODER.raw_decode(text, i)
    return _Node(i, end)


def _scan(text: str) -> _Node:
    root = _value(text, _skip(text, 0))
    if _skip(text, root.end) != len(text):
        raise ValueError("text after the document")
    return root


def set_model_version(
    text: str, model_id: str, *, version: str, sha256: str, uri: str | None = None
) -> tuple[str, list[Change]]:
    """``text`` (the manifest) with ``model_id``'s entry at ``version`` and ``sha256`` (and ``uri``),
    and the values changed. ``modelVersion`` changes only where the entry has one. Raises
    PermanentError when the file is not a manifest holding the model."""
    try:
        document = json.loads(text)
        root = _scan(text)
    except ValueError as exc:
        raise PermanentError(f"the manifest is not valid JSON: {exc}", system="github") from None
    models = root.members.get("models")
    listed = document.get("models") if isinstance(document, dict) else None
    if models is None or not isinstance(listed, list):
        raise PermanentError("the manifest has no models list", system="github")
    index = next((n for n, m in enumerate(listed) if isinstance(m, dict) and m.get("modelId") == model_id), None)
    if index is None:
        raise PermanentError(f"model {model_id} is not in the manifest", system="github")
    entry, node = listed[index], models.items[index]
    artifact = node.members.get("artifact")
    if artifact is None or not isinstance(entry.get("artifact"), dict) or "sha256" not in artifact.members:
        raise PermanentError(f"the manifest entry of {model_id} has no artifact.sha256", system="github")
    if "version" not in node.members:
        raise PermanentError(f"the manifest entry of {model_id} has no version", system="github")
    wanted: list[tuple[str, _Node, Any, str]] = [("version", node.members["version"], entry["version"], version)]
    if "modelVersion" in node.members:
        wanted.append(("modelVersion", node.members["modelVersion"], entry["modelVersion"], version))
    wanted.append(("artifact.sha256", artifact.members["sha256"], entry["artifact"]["sha256"], sha256))
    if uri is not None and "uri" in artifact.members:
        wanted.append(("artifact.uri", artifact.members["uri"], entry["artifact"]["uri"], uri))
    changes = [Change(path, old, new) for path, _, old, new in wanted if old != new]
    edited = text
    for _, where, old, new in sorted(wanted, key=lambda w: w[1].start, reverse=True):
        if old != new:
            edited = edited[: where.start] + json.dumps(new) + edited[where.end :]
    return edited, changes
