"""Ticket text as a small document model, rendered per tracker.

Tickets and comments are built once as a ``Document`` of blocks; GitHub gets Markdown and
Jira gets wiki markup. Every piece of text in a block is untrusted (it may come from alert
labels and annotations) and is escaped by the renderer, so it can neither format the
ticket, nor link, nor mention people; only ``Link`` targets that are http(s) URLs become
links, and ``Code`` spans hold text literally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


Inline = Text | Code | Link


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Checklist:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


Block = Heading | Paragraph | Table | Checklist | Bullets


@dataclass(frozen=True)
class Document:
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, *blocks: Block) -> Document:
        return cls(tuple(blocks))

    @classmethod
    def paragraph(cls, *parts: Inline | str) -> Document:
        return cls.of(para(*parts))

    def plain(self) -> str:
        """Unformatted text, for the run record and dry-run details."""
        return render_plain(self)


def para(*parts: Inline | str) -> Paragraph:
    return Paragraph(tuple(Text(p) if isinstance(p, str) else p for p in parts))


def _safe_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and not re.search(r"[\s<>()\[\]{}|\"'`]", url)


def _one_line(text: str) -> str:
    """Collapse whitespace (newlines included) to single spaces: untrusted text cannot start a block."""
    return re.sub(r"\s+", " ", text)


# --- Markdown (GitHub) -------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def escape_markdown(text: str) -> str:
    """Escape Markdown and HTML so untrusted text renders as the literal characters."""
    text = _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # '@team' would notify; a zero-width joiner keeps it readable but inert.
    return text.replace("@", "@\u200d")


def _md_inline(part: Inline) -> str:
    if isinstance(part, Code):
        return "`" + _one_line(part.text).replace("`", "'") + "`"
    if isinstance(part, Link):
        if _safe_url(part.url):
            return f"[{escape_markdown(part.label)}]({part.url})"
        return escape_markdown(f"{part.label}: {part.url}")
    text = escape_markdown(part.text)
    return f"**{text}**" if part.strong and text else text


def render_markdown(doc: Document) -> str:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"### {escape_markdown(block.text)}")
        elif isinstance(block, Paragraph):
            out.append("".join(_md_inline(p) for p in block.parts))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(escape_markdown(h) for h in block.header) + " |"]
            lines.append("|" + " --- |" * len(block.header))
            lines += ["| " + " | ".join(escape_markdown(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Checklist):
            out.append("\n".join(f"- [ ] {escape_markdown(item)}" for item in block.items))
        else:
            out.append("\n".join("- " + "".join(_md_inline(p) for p in item) for item in block.items))
    return "\n\n".join(out) + "\n"


# --- Jira wiki markup (REST API v2, Cloud and Data Center) ------------------------------

_JIRA_SPECIAL = re.compile(r"([\\{}\[\]|*_+\-^~?#!()])")


def escape_jira(text: str) -> str:
    """Escape wiki markup so untrusted text is literal: no macros, links, mentions or formatting."""
    return _JIRA_SPECIAL.sub(r"\\\1", _one_line(text)).replace("@", "@\u200d")


def _jira_inline(part: Inline) -> str:
    if isinstance(part, Code):
        return "{{" + escape_jira(part.text) + "}}"
    if isinstance(part, Link):
        if _safe_url(part.url):
            return f"[{escape_jira(part.label)}|{part.url}]"
        return escape_jira(f"{part.label}: {part.url}")
    text = escape_jira(part.text)
    return f"*{text}*" if part.strong and text else text


def render_jira(doc: Document) -> str:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"h3. {escape_jira(block.text)}")
        elif isinstance(block, Paragraph):
            out.append("".join(_jira_inline(p) for p in block.parts))
        elif isinstance(block, Table):
            lines = ["||" + "||".join(escape_jira(h) for h in block.header) + "||"]
            lines += ["|" + "|".join(escape_jira(c) or " " for c in row) + "|" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Checklist):
            out.append("\n".join(f"* (?) {escape_jira(item)}" for item in block.items))
        else:
            out.append("\n".join("* " + "".join(_jira_inline(p) for p in item) for item in block.items))
    return "\n\n".join(out) + "\n"


# --- plain text --------------------------------------------------------------------------


def _plain_inline(part: Inline) -> str:
    if isinstance(part, Link):
        return f"{part.label} ({part.url})"
    return part.text


def render_plain(doc: Document) -> str:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(block.text)
        elif isinstance(block, Paragraph):
            out.append("".join(_plain_inline(p) for p in block.parts))
        elif isinstance(block, Table):
            out.append("\n".join(": ".join(row) for row in block.rows))
        elif isinstance(block, Checklist):
            out.append("\n".join(f"[ ] {item}" for item in block.items))
        else:
            out.append("\n".join("- " + "".join(_plain_inline(p) for p in item) for item in block.items))
    return "\n".join(out)
