"""Discord formatting: sources as suppressed-embed links, and splitting under the 2000-character limit."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.models import Answer, Citation

MESSAGE_LIMIT = 2000
FOOTER = "-# AI-generated from the docs; it can be wrong. Check the sources."
_FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")


def _escape_label(text: str) -> str:
    return re.sub(r"([\[\]\\*_`~|])", r"\\\1", text)[:180]


def format_sources(citations: Sequence[Citation], heading: str = "Sources") -> str:
    """Numbered sources; a page without a URL (a folder source without base_url) is its title, unlinked."""
    lines = [f"**{heading}**"]
    for citation in citations:
        label = _escape_label(citation.title)
        if not citation.url:
            lines.append(f"{citation.number}. {label}")
            continue
        url = citation.url.replace(">", "%3E").replace(" ", "%20")
        lines.append(f"{citation.number}. [{label}](<{url}>)")
    return "\n".join(lines)


def format_answer(answer: Answer) -> str:
    """The whole reply: answer, sources, footer (split later if it is too long)."""
    parts = [answer.text]
    if answer.citations:
        parts.append(format_sources(answer.citations, "Closest pages" if answer.refused else "Sources"))
    parts.append(FOOTER)
    return "\n\n".join(parts)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at paragraph, then line, then word boundaries; a code block cut in two is closed and reopened."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None  # the opening fence line while inside a code block

    def emit() -> None:
        nonlocal current, size
        body = "\n".join(current).rstrip("\n")
        if fence is not None:
            body += "\n```"
        if body.strip():
            parts.append(body)
        current = [fence] if fence is not None else []
        size = len(fence) + 1 if fence is not None else 0

    reserve = 8  # room for a closing fence
    for line in _lines_within(text, limit - reserve - 40):
        marker = _FENCE.match(line)
        if size + len(line) + 1 > limit - reserve:
            emit()
        elif fence is None and not line.strip() and size > limit * 0.6:
            emit()  # a paragraph break late in a message: a natural place to split
            continue
        current.append(line)
        size += len(line) + 1
        if marker:
            fence = None if fence is not None else line.strip()
    if current:
        emit()  # closes a code block left open at the end
    return parts


def _lines_within(text: str, width: int) -> list[str]:
    """Lines, with any line longer than ``width`` cut at spaces (or hard, if it has none)."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > width // 2 else width
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return out
