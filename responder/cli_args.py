"""What the ``responder`` command's arguments must be (``K=V`` pairs, and text), and who is giving them."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Iterable


def label(text: str) -> tuple[str, str]:
    """A ``--label`` or ``--annotation``: ``key=value``, the key not empty."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def not_text(values: Iterable[object]) -> str | None:
    """The first string among ``values`` (and in their lists and pairs) that has no UTF-8 form, shown
    with its bad bytes escaped: bytes that are not UTF-8 on the command line arrive as surrogate
    escapes, which Redis, JSON and the alert models cannot take. Paths are not strings here: a file
    name may be any bytes."""
    for value in values:
        if isinstance(value, list | tuple):
            if (found := not_text(value)) is not None:
                return found
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "'" + _as_bytes(value).decode("utf-8", "backslashreplace") + "'"
    return None


def _as_bytes(text: str) -> bytes:
    """The bytes a surrogate-escaped argument came from (other lone surrogates as escapes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def requester() -> str:
    """Who runs the command, as runs and the freeze record them: RESPONDER_REQUESTED_BY, else $USER."""
    return os.environ.get("RESPONDER_REQUESTED_BY") or getpass.getuser()
