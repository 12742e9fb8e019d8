"""What both extractors share: the result type, anchors, and grouping blocks under headings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.models import Section

FALLBACK_TITLE = "Untitled"
IncludeResolver = Callable[[str], "str | None"]

# Events produced by both extractors: ("h", level, text, anchor) or ("b", kind, text).
Event = tuple[str, int, str, str] | tuple[str, str, str]

_SLUG_DROP = re.compile(r"[^\w\- ]")


@dataclass(frozen=True)
class Extracted:
    title: str
    sections: tuple[Section, ...]


def slugify(heading: str) -> str:
    """GitHub-style anchor, so deep links built from markdown headings match the rendered site."""
    text = " ".join(heading.split()).lower()
    return _SLUG_DROP.sub("", text).replace(" ", "-")


class Anchors:
    """Slug anchors made unique the way GitHub does (``x``, ``x-1``, ``x-2``)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._next: dict[str, int] = {}

    def explicit(self, anchor: str) -> str:
        self._seen.add(anchor)
        return anchor

    def slug(self, text: str) -> str:
        base = slugify(text)
        slug, n = base, self._next.get(base, 0)
        while slug in self._seen:
            n += 1
            slug = f"{base}-{n}"
        self._next[base] = n
        self._seen.add(slug)
        return slug


def join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks, except consecutive items of one list which stay tight.

    ``list`` marks the first item of a top-level list, so two adjacent lists stay apart.
    """
    out: list[str] = []
    prev = ""
    for kind, text in blocks:
        if out:
            out.append("\n" if kind == "li" and prev in ("li", "list") else "\n\n")
        out.append(text)
        prev = kind
    return "".join(out)


def assemble(events: list[Event]) -> tuple[Section, ...]:
    """Group blocks under the heading path in force; sections without text are dropped."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    anchor = ""
    blocks: list[tuple[str, str]] = []

    def finish() -> None:
        text = join_blocks(blocks)
        if text.strip():
            sections.append(Section(tuple(t for _, t in path), anchor, text))

    for event in events:
        if len(event) == 4:
            finish()
            blocks = []
            _, level, text, anchor = event
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, text))
        else:
            blocks.append((event[1], event[2]))
    finish()
    return tuple(sections)


def clean_title(text: str | None) -> str:
    return " ".join((text or "").split())


def fenced(code: str, language: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run inside the code."""
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}{language}\n{code}\n{fence}"
