"""Part 7 of the bench: the GitHub calls one drift incident costs, its dispatched workflow run
followed to completion (issue 16: "following must cost no more than one conditional read per
poll interval").

The bench (``Bench.github_calls`` in bench/run.py) delivers the incident and waits for it; this
module sorts what the GitHub fake received (``BenchGitHub.arrivals``: arrival time, method,
target, status) into writes, reads answered 200, conditional reads answered 304, the followed
run's reads (polls), the artifact list and download links, and the artifact storage's downloads,
and puts the polls against the poll intervals the following spanned.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections import Counter
from typing import Any

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_RUN = re.compile(r"/repos/[^/]+/[^/]+/actions/runs/(?P<id>\d+)")
_RUN_ARTIFACTS = re.compile(r"/repos/[^/]+/[^/]+/actions/runs/\d+/artifacts")
_ARTIFACT_ZIP = re.compile(r"/repos/[^/]+/[^/]+/actions/artifacts/\d+/zip")
_REPO = re.compile(r"/repos/[^/]+/[^/]+")
_NUMBER = re.compile(r"/\d+(?=/|$)")

Arrival = tuple[float, str, str, int]  # epoch seconds, method, target, status


def kind(method: str, path: str) -> str:
    """What one request was, for the per-incident count."""
    if method in WRITES:
        return "write"
    if _RUN.fullmatch(path):
        return "run poll"
    if _RUN_ARTIFACTS.fullmatch(path):
        return "artifact list"
    if _ARTIFACT_ZIP.fullmatch(path):
        return "artifact link"
    return "other read"


def endpoint(method: str, path: str) -> str:
    """``METHOD /path`` with the repository and numbers generalised, for the breakdown."""
    path = _NUMBER.sub("/{n}", _REPO.sub("/repos/{o}/{r}", path, count=1))
    return f"{method} {path}"


def count(arrivals: list[Arrival], storage_statuses: list[int]) -> dict[str, Any]:
    """Calls by kind: writes, reads answered 200, 304s, other statuses; polls and artifact reads apart."""
    kinds: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    reads_200 = not_modified = other_status = 0
    for _, method, target, status in arrivals:
        path = urllib.parse.urlsplit(target).path
        what = kind(method, path)
        kinds[what] += 1
        endpoints[f"{endpoint(method, path)} -> {status}"] += 1
        statuses[str(status)] += 1
        if what == "write":
            continue
        if status == 304:
            not_modified += 1
        elif status == 200:
            reads_200 += 1
        else:
            other_status += 1  # the artifact link's 302, an error
    polls = [a for a in arrivals if kind(a[1], urllib.parse.urlsplit(a[2]).path) == "run poll"]
    return {
        "requests": len(arrivals),
        "writes": kinds["write"],
        "reads": len(arrivals) - kinds["write"],
        "reads_200": reads_200,
        "reads_304": not_modified,
        "reads_other_status": other_status,
        "run_polls": len(polls),
        "run_polls_200": sum(a[3] == 200 for a in polls),
        "run_polls_304": sum(a[3] == 304 for a in polls),
        "artifact_lists": kinds["artifact list"],
        "artifact_links": kinds["artifact link"],
        "other_reads": kinds["other read"],
        "storage_downloads": len(storage_statuses),
        "storage_statuses": dict(Counter(str(s) for s in storage_statuses)),
        "statuses": dict(statuses),
        "by_endpoint": dict(sorted(endpoints.items())),
    }


def following(polls: list[Arrival], *, follow_start: float, completed_at: float, poll_seconds: float,
              conditional_polls: int) -> dict[str, Any]:
    """The followed run's polls against the poll intervals the following spanned: from its start (the
    playbook run's end, when the first poll is scheduled) to the read that saw the run completed.

    Time from the start is cut into intervals of ``poll_seconds``; the check is that no interval
    holds more than one poll, so the polls are at most the intervals spanned (whole ones: the last
    is entered by the read that sees the run completed). ``polls_per_interval_exact`` divides by
    the span in intervals, unrounded: RQ keeps a scheduled job's due time in whole seconds, rounded
    down, so a poll may run up to a second before its due time and this can pass 1 by a little."""
    times = [a[0] for a in polls]
    offsets = [t - follow_start for t in times]
    span = max(offsets) if offsets else 0.0
    exact = span / poll_seconds
    spanned = max(1, math.ceil(exact - 1e-9))
    per_interval = Counter(int(o // poll_seconds) for o in offsets)
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    # the fewest polls, one every poll_seconds from the start, that could have seen it completed
    fewest = max(1, math.ceil((completed_at - follow_start) / poll_seconds - 1e-9))
    not_modified = sum(a[3] == 304 for a in polls)
    most = max(per_interval.values(), default=0)
    return {
        "poll_seconds": poll_seconds,
        "polls": len(polls),
        "polls_304": not_modified,
        "polls_sending_if_none_match": conditional_polls,
        "span_s": round(span, 2),
        "intervals_exact": round(exact, 2),
        "intervals": spanned,
        "polls_per_interval": round(len(polls) / spanned, 3),
        "polls_per_interval_exact": round(len(polls) / exact, 3) if exact > 0 else None,
        "most_polls_in_one_interval": most,
        "ok": most <= 1 and len(polls) <= spanned,
        "fewest_polls_to_see_it_completed": fewest,
        "completed_after_s": round(completed_at - follow_start, 2),
        "seen_completed_after_s": round(span, 2),
        "poll_offsets_s": [round(o, 2) for o in offsets],
        "poll_statuses": [a[3] for a in polls],
        "gaps_s": [round(g, 2) for g in gaps],  # the first from the start of the following
        "min_gap_between_polls_s": round(min(gaps[1:]), 2) if len(gaps) > 1 else None,
        # GitHub spends no rate limit on a 304: what the polls spent, and what the same polls would
        # have spent from a reader that sent no If-None-Match (each a 200)
        "rate_limited_polls": len(polls) - not_modified,
        "rate_limited_polls_unconditional": len(polls),
        "share_304": round(not_modified / len(polls), 3) if polls else 0.0,
    }


def summary_line(result: dict[str, Any]) -> str:
    calls, follow = result["calls"], result["following"]
    return (f"{calls['reads']} reads ({calls['reads_200']} answered 200, {calls['reads_304']} 304, "
            f"{calls['reads_other_status']} other), {calls['writes']} writes, {calls['storage_downloads']} storage "
            f"download(s); run polls {follow['polls']} over {follow['intervals_exact']} intervals of "
            f"{follow['poll_seconds']:g} s ({follow['span_s']} s) = {follow['polls_per_interval_exact']} per "
            f"interval, at most {follow['most_polls_in_one_interval']} in any interval")
