"""Who may approve what: the rules of an approval step, with no I/O.

A step names groups (``ml-lead``, ``responsible-ai``); ``RESPONDER_APPROVERS`` names their
people. The step passes when one person from **each** group has approved, and they are distinct
people: one person in two groups counts once (for one group), so two groups always take two
people. The person who started the run never counts, and any approver's rejection ends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import permutations

from responder.runs import Approval


def approvers_of(groups: Sequence[str], approvers: Mapping[str, Sequence[str]]) -> set[str]:
    return {person for group in groups for person in approvers.get(group, ())}


def assignment(
    groups: Sequence[str], approvers: Mapping[str, Sequence[str]], approvals: Sequence[Approval]
) -> dict[str, str]:
    """The most groups covered by distinct approving people: group -> person."""
    people = list(dict.fromkeys(a.who for a in approvals if a.decision == "approve"))
    best: dict[str, str] = {}
    for order in permutations(people, min(len(people), len(groups))):
        taken: dict[str, str] = {}
        for person in order:
            group = next((g for g in groups if g not in taken and person in approvers.get(g, ())), None)
            if group is not None:
                taken[group] = person
        if len(taken) > len(best):
            best = taken
        if len(best) == len(groups):
            break
    return best


def missing(groups: Sequence[str], approvers: Mapping[str, Sequence[str]], approvals: Sequence[Approval]) -> list[str]:
    """The groups still without an approval of their own."""
    covered = assignment(groups, approvers, approvals)
    return [g for g in groups if g not in covered]


def refusal(
    who: str,
    groups: Sequence[str],
    approvers: Mapping[str, Sequence[str]],
    approvals: Sequence[Approval],
    requester: str | None,
) -> str | None:
    """Why ``who`` may not answer a step waiting for ``groups``; None when they may."""
    if requester is not None and who == requester:
        return f"{who} started this run and cannot approve it"
    if who not in approvers_of(groups, approvers):
        return f"{who} is not an approver of {' or '.join(groups)} (RESPONDER_APPROVERS)"
    if any(a.who == who for a in approvals):
        return f"{who} has already answered"
    return None
