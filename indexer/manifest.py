"""Docent's own durable record of what is indexed, kept beside (not inside) Milvus.

Milvus Lite can silently lose flushed rows (a corrupt manifest falls back to an older one) or unflushed rows
(a truncated WAL), and a process killed between an upsert and its tail delete leaves a page half-written.
The record is written only after a page's chunks are in the store, so it never claims more than is there;
``reconcile`` compares it with the store's per-page chunk counts and sends any disagreeing page back to be
indexed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    collection TEXT NOT NULL,
    source_id TEXT NOT NULL,
    page_id TEXT NOT NULL,
    page_hash TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    indexed_at REAL NOT NULL,
    PRIMARY KEY (collection, source_id, page_id)
);
"""


@dataclass(frozen=True)
class PageRecord:
    source_id: str
    page_id: str
    page_hash: str
    chunks: int


class IndexManifest:
    """Pages of one collection: their content hash and how many chunks the store must hold for them."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def _pages(self, source_id: str | None) -> list[PageRecord]:
        query = "SELECT source_id, page_id, page_hash, chunks FROM pages WHERE collection = ?"
        args: tuple[str, ...] = (self.collection,)
        if source_id is not None:
            query += " AND source_id = ?"
            args += (source_id,)
        with self._connect() as db:
            return [PageRecord(*row) for row in db.execute(query, args)]

    def _record(self, records: list[PageRecord]) -> None:
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)",
                [(self.collection, r.source_id, r.page_id, r.page_hash, r.chunks, now) for r in records],
            )

    def _forget(self, page_ids: list[str], source_id: str | None) -> None:
        with self._connect() as db:
            if source_id is None:
                db.executemany(
                    "DELETE FROM pages WHERE collection = ? AND page_id = ?", [(self.collection, p) for p in page_ids]
                )
            else:
                db.executemany(
                    "DELETE FROM pages WHERE collection = ? AND source_id = ? AND page_id = ?",
                    [(self.collection, source_id, p) for p in page_ids],
                )

    async def pages(self, source_id: str | None = None) -> list[PageRecord]:
        return await asyncio.to_thread(self._pages, source_id)

    async def hashes(self, source_id: str) -> dict[str, str]:
        return {r.page_id: r.page_hash for r in await self.pages(source_id)}

    async def record(self, records: Iterable[PageRecord]) -> None:
        await asyncio.to_thread(self._record, list(records))

    async def forget(self, page_ids: Iterable[str], source_id: str | None = None) -> None:
        await asyncio.to_thread(self._forget, list(page_ids), source_id)
