"""Docent's own durable record of what is indexed, kept beside (not inside) Milvus.

Milvus Lite can silently lose flushed rows (a corrupt manifest falls back to an older one) or unflushed rows
(a truncated WAL), and a process killed between an upsert and its tail delete leaves a page half-written.
The record is written only after a page's chunks are in the store, so it never claims more than is there;
``reconcile`` compares it with the store's per-page chunk counts and sends any disagreeing page back to be
indexed again.

The record is derived data: a corrupt file is moved aside (``<name>.corrupt-<timestamp>``) and an empty
record started, which ``reconcile`` rebuilds from the store as it does for a new data dir.

It also keeps the last index runs (``index_runs``: when, how long, pages by state, sources failed), for the
dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rag.private import private_file
from rag.sqlite import add_columns

logger = logging.getLogger(__name__)
T = TypeVar("T")
# "file is not a database" and "database disk image is malformed"; never "database is locked".
_CORRUPT = {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}
_COMPANIONS = ("-journal", "-wal", "-shm")  # a stale journal must not be replayed into the new file

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
CREATE TABLE IF NOT EXISTS removals (
    collection TEXT NOT NULL,
    source_id TEXT NOT NULL,
    page_id TEXT NOT NULL,
    asked_at REAL NOT NULL,
    PRIMARY KEY (collection, source_id, page_id)
);
CREATE TABLE IF NOT EXISTS index_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    started_at REAL NOT NULL,
    seconds REAL NOT NULL,
    pages_new INTEGER NOT NULL,
    pages_changed INTEGER NOT NULL,
    pages_unchanged INTEGER NOT NULL,
    pages_removed INTEGER NOT NULL,
    pages_failed INTEGER NOT NULL,
    sources_failed TEXT NOT NULL,
    error TEXT
);
"""
# Newer than the first release: a page's address and title, for the dashboard's "never cited" (NULL: recorded
# before, filled in from the store by the next run's reconcile).
_ADDED_COLUMNS = {"pages": {"url": "TEXT", "title": "TEXT"}}
KEPT_RUNS = 500  # index runs kept per collection; older ones are deleted as new ones are recorded


@dataclass(frozen=True)
class PageRecord:
    source_id: str
    page_id: str
    page_hash: str
    chunks: int
    url: str | None = None  # where the page is published ("" for none); None: not known yet (an older record)
    title: str | None = None


@dataclass(frozen=True)
class IndexRun:
    """One index run as recorded at its end: ``error`` says why a run failed (the store or the embedder)."""

    started_at: float
    seconds: float
    pages_new: int = 0
    pages_changed: int = 0
    pages_unchanged: int = 0
    pages_removed: int = 0
    pages_failed: int = 0
    sources_failed: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Removal:
    """A page an operator took out (``forget``, ``learned reject``), for every index run to delete until one has."""

    source_id: str
    page_id: str
    asked_at: float


