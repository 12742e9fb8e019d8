"""The community sources: approved community answers (``rag.learned``) as pages, so the indexer adds, updates
and prunes them like any docs, and answers cite them as "Community answer by @name" with a link to the message.

Each server or workspace has its own source (``rag.scope``), which its questions alone read. The database is the
whole truth of a community source, so a page missing from its listing is removed whatever the prune guard says; the
source ``community`` of answers indexed before they were scoped lists nothing, so index runs remove them.

An answer an operator takes out (``python -m bot forget``, ``learned reject``) leaves the index at once, not at the
next run's prune, which its guard (``indexer.max_prune_fraction``) may hold back when it is most of this small
source: forgetting the main helper would otherwise leave their name, words and links cited indefinitely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.build import RECORD_FILE, index_record
from indexer.manifest import IndexManifest
from indexer.sources import DocumentFailure, DocumentSource, RawDocument
from rag.errors import IndexMissing, StoreInUse, StoreUnavailable
from rag.learned import SOURCE_ID, Learned, LearnedStore
from rag.scope import is_community
from rag.settings import Settings
from rag.store import MilvusStore

logger = logging.getLogger(__name__)


def page_id(pair_id: int) -> str:
    """The page a community answer is indexed as."""
    return f"learned/{pair_id}"


class CommunityDocs:
    """The approved answers of one server or workspace (``source_id``, from ``Learned.source_id``)."""

    authoritative = True  # the database lists every page: what it no longer lists goes, prune guard or not

    def __init__(self, path: Path, source_id: str = SOURCE_ID) -> None:
        self._path = path
        self.source_id = source_id

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        if not self._path.exists():  # nothing learned yet: an empty source
            return
        store = await asyncio.to_thread(LearnedStore, self._path)
        try:
            for pair in await store.list("approved", limit=100_000):
                if pair.source_id == self.source_id:
                    yield RawDocument(page_id(pair.id), pair.link, pair.as_page(), "markdown")
        finally:
            store.close()


def community_sources(path: Path) -> list[DocumentSource]:
    """One source per server or workspace the database knows, and the unscoped ``community`` of older indexes
    (empty: its pages are removed). Reads the database: call it in a worker thread."""
    ids: tuple[str, ...] = ()
    if path.exists():
        store = LearnedStore(path)
        try:
            ids = store.source_ids()
        finally:
            store.close()
    return [CommunityDocs(path, source_id) for source_id in (SOURCE_ID, *ids)]


def with_community(
    sources: Callable[[str | None], list[DocumentSource]], path: Path
) -> Callable[[str | None], list[DocumentSource]]:
    """A source factory (a source id, or None for all) that also yields the community answers kept at ``path``:
    every community source for every run and for a run of ``community``, one for a run of its own id. It reads
    the learned database: call it in a worker thread."""

    def chosen(source_id: str | None) -> list[DocumentSource]:
        if source_id is not None and is_community(source_id):
            return [s for s in community_sources(path) if source_id in (SOURCE_ID, s.source_id)]
        return [*sources(source_id), *(community_sources(path) if source_id is None else [])]

    return chosen


@dataclass
class Removal:
    """How taking answers out went: ``problem`` says why the index still holds them, if it does."""

    problem: str | None = None


@contextlib.asynccontextmanager
async def taking_out(settings: Settings, pairs: Iterable[Learned]) -> AsyncIterator[Removal]:
    """Take these community answers out of the index around the block that deletes or rejects them in the learned
    database: recorded for removal in the index record before (a crash after the block still removes them) and after
    (an index run that began meanwhile may have written them back), then deleted from the index now. Every index run
    deletes what the record lists, whatever its prune guard says; ``Removal.problem`` says when the index could not
    be opened now (Milvus Lite held by the running bot)."""
    by_source = _pages_by_source(pairs)
    removal = Removal()
    if not by_source and not await asyncio.to_thread((settings.data_dir / RECORD_FILE).exists):
        yield removal  # nothing to take out, nothing indexed
        return
    record = await asyncio.to_thread(index_record, settings)
    for source_id, pages in by_source.items():
        await record.remove_later(pages, source_id)
    yield removal
    for source_id, pages in by_source.items():
        await record.remove_later(pages, source_id)
    removal.problem = await remove_now(settings, record)


async def remove_now(settings: Settings, record: IndexManifest) -> str | None:
    """Delete from the index that answers every page the record lists for removal (they stay listed, for the next
    run to repeat on a collection being rebuilt); None when done, else why not."""
    removals = await record.removals()
    if not removals or (settings.uses_milvus_lite and not await asyncio.to_thread(Path(settings.milvus_uri).exists)):
        return None  # nothing to remove, or nothing ever indexed
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.require_index()
        by_source: dict[str, list[str]] = {}
        for removal in removals:
            by_source.setdefault(removal.source_id, []).append(removal.page_id)
        for source_id, page_ids in by_source.items():
            await store.delete_pages(page_ids, source_id=source_id)
            await record.forget(page_ids, source_id)
    except IndexMissing:
        return None
    except StoreInUse as exc:
        return str(exc)
    except StoreUnavailable as exc:
        return f"the index could not be reached ({exc})"
    finally:
        await store.close()
    logger.info("took %d pages out of the index", len(removals))
    return None


async def keep_indexed(settings: Settings, pairs: Iterable[Learned]) -> None:
    """Answers approved again after being taken out: the index record no longer lists them for removal."""
    if await asyncio.to_thread((settings.data_dir / RECORD_FILE).exists):
        record = await asyncio.to_thread(index_record, settings)
        for source_id, pages in _pages_by_source(pairs).items():
            await record.keep(pages, source_id)


def _pages_by_source(pairs: Iterable[Learned]) -> dict[str, list[str]]:
    """Pages of ``pairs`` by the source they are indexed under (and under the unscoped ``community`` of older
    indexes, which may still hold them)."""
    by_source: dict[str, list[str]] = {}
    for pair in pairs:
        for source_id in (pair.source_id, SOURCE_ID):
            by_source.setdefault(source_id, []).append(page_id(pair.id))
    return by_source
