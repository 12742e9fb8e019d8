"""Approved community answers are indexed under their server's or workspace's community source, cited by author with
a link, read only by that space's questions, and pruned when no longer approved."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.community import community_sources
from indexer.extract import extract_markdown
from indexer.extract.common import clean_title
from indexer.local import FolderDocs
from indexer.runner import Indexer
from rag.learned import Learned, LearnedStore
from rag.retrieval import Retriever
from rag.scope import SearchScope, visible_communities
from rag.settings import FolderSource, RetrievalSettings, TuningSettings
from tests.pairs import capture

pytestmark = pytest.mark.integration


async def test_approved_pairs_are_indexed_cited_by_author_and_pruned(tmp_path: Path, embedder, store) -> None:
    path = tmp_path / "learned.sqlite3"
    learned = LearnedStore(path)
    pair = await capture(
        learned,
        question="How do I make the zorblax cache survive restarts?",
        answer="Set `zorblax.persist = true` and mount the cache folder.",
        link="https://discord.com/channels/1/3/4",
    )
    await Indexer(embedder, store).run(community_sources(path))
    assert await store.count() == 0, "pending pairs are never indexed"

    await learned.decide(pair, "approved")
    report = await Indexer(embedder, store).run(community_sources(path))
    assert report.pages_new == 1
    retriever = Retriever(embedder, store, RetrievalSettings(), TuningSettings())
    hits = (await retriever.retrieve("zorblax cache after restart")).hits
    assert hits[0].title == "Community answer by @ada" and hits[0].url == "https://discord.com/channels/1/3/4"
    here = SearchScope(communities=visible_communities("discord", "1"))
    assert (await retriever.retrieve("zorblax cache after restart", scope=here)).hits[0].title == hits[0].title
    elsewhere = SearchScope(communities=visible_communities("discord", "2"))
    assert not (await retriever.retrieve("zorblax cache after restart", scope=elsewhere)).hits, "another server"

    await learned.decide(pair, "rejected")
    report = await Indexer(embedder, store).run(community_sources(path))
    assert report.pages_removed == 1 and await store.count() == 0
    learned.close()


async def test_answers_indexed_before_they_were_scoped_are_removed_by_the_next_run(
    tmp_path: Path, embedder, store
) -> None:
    """The unscoped ``community`` source of older indexes is read by no one's question and lists nothing now: its
    pages all go in one run, however many (the database is the whole truth, so no prune guard holds them)."""
    old = tmp_path / "old"
    old.mkdir()
    for n in range(12):
        (old / f"{n}.md").write_text(f"# Community answer {n}\n\nSet `zorblax.option{n} = true`.\n")
    await Indexer(embedder, store).run([FolderDocs(FolderSource(id="community", path=old))])
    assert await store.count() == 12
    report = await Indexer(embedder, store).run(community_sources(tmp_path / "learned.sqlite3"))
    assert report.pages_removed == 12 and await store.count() == 0


@pytest.mark.parametrize("author", ["ada\\", 'ada "the helper"', "ada\ntitle: injected", "ada: #1 ---"])
def test_the_author_name_never_breaks_the_page_front_matter(author: str) -> None:
    pair = Learned(
        1, "discord", "2", "3", "How?", "Like this.", "https://discord.com/channels/1/2/3", author, 0.0, "approved"
    )
    extracted = extract_markdown(pair.as_page(), path_hint="learned/1")
    assert extracted.title == clean_title(f"Community answer by @{author}")
    body = "\n".join(section.text for section in extracted.sections)
    assert "title" not in body and "---" not in body and "Like this." in body
