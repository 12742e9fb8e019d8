"""Heading-aware, token-bounded chunks with overlap.

A chunk never spans two sections, so its heading path is exact and a citation can
deep-link to the section. Within a section, whole paragraphs and code blocks are
packed up to the embedding model's token budget; only a block too big on its own
is cut further (by lines, then by words).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.models import Chunk, Page

CHUNKER_VERSION = "1"
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int
    overlap_tokens: int = 32


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


class Chunker:
    def __init__(self, config: ChunkingConfig, count_tokens: Callable[[str], int]) -> None:
        self._config = config
        self._count = count_tokens

    def chunk_page(self, page: Page) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in page.sections:
            headings = section.headings
            if headings and headings[0].strip().lower() == page.title.strip().lower():
                headings = headings[1:]
            heading = " > ".join(headings)
            url = f"{page.url}#{section.anchor}" if section.anchor and page.url else page.url
            header = " > ".join(p for p in (page.title, heading) if p)
            budget = max(32, self._config.max_tokens - self._count(header) - 4)
            for text in self._pack(split_blocks(section.text), budget):
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
                    )
                )
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
