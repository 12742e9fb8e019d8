"""Approved community answers are indexed as the ``community`` source, cited by author with a link, and pruned when
no longer approved."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.community import CommunityDocs
from indexer.extract import extract_markdown
from indexer.extract.common import clean_title
from indexer.runner import Indexer
from rag.learned import Learned, LearnedStore
from rag.retrieval import Retriever
from rag.settings import RetrievalSettings, TuningSettings

pytestmark = pytest.mark.integration


async def test_approved_pairs_are_indexed_cited_by_author_and_pruned(tmp_path: Path, embedder, store) -> None:
    path = tmp_path / "learned.sqlite3"
    learned = LearnedStore(path)
    pair = await learned.capture(
        platform="discord",
        space="1",
        channel="2",
        thread="3",
        question="How do I make the zorblax cache survive restarts?",
        answer="Set `zorblax.persist = true` and mount the cache folder.",
        link="https://discord.com/channels/1/3/4",
        author="ada",
        author_id=10,
        asker_id=11,
    )
    await Indexer(embedder, store).run([CommunityDocs(path)])
    assert await store.count() == 0, "pending pairs are never indexed"

    await learned.decide(pair, "approved")
    report = await Indexer(embedder, store).run([CommunityDocs(path)])
    assert report.pages_new == 1
    retriever = Retriever(embedder, store, RetrievalSettings(), TuningSettings())
    hits = (await retriever.retrieve("zorblax cache after restart")).hits
    assert hits[0].title == "Community answer by @ada" and hits[0].url == "https://discord.com/channels/1/3/4"

    await learned.decide(pair, "rejected")
    report = await Indexer(embedder, store).run([CommunityDocs(path)])
    assert report.pages_removed == 1 and await store.count() == 0
    learned.close()


@pytest.mark.parametrize("author", ["ada\\", 'ada "the helper"', "ada\ntitle: injected", "ada: #1 ---"])
def test_the_author_name_never_breaks_the_page_front_matter(author: str) -> None:
    pair = Learned(
        1, "discord", "2", "3", "How?", "Like this.", "https://discord.com/channels/1/2/3", author, 0.0, "approved"
    )
    extracted = extract_markdown(pair.as_page(), path_hint="learned/1")
    assert extracted.title == clean_title(f"Community answer by @{author}")
    body = "\n".join(section.text for section in extracted.sections)
    assert "title" not in body and "---" not in body and "Like this." in body
