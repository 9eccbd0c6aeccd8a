"""A change request's names (branch, title, job ids), who it asks to review and whose reviews
approve it: rules with no I/O.

The runbook's gate: the Platform ML lead **and** the Responsible AI reviewer, one approver of each
group of RESPONDER_APPROVERS, two different people (``approvals.assignment``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from responder import approvals
from responder.integrations.github_changes import PullState
from responder.runs import Approval

GROUPS = ("ml-lead", "responsible-ai")  # the runbook's approval gate: one of each, two people


def branch_name(model_id: str, version: str) -> str:
    return f"responder/{model_id}-{version}"


def title(model_id: str, version: str) -> str:
    return f"[change-request] {model_id} {version}"


def job_id(run_id: str, step: str, suffix: str) -> str:
    """An RQ job id (letters, digits, '-' and '_' only: an included step's name has a '.')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{run_id}-change-request-{step}-{suffix}")


def reviewers(approvers: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The logins and team slugs (without the org) of the approval gate's groups, each once."""
    entries = [e for g in GROUPS for e in approvers.get(g, [])]
    users = [e for e in entries if not e.startswith("@")]
    teams = [ref.partition("/")[2] for ref in team_refs(approvers)]
    return list(dict.fromkeys(users)), list(dict.fromkeys(teams))


def team_refs(approvers: dict[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(e[1:] for g in GROUPS for e in approvers.get(g, []) if e.startswith("@") and "/" in e))


def approved_by(pull: PullState, approvers: dict[str, list[str]]) -> dict[str, str]:
    """Group -> person, as far as approvals cover the groups: a person's latest review that approves
    or requests changes is theirs (a later "changes requested" or a dismissal takes an approval back),
    and two groups take two people (``approvals.assignment``)."""
    latest: dict[str, tuple[str, datetime | None]] = {}
    for review in sorted(pull.reviews, key=lambda r: r.id):
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.login] = (review.state, review.submitted_at)
    given = [
        Approval(who=login, decision="approve", at=at or datetime.now(UTC), how="pull request review")
        for login, (state, at) in latest.items()
        if state == "APPROVED"
    ]
    return approvals.assignment(GROUPS, approvers, given)
