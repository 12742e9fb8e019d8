"""Discord formatting: sources as suppressed-embed links under the 2000-character message limit."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.text import split_message as split_text
from rag.models import Answer, Citation

MESSAGE_LIMIT = 2000
FOOTER = "-# AI-generated from the docs; it can be wrong. Check the sources."


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
        parts.append(format_sources(answer.citations, answer.sources_heading))
    parts.append(FOOTER)
    return "\n\n".join(parts)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Discord messages of at most ``limit`` characters (see ``bot.text.split_message``)."""
    return split_text(text, limit)
