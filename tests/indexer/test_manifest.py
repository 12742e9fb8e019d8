"""The durable index record: the store is checked against it, repaired, and survives a SIGKILL mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.build import make_indexer
from indexer.local import FolderDocs
from indexer.manifest import IndexManifest, PageRecord
from rag.models import Chunk
from rag.settings import FolderSource, Settings
from rag.store import MilvusStore
from tests.conftest import CORPUS

pytestmark = pytest.mark.integration


def write_docs(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (root / f"page{n:02d}.md").write_text(
            f"# Page {n}\n\nIntro to topic {n}.\n\n## Details\n\nDetails of topic {n}.\n\n## More\n\nMore on {n}.\n"
        )


async def store_pages(store: MilvusStore) -> Counter[str]:
    return Counter(row["page_id"] for row in await store.scan(["page_id"]))


async def assert_consistent(store: MilvusStore, manifest: IndexManifest, pages: int) -> None:
    """Every recorded page has exactly its chunks, with ordinals 0..n-1, and nothing else is stored."""
    rows = await store.scan(["source_id", "page_id", "ordinal"])
    keys = [(r["source_id"], r["page_id"], r["ordinal"]) for r in rows]
    assert len(keys) == len(set(keys)), "no duplicate chunks"
    records = {(r.source_id, r.page_id): r.chunks for r in await manifest.pages()}
    assert len(records) == pages
    found = Counter((s, p) for s, p, _ in keys)
    assert found == Counter(records), "the store holds exactly what the record says"
    for (source_id, page_id), chunks in records.items():
        assert sorted(o for s, p, o in keys if (s, p) == (source_id, page_id)) == list(range(chunks))


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def test_rows_lost_by_the_store_are_detected_and_reindexed(tmp_path: Path, settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 4)
    source = FolderDocs(FolderSource(id="docs", path=docs))
    indexer = make_indexer(settings, embedder, store)
    first = await indexer.run([source])
    assert first.pages_new == 4 and first.pages_repaired == 0
    manifest = IndexManifest(settings.data_dir / "index-record.sqlite3", settings.milvus.collection)
    before = await store_pages(store)

    await store.delete_page_tail("page01.md", 1)  # Lite "forgets" all but the first chunk of one page
    stray = Chunk("stray", "docs", "ghost.md", 0, "u", "t", "", "text", "h")  # rows nobody recorded
    await store.upsert([stray], [await embedder.embed_query("ghost")])
    await store.flush()

    again = await indexer.run([source])
    assert again.pages_repaired == 1 and again.pages_changed + again.pages_new == 1
    assert again.pages_unchanged == 3
    assert await store_pages(store) == before
    await assert_consistent(store, manifest, 4)


async def test_an_empty_record_adopts_an_existing_index(tmp_path: Path, settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 3)
    source = FolderDocs(FolderSource(id="docs", path=docs))
    await make_indexer(settings, embedder, store).run([source])
    (settings.data_dir / "index-record.sqlite3").unlink()  # a new data dir over a server-side index

    again = await make_indexer(settings, embedder, store).run([source])
    assert again.pages_unchanged == 3 and again.chunks_written == 0, "adopted, not re-embedded"
    manifest = IndexManifest(settings.data_dir / "index-record.sqlite3", settings.milvus.collection)
    await assert_consistent(store, manifest, 3)


async def test_a_listing_that_lost_most_pages_prunes_nothing(tmp_path: Path, make_settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 12)
    source = FolderDocs(FolderSource(id="docs", path=docs))
    settings = make_settings()
    await make_indexer(settings, embedder, store).run([source])
    for n in range(8):
        (docs / f"page{n:02d}.md").unlink()

    kept = await make_indexer(settings, embedder, store).run([source])
    assert kept.pages_removed == 0 and "kept them" in kept.summary()
    assert len(await store_pages(store)) == 12

    trusting = make_settings(indexer={"max_prune_fraction": 1.0})
    pruned = await make_indexer(trusting, embedder, store).run([source])
    assert pruned.pages_removed == 8 and len(await store_pages(store)) == 4


def kill_mid_run_then_finish(command: list[str], env: dict[str, str], record: Path, logs: Path) -> tuple[int, int]:
    """SIGKILL an indexer once it has recorded a few pages, then run it again to the end; (recorded, exit code)."""
    with open(logs / "killed.log", "wb") as log:
        victim = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        recorded = 0
        while time.monotonic() < deadline and victim.poll() is None:
            if record.exists():
                with contextlib.closing(sqlite3.connect(record)) as db:
                    recorded = db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
                if recorded >= 3:
                    break
            time.sleep(0.2)
        assert victim.poll() is None, "the run finished before it could be interrupted"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    with open(logs / "after.log", "wb") as log:
        after = subprocess.run(command, env=env, stdout=log, stderr=log, timeout=600)
    return recorded, after.returncode


@pytest.mark.slow
async def test_sigkill_mid_index_then_the_next_run_completes_consistently(
    tmp_path: Path, process_env: dict[str, str], make_settings
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS / "reference", docs)  # ~50 real pages: long enough a run to interrupt
    record = tmp_path / "data" / "index-record.sqlite3"
    command = [sys.executable, "-m", "indexer", "--dir", str(docs)]
    env = {**process_env, "DOCENT_INDEXER__UPSERT_BATCH": "16"}

    recorded, code = await asyncio.to_thread(kill_mid_run_then_finish, command, env, record, tmp_path)
    total = len(list(docs.rglob("*.md")))
    assert 3 <= recorded < total
    assert code == 0, (tmp_path / "after.log").read_text()[-2000:]

    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        manifest = IndexManifest(record, settings.milvus.collection)
        await assert_consistent(store, manifest, total)
    finally:
        await store.close()


async def test_a_corrupt_record_is_set_aside_and_rebuilt(tmp_path: Path, settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 3)
    source = FolderDocs(FolderSource(id="docs", path=docs))
    await make_indexer(settings, embedder, store).run([source])
    record = settings.data_dir / "index-record.sqlite3"
    garbage = b"this is not a database at all\x00" * 200
    record.write_bytes(garbage)

    again = await make_indexer(settings, embedder, store).run([source])
    assert again.pages_unchanged == 3 and again.chunks_written == 0, "rebuilt from the store, not re-embedded"
    manifest = IndexManifest(record, settings.milvus.collection)
    await assert_consistent(store, manifest, 3)
    (aside,) = settings.data_dir.glob("index-record.sqlite3.corrupt-*")
    assert aside.read_bytes() == garbage, "the corrupt copy is kept for a post-mortem"


async def test_a_record_that_turns_corrupt_mid_run_starts_empty(tmp_path: Path, settings) -> None:
    record = settings.data_dir / "index-record.sqlite3"
    manifest = IndexManifest(record, "c")
    await manifest.record([PageRecord("s", "a.md", "h", 2)])
    record.write_bytes(b"\xff" * 4096)  # corrupted under an open record: the next query raises DatabaseError
    assert await manifest.pages() == []
    await manifest.record([PageRecord("s", "b.md", "h", 1)])
    assert await manifest.pages() == [PageRecord("s", "b.md", "h", 1)]
    assert len(list(settings.data_dir.glob("index-record.sqlite3.corrupt-*"))) == 1


async def test_a_locked_record_is_not_mistaken_for_a_corrupt_one(settings) -> None:
    record = settings.data_dir / "index-record.sqlite3"
    manifest = IndexManifest(record, "c")
    holder = sqlite3.connect(record, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.to_thread(manifest._guarded, lambda: _query_now(record))
    finally:
        holder.rollback()
        holder.close()
    assert not list(settings.data_dir.glob("index-record.sqlite3.corrupt-*")), "a busy file is never moved aside"


def _query_now(record: Path) -> None:
    with contextlib.closing(sqlite3.connect(record, timeout=0)) as db:
        db.execute("SELECT COUNT(*) FROM pages").fetchone()


async def test_removals_stay_listed_until_a_run_has_done_them_as_asked(tmp_path: Path) -> None:
    record = IndexManifest(tmp_path / "index-record.sqlite3", "docs")
    await record.remove_later(["learned/1", "learned/2", "learned/3"], "community")
    seen = await record.removals()
    await record.remove_later(["learned/2"], "community")  # asked again while a run removes them: it may re-add it
    await record.keep(["learned/3"], "community")  # approved again
    await record.removed(seen)
    assert [(r.source_id, r.page_id) for r in await record.removals()] == [("community", "learned/2")]
    assert await IndexManifest(tmp_path / "index-record.sqlite3", "other").removals() == [], "per collection"


async def test_each_run_is_kept_with_what_it_did(tmp_path: Path, settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 3)
    indexer = make_indexer(settings, embedder, store)
    await indexer.run([FolderDocs(FolderSource(id="docs", path=docs, base_url="https://docs.example.org/"))])
    (docs / "page01.md").write_text("# Page 1\n\nChanged.\n")
    await indexer.run(
        [FolderDocs(FolderSource(id="docs", path=docs)), FolderDocs(FolderSource(id="gone", path=docs / "x"))]
    )
    manifest = IndexManifest(settings.data_dir / "index-record.sqlite3", settings.milvus.collection)
    second, first = await manifest.runs()
    assert (first.pages_new, first.pages_changed, first.pages_failed, first.sources_failed) == (3, 0, 0, ())
    assert second.pages_new == 0 and second.pages_changed == 3, "the base URL changed every page's hash"
    assert second.sources_failed == ("gone",) and second.error is None
    assert second.started_at >= first.started_at + first.seconds - 1 and second.seconds > 0
    pages = {p.page_id: p for p in await manifest.pages()}
    assert (pages["page00.md"].url, pages["page00.md"].title) == ("", "Page 0"), "addresses and titles are kept"


async def test_an_older_record_gains_runs_and_its_pages_addresses(tmp_path: Path, settings, embedder, store) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, 2)
    source = FolderDocs(FolderSource(id="docs", path=docs, base_url="https://docs.example.org/"))
    await make_indexer(settings, embedder, store).run([source])
    record = settings.data_dir / "index-record.sqlite3"
    with contextlib.closing(sqlite3.connect(record)) as db, db:  # as a release before them left it
        db.execute("DROP TABLE index_runs")
        db.execute("CREATE TABLE old_pages AS SELECT collection, source_id, page_id, page_hash, chunks, indexed_at "
                   "FROM pages")  # fmt: skip
        db.execute("DROP TABLE pages")
        db.execute("ALTER TABLE old_pages RENAME TO pages")
    manifest = IndexManifest(record, settings.milvus.collection)
    assert await manifest.runs() == []
    assert {(p.url, p.title) for p in await manifest.pages()} == {(None, None)}

    again = await make_indexer(settings, embedder, store).run([source])
    assert again.pages_unchanged == 2 and again.chunks_written == 0
    assert {(p.page_id, p.url, p.title) for p in await manifest.pages()} == {
        ("page00.md", "https://docs.example.org/page00.md", "Page 0"),
        ("page01.md", "https://docs.example.org/page01.md", "Page 1"),
    }, "filled in from the store, nothing indexed again"
    assert len(await manifest.runs()) == 1
