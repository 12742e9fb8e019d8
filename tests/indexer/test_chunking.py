"""Chunk URLs: deep links only where the page has an address."""

from __future__ import annotations

from indexer.chunking import Chunker, ChunkingConfig
from rag.models import Page, Section


def _chunker() -> Chunker:
    return Chunker(ChunkingConfig(max_tokens=128, overlap_tokens=0), lambda text: len(text.split()))


def test_sections_deep_link_into_a_published_page() -> None:
    page = Page(
        "docs", "guide.md", "https://example.org/guide", "Guide", (Section(("Install",), "install", "pip"),), "h"
    )
    assert [chunk.url for chunk in _chunker().chunk_page(page)] == ["https://example.org/guide#install"]


def test_a_page_without_url_gets_no_bare_anchor() -> None:
    page = Page("docs", "guide.md", "", "Guide", (Section(("Install",), "install", "pip install x"),), "h")
    assert [chunk.url for chunk in _chunker().chunk_page(page)] == [""]
