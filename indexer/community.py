"""The ``community`` source: approved community answers (``rag.learned``) as pages, so the indexer adds, updates
and prunes them like any docs, and answers cite them as "Community answer by @name" with a link to the message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from indexer.sources import DocumentFailure, DocumentSource, RawDocument
from rag.learned import SOURCE_ID, LearnedStore


class CommunityDocs:
    source_id = SOURCE_ID

    def __init__(self, path: Path) -> None:
        self._path = path

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        if not self._path.exists():  # nothing learned yet: an empty source (prunes nothing that exists)
            return
        store = await asyncio.to_thread(LearnedStore, self._path)
        try:
            for pair in await store.list("approved", limit=100_000):
                yield RawDocument(f"learned/{pair.id}", pair.link, pair.as_page(), "markdown")
        finally:
            store.close()


def with_community(
    sources: Callable[[str | None], list[DocumentSource]], path: Path
) -> Callable[[str | None], list[DocumentSource]]:
    """A source factory (a source id, or None for all) that also yields the community answers kept at ``path``:
    for every run, and for a run of just ``community``."""

    def chosen(source_id: str | None) -> list[DocumentSource]:
        extra: list[DocumentSource] = [CommunityDocs(path)] if source_id in (None, SOURCE_ID) else []
        return [*sources(source_id), *extra]

    return chosen
