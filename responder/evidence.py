"""What a change request carries: the training summary a retraining run uploaded, and the
runbook's evidence found among the retraining and governance runs' artifacts (each named, the
missing ones said to be missing) for the pull request's body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from responder.alerts import IDENTIFIER
from responder.document import Block, Code, Document, Heading, Link, Table, Text, para
from responder.errors import PermanentError
from responder.manifest import is_sha256, normalise_digest
from responder.manifest_edit import Change
from responder.runs import FollowedRun, RunRecord

TRAINING_SUMMARY = "training-summary"  # the artifact (``training-summary`` or ``training-summary.json``)
TRAINING_SUMMARY_FILE = "training-summary.json"
MAX_METRICS = 30  # rows of validation metrics shown in the body


@dataclass(frozen=True)
class TrainingSummary:
    """``training-summary.json`` as ``model-retraining.yml`` uploads it."""

    model_id: str
    version: str
    sha256: str
    uri: str | None
    status: str
    metrics: dict[str, Any]

    @classmethod
    def parse(cls, document: dict[str, Any], *, model_id: str, run_id: str) -> TrainingSummary:
        """The summary, or PermanentError saying what is wrong with it."""
        where = f"{TRAINING_SUMMARY_FILE} of run {run_id}"
        artifact = document.get("artifact")
        version, metrics, status = document.get("version"), document.get("metrics"), document.get("status")
        sha256 = normalise_digest(artifact.get("sha256") or "") if isinstance(artifact, dict) else ""
        uri = artifact.get("uri") if isinstance(artifact, dict) else None
        problems = [
            *([f"modelId is {str(document.get('modelId'))[:60]!r}, not {model_id}"]
              if document.get("modelId") != model_id else []),
            *(["version is not an identifier"] if not (isinstance(version, str) and IDENTIFIER.fullmatch(version))
              else []),
            *(["artifact.sha256 is not a sha256 digest"] if not is_sha256(sha256) else []),
            *(["metrics is not an object"] if not isinstance(metrics, dict) else []),
            *(["status is not a string"] if not isinstance(status, str) else []),
        ]
        if problems:
            raise PermanentError(f"{where}: {'; '.join(problems)}", system="github")
        assert isinstance(version, str) and isinstance(metrics, dict) and isinstance(status, str)
        if status != "pass":
            raise PermanentError(f"{where}: status is {status[:40]!r}, not pass", system="github")
        return cls(model_id, version, sha256, uri if isinstance(uri, str) and uri else None, status, metrics)


@dataclass(frozen=True)
class Evidence:
    """One item of the runbook's change-request attachments, and where it was found (if anywhere)."""

    what: str
    artifact: str
    run: FollowedRun | None
    status: str | None = None
    reason: str | None = None


def gather(retraining: FollowedRun, governance: FollowedRun) -> list[Evidence]:
    """The training summary (retraining run), the bias audit report and the security scan summary
    (the governance run's for the new version, else the retraining run's)."""
    wanted = (
        ("training summary and validation metrics", TRAINING_SUMMARY, (retraining,)),
        ("bias audit report", "bias-report", (governance, retraining)),
        ("security scan summary", "security-scan", (governance, retraining)),
    )
    found = []
    for what, name, runs in wanted:
        item = Evidence(what, name, None)
        for run in runs:
            artifact = next((a for a in run.artifacts if a.name in (name, f"{name}.json")), None)
            if artifact is not None:
                item = Evidence(what, artifact.name, run, artifact.status, artifact.reason)
                break
        found.append(item)
    return found


def _run_link(run: FollowedRun) -> Link | Code:
    label = f"{run.workflow} run {run.run_id}"
    return Link(label, run.html_url) if run.html_url else Code(label)


def _scalar(value: Any) -> str:
    return str(value) if value is None or isinstance(value, bool | int | float | str) else "(nested)"


def pull_body(
    record: RunRecord,
    summary: TrainingSummary,
    changes: list[Change],
    *,
    retraining: FollowedRun,
    governance: FollowedRun,
    ticket_url: str | None,
    manifest_path: str,
) -> Document:
    """The change request's description: what changes, the evidence, the runs and the ticket."""
    ticket: Link | Text = Link("the incident ticket", ticket_url) if ticket_url else Text("no open incident ticket")
    blocks: list[Block] = [
        para(
            "Proposed by responder: ",
            Code(summary.model_id),
            " ",
            Code(summary.version),
            " from retraining ",
            _run_link(retraining),
            " (concluded ",
            Text(retraining.conclusion or "-", strong=True),
            "), checked by governance ",
            _run_link(governance),
            " (concluded ",
            Text(governance.conclusion or "-", strong=True),
            "). See ",
            ticket,
            "; playbook run ",
            Code(record.id),
            ".",
        ),
        para("Approval gate: one approver of ml-lead and one of responsible-ai, two people. responder never merges."),
        Heading(f"{manifest_path}"),
        Table(("field", "from", "to"), tuple((c.path, _scalar(c.old), c.new) for c in changes)),
        Heading("Evidence"),
        Table(
            ("evidence", "artifact", "run", "status"),
            tuple(
                (
                    e.what,
                    e.artifact,
                    f"{e.run.workflow} run {e.run.run_id}" if e.run else "-",
                    (e.status or (f"not read: {e.reason}" if e.reason else "-")) if e.run else "missing",
                )
                for e in gather(retraining, governance)
            ),
        ),
        Heading("Training summary"),
        Table(
            ("field", "value"),
            (
                ("modelId", summary.model_id),
                ("version", summary.version),
                ("artifact.sha256", summary.sha256),
                *((("artifact.uri", summary.uri),) if summary.uri else ()),
                ("status", summary.status),
            ),
        ),
        Heading("Validation metrics"),
    ]
    metrics = list(summary.metrics.items())
    if metrics:
        blocks.append(Table(("metric", "value"), tuple((k, _scalar(v)) for k, v in metrics[:MAX_METRICS])))
    else:
        blocks.append(para("The training summary lists no metrics."))
    for run in (retraining, governance):
        names = ", ".join(a.name for a in run.artifacts) or "none"
        blocks.append(para("Artifacts of ", _run_link(run), f": {names}."))
    return Document.of(*blocks)
