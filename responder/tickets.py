"""Incident ticket text: titles and Markdown bodies built from untrusted alert text.

Every label and annotation value is escaped: it can neither format the ticket, nor link,
nor mention people or teams.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from responder.alerts import Alert
from responder.runs import RunRecord, StepRecord

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
TITLE_LIMIT = 250


def escape_markdown(text: str) -> str:
    """Escape Markdown and HTML so untrusted text renders as the literal characters."""
    text = " ".join(text.split()) if "\n" in text else text
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # '@team' would notify; a zero-width joiner keeps it readable but inert.
    return text.replace("@", "@\u200d")


def title(alert: Alert, summary: str) -> str:
    line = " ".join(summary.split()) or alert.alertname
    text = f"[{alert.alertname}] {alert.model_id}: {line}"
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def _table(rows: Iterable[tuple[str, str]], header: tuple[str, str]) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {escape_markdown(k)} | {escape_markdown(v)} |" for k, v in rows]
    return lines


def body(run: RunRecord, *, runbook_url: str | None, checklist: tuple[str, list[str]] | None) -> str:
    """The Markdown body of a new incident ticket."""
    alert = run.alert
    lines = [
        f"**{escape_markdown(alert.alertname)}** is firing for model "
        f"`{alert.model_id}` since {alert.startsAt.isoformat()}.",
        "",
        "Opened by responder, playbook run `" + run.id + "`.",
        "",
    ]
    digest = next((s for s in run.steps if s.kind == "verify_manifest_digest"), None)
    if digest is not None and digest.outputs:
        lines += _digest_section(digest)
    if checklist is not None:
        heading, items = checklist
        lines += [f"### {escape_markdown(heading)}", ""]
        lines += [f"- [ ] {escape_markdown(item)}" for item in items]
        lines += [""]
    lines += ["### Labels", "", *_table(sorted(alert.labels.items()), ("label", "value")), ""]
    if alert.annotations:
        lines += ["### Annotations", "", *_table(sorted(alert.annotations.items()), ("annotation", "value")), ""]
    lines += ["### Links", ""]
    links = [
        ("Source (generatorURL)", alert.generatorURL),
        ("Alertmanager", run.external_url),
        ("Runbook", alert.annotations.get("runbook_url") or runbook_url or ""),
    ]
    lines += [f"- {name}: {_link(url)}" for name, url in links if url]
    lines += ["", "### Playbook steps so far", "", *step_table(run.steps)]
    return "\n".join(lines) + "\n"


def _digest_section(step: StepRecord) -> list[str]:
    out = step.outputs
    verdict = {
        "match": "✅ digests match",
        "mismatch": "❌ digests DO NOT match",
        "missing": "⚠️ a digest is missing",
    }
    return [
        "### Artifact digest",
        "",
        f"**{verdict.get(out.get('result', ''), out.get('result', ''))}**",
        "",
        f"- deployed (alert `deployed_digest`): `{_code(out.get('deployed', '')) or 'missing'}`",
        f"- manifest (`artifact.sha256`): `{_code(out.get('manifest', '')) or 'missing'}`",
        "",
    ]


def step_table(steps: list[StepRecord]) -> list[str]:
    if not steps:
        return ["(none)"]
    lines = ["| step | status | result |", "| --- | --- | --- |"]
    for s in steps:
        result = s.error or s.detail
        link = f" ([link]({s.url}))" if s.url and s.url.startswith(("http://", "https://")) else ""
        lines.append(f"| {escape_markdown(s.name)} | {s.status} | {escape_markdown(result)}{link} |")
    return lines


def _link(url: str) -> str:
    if url.startswith(("http://", "https://")) and not re.search(r"[\s<>()]", url):
        return f"<{url}>"
    return escape_markdown(url)


def _code(text: str) -> str:
    return text.replace("`", "'")
