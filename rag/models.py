"""Plain data passed between the indexer, the store and the question path."""

from __future__ import annotations

from dataclasses import dataclass, field


def with_context(title: str, heading: str, text: str) -> str:
    context = " > ".join(part for part in (title, heading) if part)
    return f"{context}\n\n{text}" if context else text


@dataclass(frozen=True)
class Section:
    """A run of page text under one heading path."""

    headings: tuple[str, ...]
    anchor: str
    text: str


@dataclass(frozen=True)
class Page:
    """One extracted document, identified within its source by ``page_id``."""

    source_id: str
    page_id: str
    url: str
    title: str
    sections: tuple[Section, ...]
    content_hash: str


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    source_id: str
    page_id: str
    ordinal: int
    url: str
    title: str
    heading: str
    text: str
    content_hash: str

    @property
    def embed_text(self) -> str:
        """What the embedding sees: the page title and heading give a chunk its context."""
        return with_context(self.title, self.heading, self.text)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    page_id: str
    url: str
    title: str
    heading: str
    text: str
    score: float
    similarity: float = 0.0  # dense cosine to the query, whatever ranked the hit

    @property
    def context_text(self) -> str:
        """The passage as it was embedded, for a reranker to read."""
        return with_context(self.title, self.heading, self.text)


@dataclass(frozen=True)
class Citation:
    number: int
    title: str
    url: str


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    refused: bool = False
    hits: tuple[Hit, ...] = field(default=(), repr=False)
    request_id: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
