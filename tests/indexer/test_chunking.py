"""Chunk URLs: deep links only where the page has an address."""

from __future__ import annotations

from indexer.chunking import Chunker, ChunkingConfig, Granularity, windows
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


def _grained(**grain: object) -> Chunker:
    config = ChunkingConfig(max_tokens=64, overlap_tokens=0, granularity=Granularity(**grain))  # type: ignore[arg-type]
    return Chunker(config, lambda text: len(text.split()))


LONG = " ".join(f"word{i:02d}" for i in range(50))  # 50 words, 349 characters: one section, several windows
PAGE = Page(
    "docs",
    "guide.md",
    "https://example.org/guide",
    "Guide",
    (Section(("Install",), "install", LONG), Section(("Usage",), "usage", "short usage note")),
    "h",
)


def test_a_long_section_gets_its_own_vector_and_overlapping_windows_carrying_its_text() -> None:
    chunks = _grained(windows=True, window_chars=100, window_overlap_chars=20).chunk_page(PAGE)
    assert [c.ordinal for c in chunks] == list(range(len(chunks))), "ordinals run over both granularities"
    install = [c for c in chunks if c.section == 0]
    assert [c.kind for c in install] == ["section"] + ["window"] * (len(install) - 1) and len(install) > 3
    assert all(c.text == LONG and c.url.endswith("#install") for c in install), "the prompt gets the section"
    windows = [c.window for c in install[1:]]
    assert all(len(w) <= 100 for w in windows) and " ".join(windows).split()[-1] == "word49"
    assert windows[0].split()[-3:] == windows[1].split()[:3], "consecutive windows overlap by ~20 characters"
    assert install[1].embed_text == f"Guide > Install\n\n{windows[0]}", "a window keeps its title > heading prefix"
    usage = [c for c in chunks if c.section == 1]
    assert [(c.kind, c.text) for c in usage] == [("section", "short usage note")], "a short section is one window"


def test_granularities_can_be_switched_off() -> None:
    sections = _grained().chunk_page(PAGE)
    assert [(c.kind, c.section) for c in sections] == [("section", 0), ("section", 1)]
    windows = _grained(sections=False, windows=True, window_chars=100, window_context=False).chunk_page(PAGE)
    assert {c.kind for c in windows} == {"window"} and [c.ordinal for c in windows] == list(range(len(windows)))
    assert windows[0].embed_text == windows[0].window, "without context a window is embedded as it is"
    assert windows[-1].embed_text == "short usage note" and windows[-1].text == "short usage note"


def test_windows_are_whole_words_of_about_the_given_size() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    assert windows(text, 18, 6) == ["alpha beta gamma", "gamma delta", "delta epsilon zeta", "zeta eta theta"]
    assert windows("x" * 40 + " y", 10, 2) == ["x" * 40, "y"], "a word longer than a window is a window"
    assert windows("", 10, 2) == [] and windows("one", 10, 2) == ["one"]
