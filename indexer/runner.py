"""One indexing run: read sources, skip unchanged pages, embed and upsert the rest, prune the gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from indexer.chunking import Chunker, ChunkingConfig, Granularity, page_hash
from indexer.extract import extract_html, extract_markdown
from indexer.lock import IndexerBusy, ProcessLock
from indexer.manifest import IndexManifest, IndexRun, PageRecord
from indexer.sources import DocumentFailure, DocumentSource, RawDocument, SourceUnavailable
from rag.embedder import Embedder
from rag.errors import DocentError
from rag.metrics import Metrics
from rag.models import Chunk, IndexReport, Page, Section, page_key
from rag.store import Store

logger = logging.getLogger(__name__)
_QUEUE_PAGES = 32


ProgressCallback = Callable[[IndexReport], None]


@dataclass(frozen=True)
class _Prepared:
    page: Page
    chunks: list[Chunk]
    is_new: bool


class Indexer:
    """Runs sources one at a time into the store; owns the chunker and the embedding batches."""

    def __init__(
        self,
        embedder: Embedder,
        store: Store,
        *,
        overlap_tokens: int = 32,
        granularity: Granularity | None = None,
        upsert_batch: int = 256,
        embedding_model: str = "",
        manifest: IndexManifest | None = None,
        max_prune_fraction: float = 1.0,
        metrics: Metrics | None = None,
        lock_path: Path | None = None,
        lock_poll_s: float = 1.0,
    ) -> None:
        self._embedder = embedder
        self._store = store
        grain = granularity or Granularity()
        self._chunker = Chunker(
            ChunkingConfig(max_tokens=embedder.max_tokens, overlap_tokens=overlap_tokens, granularity=grain),
            embedder.count_tokens,
        )
        self._grain_tag = grain.tag
        self._upsert_batch = upsert_batch
        self._model_tag = embedding_model
        self._manifest = manifest
        self._max_prune_fraction = max_prune_fraction
        self._metrics = metrics
        self.lock = asyncio.Lock()  # runs in this process; the file lock covers other processes
        self._process_lock = ProcessLock(lock_path, poll_s=lock_poll_s) if lock_path is not None else None
        self.progress: IndexReport | None = None

    async def run(
        self, sources: list[DocumentSource], progress: ProgressCallback | None = None, *, wait: bool = True
    ) -> IndexReport:
        """Index every source; one failing source is reported and the others still run.

        Another process's run (the lock file) is waited for, or with ``wait=False`` raises IndexerBusy.
        """
        started = time.time()
        try:
            report = await self._run(sources, progress, wait)
        except IndexerBusy:
            raise  # nothing ran: not a failed run
        except DocentError as exc:
            if self._metrics is not None:
                self._metrics.index_failed(exc)
            await self._record_run(IndexRun(started, time.time() - started, error=str(exc)))
            raise
        await self._record_run(
            IndexRun(
                started,
                report.seconds,
                report.pages_new,
                report.pages_changed,
                report.pages_unchanged,
                report.pages_removed,
                report.pages_failed,
                tuple(failed["source"] for failed in report.sources_failed),
            )
        )
        if self._metrics is not None:
            try:
                chunks: int | None = await self._store.count()
            except DocentError:
                chunks = None
            self._metrics.index_run(report, chunks)
        return report

    async def _record_run(self, run: IndexRun) -> None:
        """Keep the run in the index record (for the dashboard); best effort, never the run's failure."""
        if self._manifest is None:
            return
        try:
            await self._manifest.record_run(run)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("could not record the index run in %s: %s", self._manifest.path, exc)

    @contextlib.asynccontextmanager
    async def _exclusive(self, wait: bool) -> AsyncIterator[None]:
        async with self.lock:
            if self._process_lock is None:
                yield
            else:
                async with self._process_lock.hold(wait=wait):
                    yield

    async def _run(self, sources: list[DocumentSource], progress: ProgressCallback | None, wait: bool) -> IndexReport:
        async with self._exclusive(wait):
            started = time.perf_counter()
            total = IndexReport()
            self.progress = total
            caller = progress

            def progress(report: IndexReport) -> None:
                self.progress = report  # readable by anyone who finds the lock taken
                if caller:
                    caller(report)

            # Another model (or layout) behind the alias: the new index is built beside it (rag.store).
            dropped = await self._store.ensure_collection(self._embedder.dimension, self._model_tag)
            known: set[str] = set()
            if self._manifest is not None:
                await self._remove_asked()
                if dropped:  # the record followed a rebuild that is gone: read it again from the index that answers
                    await self._manifest.forget([record.page_id for record in await self._manifest.pages()])
                    logger.info("a rebuild beside the index was dropped: its record is read again from the index")
                known = {record.source_id for record in await self._manifest.pages()}
                total.pages_repaired = await self.reconcile()
            for source in sources:
                total.merge(await self._run_source(source, total, progress))
            await self._store.flush()
            await self._finish_rebuild(total, known, {source.source_id for source in sources})
            await self._store.fit_index()  # a corpus grown past exact search gets an approximate index
            total.seconds = time.perf_counter() - started
            logger.info("index run done: %s", total.summary())
            progress(total)
            self.progress = None
            return total

    async def _remove_asked(self) -> None:
        """Delete the pages an operator took out (``forget``, ``learned reject``) that the record still lists for
        removal: explicit removals, never held back by the prune guard. The command line deletes them itself when it
        can open the store; this covers when it could not (Milvus Lite held by the bot) and a run that was going on
        meanwhile writing one back."""
        assert self._manifest is not None
        asked = await self._manifest.removals()
        if not asked:
            return
        for source_id, page_ids in _by_source([(r.source_id, r.page_id) for r in asked]).items():
            await self._store.delete_pages(page_ids, source_id=source_id)
            await self._manifest.forget(page_ids, source_id)
        await self._manifest.removed(asked)
        logger.info("removed %d pages taken out by the operator (forget, learned reject)", len(asked))

    async def _finish_rebuild(self, total: IndexReport, known: set[str], ran: set[str]) -> None:
        """Switch searches to a collection rebuilt beside the old one only once it holds everything: every source
        the record knew was run, and none failed. Otherwise the old one keeps answering and the next run goes on."""
        if not self._store.rebuilding:
            return
        if total.sources_failed or not known <= ran:
            missing = sorted(known - ran) + [failed["source"] for failed in total.sources_failed]
            logger.warning(
                "the rebuilt index is not complete yet (%s); the old one keeps answering", ", ".join(missing)
            )
            return
        await self._store.finish_rebuild()

    async def _run_source(
        self, source: DocumentSource, total: IndexReport, progress: ProgressCallback | None
    ) -> IndexReport:
        report = IndexReport()
        # Pages are compared by key (rag.models.page_key): the store cuts long page ids to fit its field.
        ids: dict[str, str] = {}  # key -> page id, where the record knows it
        if self._manifest is not None:
            recorded = await self._manifest.hashes(source.source_id)
            ids = {page_key(page_id): page_id for page_id in recorded}
            known = {page_key(page_id): digest for page_id, digest in recorded.items()}
        else:
            known = await self._store.page_hashes(source.source_id)
        report.pages_known = len(known)
        seen: set[str] = set()
        queue: asyncio.Queue[_Prepared | None] = asyncio.Queue(maxsize=_QUEUE_PAGES)

        def tick() -> None:
            if progress:
                snapshot = IndexReport()
                snapshot.merge(total)
                snapshot.merge(report)
                progress(snapshot)

        async def produce() -> None:
            try:
                async for item in source.documents():
                    key = page_key(item.page_id)
                    if key in seen:
                        continue
                    seen.add(key)
                    if isinstance(item, DocumentFailure):
                        self._fail(report, item.page_id, item.reason)
                        continue
                    prepared = await self._prepare(source, item, known)
                    if isinstance(prepared, str):
                        self._fail(report, item.page_id, prepared)
                    elif prepared is None:
                        report.pages_unchanged += 1
                    else:
                        await queue.put(prepared)
                    if len(seen) % 25 == 0:
                        tick()
            finally:
                await queue.put(None)

        producer = asyncio.create_task(produce(), name=f"index-read:{source.source_id}")
        try:
            await self._consume(queue, report)  # store errors raise here and end the run
            await producer
        except SourceUnavailable as exc:
            logger.warning("source %s unavailable: %s", source.source_id, exc)
            report.sources_failed.append({"source": source.source_id, "reason": str(exc)})
        except Exception as exc:
            if not producer.done() or producer.cancelled() or producer.exception() is not exc:
                raise  # not the source's: the store or the embedder failed, which fails the run
            reason = f"{type(exc).__name__}: {exc}"  # a bug or bad input in one source fails only that source
            logger.warning("source %s failed: %s", source.source_id, reason, exc_info=exc)
            report.sources_failed.append({"source": source.source_id, "reason": reason})
        finally:
            if not producer.done():
                producer.cancel()
        if report.sources_failed:  # what was read is kept; nothing is pruned after an incomplete listing
            tick()
            return report
        gone = [key for key in known if key not in seen]
        guarded = not getattr(source, "authoritative", False)  # a database-backed source lists every page it has
        if guarded and gone and len(known) >= 10 and len(gone) > self._max_prune_fraction * len(known):
            # A listing that lost most pages is more likely a broken sitemap than a docs purge: keep them.
            warning = (
                f"{source.source_id}: {len(gone)} of {len(known)} known pages are missing from the listing; "
                "kept them (raise indexer.max_prune_fraction if the docs really shrank)"
            )
            logger.warning(warning)
            report.warnings.append(warning)
        elif gone:
            await self._store.delete_keys(gone, source_id=source.source_id)
            if self._manifest is not None:
                await self._manifest.forget([ids[key] for key in gone if key in ids], source.source_id)
            report.pages_removed = len(gone)
        tick()
        return report

    async def _prepare(self, source: DocumentSource, doc: RawDocument, known: dict[str, str]) -> _Prepared | str | None:
        """Extract and chunk one document off the loop: None if unchanged, a reason string if it failed."""
        resolver = getattr(source, "resolve_include", None)

        def work() -> _Prepared | str | None:
            if doc.kind == "markdown":
                extracted = extract_markdown(doc.content, path_hint=doc.page_id, include_resolver=resolver)
            else:
                extracted = extract_html(doc.content, doc.url)
            sections = extracted.sections
            if not any(section.text.strip() for section in sections):
                if not extracted.title.strip() or not doc.content.strip():
                    return "no text extracted"
                # A title-only page (a stub, a deprecated page) is still findable by its title.
                sections = (Section((), "", extracted.title),)
            digest = page_hash(
                self._model_tag,
                self._grain_tag,
                doc.url,
                extracted.title,
                *(f"{s.anchor}\x01{' > '.join(s.headings)}\x01{s.text}" for s in sections),
            )
            key = page_key(doc.page_id)
            if known.get(key) == digest:
                return None
            page = Page(source.source_id, doc.page_id, doc.url, extracted.title, sections, digest)
            return _Prepared(page, self._chunker.chunk_page(page), key not in known)

        try:
            return await asyncio.to_thread(work)
        except Exception as exc:  # one bad page never aborts the run
            logger.warning("extracting %s failed", doc.page_id, exc_info=True)
            return f"extraction failed: {type(exc).__name__}: {exc}"

    async def _consume(self, queue: asyncio.Queue[_Prepared | None], report: IndexReport) -> None:
        batch: list[_Prepared] = []
        while (item := await queue.get()) is not None:
            batch.append(item)
            if sum(len(p.chunks) for p in batch) >= self._upsert_batch:
                await self._write(batch, report)
                batch = []
        if batch:
            await self._write(batch, report)

    async def _write(self, batch: list[_Prepared], report: IndexReport) -> None:
        """Embed and upsert a batch of pages, then drop each page's leftover tail chunks."""
        chunks = [chunk for prepared in batch for chunk in prepared.chunks]
        try:
            vectors = await self._embedder.embed_passages([chunk.embed_text for chunk in chunks])
            await self._store.upsert(chunks, vectors)
            for prepared in batch:
                if not prepared.is_new:
                    page = prepared.page
                    await self._store.delete_page_tail(page.page_id, len(prepared.chunks), source_id=page.source_id)
            if self._manifest is not None:  # only once the store holds the pages: the record never over-claims
                await self._manifest.record(
                    PageRecord(
                        p.page.source_id, p.page.page_id, p.page.content_hash, len(p.chunks), p.page.url, p.page.title
                    )
                    for p in batch
                )
        except DocentError as exc:
            for prepared in batch:
                self._fail(report, prepared.page.page_id, str(exc))
            raise
        report.chunks_written += len(chunks)
        for prepared in batch:
            if prepared.is_new:
                report.pages_new += 1
            else:
                report.pages_changed += 1

    async def reconcile(self) -> int:
        """Make the store agree with the durable record; returns how many pages were sent back for indexing.

        A page whose chunk count in the store differs from the record (rows lost by the store, a write cut off
        by a crash) is deleted from both and so re-indexed from scratch by this run; rows of pages the record
        doesn't know (a crash before the record was written) are deleted. An empty record over a filled store
        (an existing index, a new data dir, a corrupt record moved aside) is rebuilt from the store rather than
        trusted blindly. Pages are matched by key: the store's page id field holds a long id cut short.
        """
        assert self._manifest is not None
        records = await self._manifest.pages()
        # A page's address and title are read too when the record lacks some (it is new, or older than them).
        undescribed = not records or any(record.url is None for record in records)
        fields = ["source_id", "page_id", "page_key", "ordinal", "page_hash"]
        rows = await self._store.scan([*fields, "url", "title"] if undescribed else fields)
        counts: dict[tuple[str, str], int] = {}
        firsts: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["source_id"], row["page_key"])
            counts[key] = counts.get(key, 0) + 1
            if row["ordinal"] == 0:
                firsts[key] = row
        if not records and counts:
            adopted: list[PageRecord] = []
            cut: list[tuple[str, str]] = []
            for (source_id, stored_key), chunks in counts.items():
                first = firsts.get((source_id, stored_key))
                if first is None or page_key(first["page_id"]) != stored_key:  # no first chunk, or its id was cut
                    cut.append((source_id, stored_key))
                else:
                    url = first["url"].split("#", 1)[0]  # a chunk's address is its section's
                    adopted.append(
                        PageRecord(source_id, first["page_id"], first["page_hash"], chunks, url, first["title"])
                    )
            await self._manifest.record(adopted)
            for source_id, keys in _by_source(cut).items():
                await self._store.delete_keys(keys, source_id=source_id)  # unrecorded: indexed again this run
            logger.warning("index record was empty: adopted %d pages from the store", len(adopted))
            return 0
        recorded = {(r.source_id, page_key(r.page_id)): r for r in records}
        described = [  # a chunk's address is its section's: the page's is before the fragment
            replace(record, url=firsts[key]["url"].split("#", 1)[0], title=firsts[key]["title"])
            for key, record in recorded.items()
            if record.url is None and key in firsts
        ]
        if described:
            await self._manifest.describe(described)
        broken = [key for key, record in recorded.items() if counts.get(key, 0) != record.chunks]
        orphans = [key for key in counts if key not in recorded]
        for source_id, keys in _by_source(broken + orphans).items():
            await self._store.delete_keys(keys, source_id=source_id)
        for source_id, page_ids in _by_source([(s, recorded[(s, k)].page_id) for s, k in broken]).items():
            await self._manifest.forget(page_ids, source_id)
        if broken or orphans:
            logger.warning(
                "store and index record disagreed: %d pages will be re-indexed, %d unrecorded pages removed",
                len(broken),
                len(orphans),
            )
        return len(broken)

    @staticmethod
    def _fail(report: IndexReport, page_id: str, reason: str) -> None:
        logger.warning("page %s failed: %s", page_id, reason)
        report.pages_failed += 1
        report.failures.append({"page": page_id, "reason": reason})


def _by_source(keys: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source_id, value in keys:
        grouped.setdefault(source_id, []).append(value)
    return grouped
