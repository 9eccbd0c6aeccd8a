"""Text for one line of a log, an error message or the terminal."""

from __future__ import annotations


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` (or an exception's message) with every run of whitespace, newlines included, as
    one space; cut to ``limit`` characters when given."""
    collapsed = " ".join(str(text).split())
    return collapsed if limit is None else collapsed[:limit]
