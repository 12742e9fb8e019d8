"""Plain data passed between the indexer, the store and the question path."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


def page_key(page_id: str) -> str:
    """The fixed-length key the store files a page's rows under: a page id (a path, a URL) can outgrow any field."""
    return hashlib.sha256(page_id.encode("utf-8", errors="surrogatepass")).hexdigest()


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
    kind: str = "section"  # "section": the packed section is the vector; "window": a small run of its words
    section: int = 0  # which packed section of the page (a window's text is its section's, for the prompt)
    window: str = ""  # a window's own words: what is embedded and searched instead of ``text``
    contextual: bool = True  # embedded after "title > heading"

    @property
    def embed_text(self) -> str:
        """What the embedding sees: the page title and heading give a chunk its context."""
        body = self.window or self.text
        return with_context(self.title, self.heading, body) if self.contextual else body


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
    kind: str = "section"  # which granularity matched; ``text`` is the section's either way
    section: int | None = None  # the page's packed section it belongs to; None: a group of its own

    @property
    def context_text(self) -> str:
        """The passage as it was embedded, for a reranker to read."""
        return with_context(self.title, self.heading, self.text)


@dataclass(frozen=True)
class Citation:
    number: int
    title: str
    url: str
    key: str = field(default="", compare=False)  # the retrieved source it stands for (``citations.source_key``)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    refused: bool = False
    hits: tuple[Hit, ...] = field(default=(), repr=False)
    request_id: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    uncertain: bool = False  # no sentence could be tied to a source: shown with "pages that might help"
    relevance: float | None = None  # the model's probability that the sources hold the answer, when asked
    confidence: float | None = None  # retrieval's confidence (the best dense cosine), what the refusal compares

    @property
    def unsure(self) -> bool:
        """Refused, or not tied to the docs: not something to post where nobody asked."""
        return self.refused or self.uncertain

    @property
    def sources_heading(self) -> str:
        """What the listed pages are to the reader: sources only when the answer stands on them."""
        if self.refused:
            return "Closest pages"
        return "Pages that might help" if self.uncertain else "Sources"


@dataclass
class IndexReport:
    pages_new: int = 0
    pages_changed: int = 0
    pages_unchanged: int = 0
    pages_removed: int = 0
    pages_failed: int = 0
    pages_repaired: int = 0
    pages_known: int = 0  # pages the record knew at the start: what "pages read of pages known" compares with
    chunks_written: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    sources_failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: IndexReport) -> None:
        for name in (
            "pages_new",
            "pages_changed",
            "pages_unchanged",
            "pages_removed",
            "pages_failed",
            "pages_repaired",
            "pages_known",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.chunks_written += other.chunks_written
        self.failures.extend(other.failures)
        self.sources_failed.extend(other.sources_failed)
        self.warnings.extend(other.warnings)

    @property
    def pages_seen(self) -> int:
        return self.pages_new + self.pages_changed + self.pages_unchanged + self.pages_failed

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> str:
        text = (
            f"{self.pages_new} new, {self.pages_changed} changed, {self.pages_unchanged} unchanged, "
            f"{self.pages_removed} removed, {self.pages_failed} failed pages; "
            f"{self.chunks_written} chunks written in {self.seconds:.1f}s"
        )
        if self.pages_repaired:
            text += f"; {self.pages_repaired} pages repaired (store and record disagreed)"
        if self.sources_failed:
            text += f"; {len(self.sources_failed)} source(s) failed"
        if self.warnings:
            text += "; " + "; ".join(self.warnings)
        return text
