"""Heading-aware chunks at two granularities: whole sections and small overlapping windows inside them.

A chunk never spans two sections, so its heading path is exact and a citation can
deep-link to the section. Within a section, whole paragraphs and code blocks are
packed up to the embedding model's token budget; only a block too big on its own
is cut further (by lines, then by words). That packed section is one vector (precise when a
question matches the section as a whole); small overlapping windows of its words are more vectors (they
find a question about one sentence of a long section). A window row carries its section's text, so the
prompt always gets the section around a winning window.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.models import Chunk, Page
from rag.settings import TuningSettings

CHUNKER_VERSION = "2"
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Granularity:
    """Which vectors a section gets (``TuningSettings``, set by the benchmark): itself, and/or windows of its words."""

    sections: bool = True
    windows: bool = False  # off until it wins on the cross-validated real questions (bench/crossval.py)
    window_chars: int = 512
    window_overlap_chars: int = 96
    window_context: bool = True  # windows embedded after "title > heading", as sections are

    @classmethod
    def from_settings(cls, settings: TuningSettings) -> Granularity:
        return cls(
            sections=settings.section_chunks,
            windows=settings.window_chunks,
            window_chars=settings.window_chars,
            window_overlap_chars=settings.window_overlap_chars,
            window_context=settings.window_context,
        )

    @property
    def tag(self) -> str:
        """Part of every page hash: a page is re-chunked when the granularity changes."""
        return f"s{int(self.sections)}w{int(self.windows)}:{self.window_chars}:{self.window_overlap_chars}:" + str(
            int(self.window_context)
        )


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int
    overlap_tokens: int = 32
    granularity: Granularity = Granularity()


def chunk_id(source_id: str, page_id: str, ordinal: int) -> str:
    return hashlib.sha1(f"{source_id}\x00{page_id}\x00{ordinal}".encode()).hexdigest()


def page_hash(*parts: str) -> str:
    """Content hash deciding whether a page must be re-embedded."""
    digest = hashlib.sha256(CHUNKER_VERSION.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part.encode("utf-8", errors="replace"))
    return digest.hexdigest()[:40]


def split_blocks(text: str) -> list[str]:
    """Paragraphs, keeping each fenced code block whole."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        marker = _FENCE.match(line)
        if fence is None and marker:
            if current:
                blocks.append("\n".join(current))
            current, fence = [line], marker.group(1)
            continue
        if fence is not None:
            current.append(line)
            if marker and marker.group(1) == fence and len(current) > 1:
                blocks.append("\n".join(current))
                current, fence = [], None
            continue
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return [b for b in blocks if b.strip()]


def windows(text: str, size: int, overlap: int) -> list[str]:
    """Runs of whole words of about ``size`` characters, each starting ``overlap`` characters before the
    previous one ended (a single word longer than ``size`` is a window of its own)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    out: list[str] = []
    first = 0
    while first < len(words):
        start = words[first][0]
        last = first
        while last + 1 < len(words) and words[last + 1][1] - start <= size:
            last += 1
        out.append(text[start : words[last][1]])
        if last == len(words) - 1:
            break
        resume = words[last][1] - overlap
        nxt = first + 1
        while nxt <= last and words[nxt][0] < resume:
            nxt += 1
        first = nxt
    return out


class Chunker:
    def __init__(self, config: ChunkingConfig, count_tokens: Callable[[str], int]) -> None:
        self._config = config
        self._count = count_tokens

    def chunk_page(self, page: Page) -> list[Chunk]:
        """Each packed section as a ``section`` row and, where it is longer than one window, its windows as
        ``window`` rows; ordinals run 0..n-1 over both, and ``section`` numbers the packed sections."""
        grain = self._config.granularity
        with_sections = grain.sections or not grain.windows  # neither means sections: a page needs rows
        size = max(64, grain.window_chars)
        overlap = min(max(0, grain.window_overlap_chars), size // 2)
        chunks: list[Chunk] = []
        number = 0
        for section in page.sections:
            headings = section.headings
            if headings and headings[0].strip().lower() == page.title.strip().lower():
                headings = headings[1:]
            heading = " > ".join(headings)
            url = f"{page.url}#{section.anchor}" if section.anchor and page.url else page.url
            header = " > ".join(p for p in (page.title, heading) if p)
            budget = max(32, self._config.max_tokens - self._count(header) - 4)
            for text in self._pack(split_blocks(section.text), budget):
                pieces = windows(text, size, overlap) if grain.windows else []
                if with_sections and len(pieces) <= 1:
                    pieces = []  # the section row already is the one window
                rows = [("section", "", True)] if with_sections else []
                rows += [("window", piece, grain.window_context) for piece in pieces]
                for kind, window, contextual in rows:
                    ordinal = len(chunks)
                    chunks.append(
                        Chunk(
                            chunk_id=chunk_id(page.source_id, page.page_id, ordinal),
                            source_id=page.source_id,
                            page_id=page.page_id,
                            ordinal=ordinal,
                            url=url,
                            title=page.title,
                            heading=heading,
                            text=text,
                            content_hash=page.content_hash,
                            kind=kind,
                            section=number,
                            window=window,
                            contextual=contextual,
                        )
                    )
                number += 1
        return chunks

    def _pack(self, blocks: list[str], budget: int) -> list[str]:
        pieces: list[tuple[str, int]] = []
        for block in blocks:
            tokens = self._count(block)
            if tokens <= budget:
                pieces.append((block, tokens))
            else:
                pieces.extend(self._split_big(block, budget))
        out: list[str] = []
        current: list[tuple[str, int]] = []
        used = 0
        for piece, tokens in pieces:
            if current and used + tokens > budget:
                out.append("\n\n".join(p for p, _ in current))
                current, used = self._overlap(current, budget - tokens), 0
                used = sum(t for _, t in current)
            current.append((piece, tokens))
            used += tokens
        if current:
            out.append("\n\n".join(p for p, _ in current))
        return out

    def _overlap(self, previous: list[tuple[str, int]], room: int) -> list[tuple[str, int]]:
        """The trailing pieces of the previous chunk, up to the overlap budget."""
        limit = min(self._config.overlap_tokens, room)
        kept: list[tuple[str, int]] = []
        total = 0
        for piece, tokens in reversed(previous):
            if total + tokens > limit:
                break
            kept.insert(0, (piece, tokens))
            total += tokens
        return kept

    def _split_big(self, block: str, budget: int) -> list[tuple[str, int]]:
        """Cut an oversized block by lines, and an oversized line by words."""
        units: list[str] = []
        for line in block.splitlines():
            if self._count(line) <= budget:
                units.append(line)
                continue
            words = line.split(" ")
            step = max(1, len(words) * budget // max(1, self._count(line)) - 1)
            units.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
        pieces: list[tuple[str, int]] = []
        current: list[str] = []
        used = 0
        for unit in units:
            tokens = self._count(unit) + 1  # +1 for the joining newline
            if current and used + tokens > budget:
                pieces.append(("\n".join(current), used))
                current, used = [], 0
            current.append(unit)
            used += tokens
        if current:
            pieces.append(("\n".join(current), used))
        return pieces
