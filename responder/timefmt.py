"""Human time formats: the one place the CLI, the runs page and the tickets format times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def ago(value: datetime, now: datetime) -> str:
    """'just now', '42 s ago', '3 min ago', '5 h ago', '2 d ago' (or 'in …' for a clock ahead of ours)."""
    seconds = (now - value).total_seconds()
    if abs(seconds) < 5:
        return "just now"
    amount = _span(abs(seconds))
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


def took(start: datetime | None, end: datetime | None) -> str:
    """How long from start to end: '12 ms', '1.4 s', '3 min 5 s'; a dash while either is unknown."""
    if start is None or end is None:
        return "\N{EN DASH}"
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"


def clock(value: datetime | None) -> str:
    """A time of day on the UTC clock, '21:40:12 UTC' (a retry is minutes away: the day is today)."""
    in_utc = as_utc(value) if value is not None else None
    return in_utc.strftime("%H:%M:%S UTC") if in_utc is not None else "-"


def as_utc(value: datetime) -> datetime | None:
    """``value`` on the UTC clock, or None when that lies outside the years 1-9999 a datetime holds.

    The webhook accepts any RFC 3339 time, so year 1 at +14:00 (before 0001-01-01 UTC) arrives in
    valid alerts; a page shows such a time as given rather than fail on it.
    """
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def utc_text(value: datetime | None, *, suffix: str = " UTC") -> str:
    """'2025-01-31 21:40:12 UTC' (the CLI: ``suffix="Z"``); '' for None; a time with no UTC
    datetime as given, '0001-01-01 00:00:00+14:00'.

    isoformat, not strftime: strftime's %Y writes year 1 as '1', not '0001'.
    """
    if value is None:
        return ""
    in_utc = as_utc(value)
    if in_utc is None:
        return value.isoformat(sep=" ", timespec="seconds")
    return in_utc.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds") + suffix


def duration(start: datetime, end: datetime) -> str:
    """'1h 5m 3s' style; '0s' for nothing."""
    return span(end - start)


def span(delta: timedelta) -> str:
    """``duration`` of a timedelta."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = " ".join(
        f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if value
    )
    return text or "0s"