class IndexManifest:
    """Pages of one collection: their content hash and how many chunks the store must hold for them."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        self._reset_lock = threading.Lock()
        self._generation = 0  # bumped by each reset, so concurrent callers move a corrupt file aside once
        private_file(path)
        self._guarded(self._open)

    def _open(self) -> None:
        with self._connect() as db:
            db.executescript(_SCHEMA)
            add_columns(db, _ADDED_COLUMNS)
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {verdict}")

    def _guarded(self, work: Callable[[], T]) -> T:
        """Run ``work``; if the file turns out corrupt, set it aside, start an empty record and run it again."""
        generation = self._generation
        try:
            return work()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise
            self._set_aside(exc, generation)
        return work()

    def _set_aside(self, exc: sqlite3.DatabaseError, generation: int) -> None:
        with self._reset_lock:
            if generation != self._generation:
                return  # another thread already started a fresh record
            self._generation += 1
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            n = 1
            while aside.exists():
                aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
                n += 1
            if self.path.exists():
                self.path.rename(aside)
            for suffix in _COMPANIONS:
                companion = self.path.with_name(self.path.name + suffix)
                if companion.exists():
                    companion.rename(aside.with_name(aside.name + suffix))
            logger.warning(
                "index record %s is corrupt (%s): moved it to %s and started an empty one; "
                "it is rebuilt from the store",
                self.path,
                exc,
                aside.name,
            )
            private_file(self.path)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                add_columns(db, _ADDED_COLUMNS)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def _pages(self, source_id: str | None) -> list[PageRecord]:
        query = "SELECT source_id, page_id, page_hash, chunks, url, title FROM pages WHERE collection = ?"
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
                "INSERT OR REPLACE INTO pages (collection, source_id, page_id, page_hash, chunks, indexed_at, url, "
                "title) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (self.collection, r.source_id, r.page_id, r.page_hash, r.chunks, now, r.url, r.title)
                    for r in records
                ],
            )

    def _describe(self, records: list[PageRecord]) -> None:
        with self._connect() as db:
            db.executemany(
                "UPDATE pages SET url = ?, title = ? WHERE collection = ? AND source_id = ? AND page_id = ?",
                [(r.url, r.title, self.collection, r.source_id, r.page_id) for r in records],
            )

    def _record_run(self, run: IndexRun) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO index_runs (collection, started_at, seconds, pages_new, pages_changed, pages_unchanged, "
                "pages_removed, pages_failed, sources_failed, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.collection,
                    run.started_at,
                    run.seconds,
                    run.pages_new,
                    run.pages_changed,
                    run.pages_unchanged,
                    run.pages_removed,
                    run.pages_failed,
                    json.dumps(list(run.sources_failed)),
                    run.error,
                ),
            )
            db.execute(
                "DELETE FROM index_runs WHERE collection = ? AND id <= (SELECT id FROM index_runs WHERE collection = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.collection, self.collection, KEPT_RUNS),
            )

    def _runs(self, limit: int) -> list[IndexRun]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT started_at, seconds, pages_new, pages_changed, pages_unchanged, pages_removed, pages_failed, "
                "sources_failed, error FROM index_runs WHERE collection = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (self.collection, limit),
            ).fetchall()
        return [
            IndexRun(
                started_at=row[0],
                seconds=row[1],
                pages_new=row[2],
                pages_changed=row[3],
                pages_unchanged=row[4],
                pages_removed=row[5],
                pages_failed=row[6],
                sources_failed=tuple(json.loads(row[7])),
                error=row[8],
            )
            for row in rows
        ]

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

    def _remove_later(self, page_ids: list[str], source_id: str) -> None:
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO removals VALUES (?, ?, ?, ?)",
                [(self.collection, source_id, page_id, now) for page_id in page_ids],
            )

    def _removals(self) -> list[Removal]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT source_id, page_id, asked_at FROM removals WHERE collection = ?", (self.collection,)
            )
            return [Removal(*row) for row in rows]

    def _removed(self, done: list[Removal]) -> None:
        with self._connect() as db:
            db.executemany(  # only as asked then: a removal asked again meanwhile stays for the next run
                "DELETE FROM removals WHERE collection = ? AND source_id = ? AND page_id = ? AND asked_at = ?",
                [(self.collection, r.source_id, r.page_id, r.asked_at) for r in done],
            )

    def _keep(self, page_ids: list[str], source_id: str) -> None:
        with self._connect() as db:
            db.executemany(
                "DELETE FROM removals WHERE collection = ? AND source_id = ? AND page_id = ?",
                [(self.collection, source_id, page_id) for page_id in page_ids],
            )

    async def pages(self, source_id: str | None = None) -> list[PageRecord]:
        return await asyncio.to_thread(self._guarded, lambda: self._pages(source_id))

    async def hashes(self, source_id: str) -> dict[str, str]:
        return {r.page_id: r.page_hash for r in await self.pages(source_id)}

    async def record(self, records: Iterable[PageRecord]) -> None:
        batch = list(records)
        await asyncio.to_thread(self._guarded, lambda: self._record(batch))

    async def describe(self, records: Iterable[PageRecord]) -> None:
        """Set the address and title of recorded pages (those recorded before the record kept them)."""
        batch = list(records)
        await asyncio.to_thread(self._guarded, lambda: self._describe(batch))

    async def record_run(self, run: IndexRun) -> None:
        """Keep an index run (the last ``KEPT_RUNS`` of this collection are kept)."""
        await asyncio.to_thread(self._guarded, lambda: self._record_run(run))

    async def runs(self, limit: int = 100) -> list[IndexRun]:
        """The last ``limit`` index runs of this collection, newest first."""
        return await asyncio.to_thread(self._guarded, lambda: self._runs(limit))

    async def forget(self, page_ids: Iterable[str], source_id: str | None = None) -> None:
        gone = list(page_ids)
        await asyncio.to_thread(self._guarded, lambda: self._forget(gone, source_id))

    async def remove_later(self, page_ids: Iterable[str], source_id: str) -> None:
        """Record pages to take out of the index: every index run deletes them, whatever its prune guard says, until
        one has (``removed``)."""
        pages = list(page_ids)
        await asyncio.to_thread(self._guarded, lambda: self._remove_later(pages, source_id))

    async def removals(self) -> list[Removal]:
        return await asyncio.to_thread(self._guarded, self._removals)

    async def removed(self, done: Iterable[Removal]) -> None:
        finished = list(done)
        await asyncio.to_thread(self._guarded, lambda: self._removed(finished))

    async def keep(self, page_ids: Iterable[str], source_id: str) -> None:
        """Cancel the removal of these pages (a community answer approved again)."""
        pages = list(page_ids)
        await asyncio.to_thread(self._guarded, lambda: self._keep(pages, source_id))


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT  # extended codes keep the primary code in the low byte
    return not isinstance(exc, sqlite3.OperationalError)  # our own quick_check verdict
