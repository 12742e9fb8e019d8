"""The Milvus store on a real Milvus Lite: a failing call never makes the event loop wait for the reconnect lock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from rag.errors import StoreUnavailable
from rag.lexical import lexical_text
from rag.scope import SearchScope
from rag.store import MilvusStore
from tests.conftest import CORPUS

pytestmark = pytest.mark.integration


class WatchedLock:
    """The store's real lock, telling the test (on the loop) whenever someone starts waiting for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.real = threading.Lock()
        self.loop = loop
        self.armed = False
        self.wanted = asyncio.Event()
        self.waiters: list[str] = []

    def __enter__(self) -> None:
        if self.armed:
            self.waiters.append(threading.current_thread().name)
            self.loop.call_soon_threadsafe(self.wanted.set)
        self.real.acquire()

    def __exit__(self, *exc: object) -> None:
        self.real.release()


async def test_a_failing_call_never_waits_for_the_lock_on_the_loop(store: MilvusStore) -> None:
    await store.ensure_collection(384)  # connected
    loop = asyncio.get_running_loop()
    lock = WatchedLock(loop)
    vars(store)["_lock"] = lock  # the same lock, watched
    entered, fail_now, held, release = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def failing(client: Any) -> None:
        entered.set()
        fail_now.wait(timeout=60)
        raise RuntimeError("connection reset")

    def slow_connect() -> None:  # another thread holds the lock, as a connect does for up to milvus.timeout_s
        with lock.real:
            held.set()
            release.wait(timeout=30)  # only a safety net for the failing case: the test releases it at once
            order.append("released")

    call = asyncio.create_task(store._call("probe", failing))
    await asyncio.to_thread(entered.wait, 60)
    holder = threading.Thread(target=slow_connect, name="slow-connect")
    holder.start()
    await asyncio.to_thread(held.wait, 60)
    lock.armed = True
    fail_now.set()

    await lock.wanted.wait()  # the failure path asks for the lock...
    order.append("loop ran")  # ...and the loop still runs other coroutines meanwhile
    release.set()
    with pytest.raises(StoreUnavailable, match="connection reset"):
        await call
    await asyncio.to_thread(holder.join)
    assert order == ["loop ran", "released"]
    assert threading.main_thread().name not in lock.waiters, "the loop thread never waited for the lock"

    assert await store.count() == 0, "the next call reconnects"


async def test_rows_keep_their_granularity_and_section(store: MilvusStore) -> None:
    from rag.models import Chunk

    await store.ensure_collection(4)
    section = Chunk("s", "docs", "p.md", 0, "", "P", "H", "the whole section", "h", "section", 3)
    window = Chunk("w", "docs", "p.md", 1, "", "P", "H", "the whole section", "h", "window", 3, "whole")
    await store.upsert([section, window], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    hits = await store.search([0.0, 1.0, 0.0, 0.0], 2, lexical="whole")
    assert {(h.chunk_id, h.kind, h.section, h.text) for h in hits} == {
        ("s", "section", 3, "the whole section"),
        ("w", "window", 3, "the whole section"),
    }
    rows = await store.scan(["id", "kind", "section", "lexical"])
    assert {r["id"]: r["lexical"] for r in rows}["w"] == lexical_text("P > H\n\nwhole"), "a window's words are searched"


SCOPES = (
    SearchScope(),
    SearchScope(("sdk",)),
    SearchScope(communities=("community:discord:1",)),
    SearchScope(("sdk", "community"), ("community:discord:2:private",)),
    SearchScope(communities=()),
)


def _chunks() -> list[Any]:
    """Paragraphs of the real Milvus docs, from two docs sources and three community ones (the legacy unscoped
    one among them): real text, so BM25 scores seldom tie."""
    from rag.models import Chunk

    paragraphs: list[str] = []
    for page in sorted((CORPUS / "userGuide").rglob("*.md"))[:6]:
        paragraphs += [p for p in page.read_text().split("\n\n") if len(p.split()) > 12 and "```" not in p][:4]
    return [
        Chunk(f"c{n}", _SOURCES[n % 6], f"page{n // 2}.md", n % 2, "", "", "", text, "h", contextual=False)
        for n, text in enumerate(paragraphs[:24])
    ]


_SOURCES = ("sdk", "docs", "community:discord:1", "docs", "community:discord:2:private", "community")


def _vectors(n: int) -> list[list[float]]:
    import numpy as np

    rows = np.random.default_rng(3).standard_normal((n, 8))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).tolist()


async def test_local_bm25_answers_as_milvus_bm25_does(make_settings: Any) -> None:
    """Lite runs BM25 in the bot's process (rag.bm25); on one segment it ranks exactly as Milvus' own."""
    stores = []
    for engine in ("local", "milvus"):
        settings = make_settings(milvus={"bm25": engine, "collection": f"bm25_{engine}"})
        store = MilvusStore(settings.milvus_uri, settings.milvus)
        await store.ensure_collection(8)
        await store.upsert(_chunks(), _vectors(24))
        await store.flush()
        stores.append(store)
    local, milvus = stores
    query = _vectors(25)[-1]
    source_of = {chunk.chunk_id: chunk.source_id for chunk in _chunks()}
    try:
        for question in ("drop a partition", "load the collection", "describe the schema", "rename an index", "alias"):
            for scope in SCOPES:
                found = [await s.search(query, 6, lexical=lexical_text(question), scope=scope) for s in stores]
                assert [h.chunk_id for h in found[0]] == [h.chunk_id for h in found[1]], (question, scope)
                assert found[0] and all(scope.admits(source_of[h.chunk_id]) for h in found[0]), (question, scope)
                assert [h.similarity for h in found[0]] == pytest.approx([h.similarity for h in found[1]])
        assert local._bm25 is not None and milvus._bm25 is None
    finally:
        for store in stores:
            await store.close()


async def test_local_bm25_follows_the_writes(make_settings: Any) -> None:
    from rag.models import Chunk

    settings = make_settings(milvus={"bm25": "local"})
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    await store.ensure_collection(8)
    vectors = _vectors(26)
    await store.upsert(_chunks(), vectors[:24])
    far = [-x for x in vectors[25]]  # the new rows are the farthest by vector: only BM25 can find them

    async def found(words: str) -> list[str]:
        return [h.chunk_id for h in await store.search(vectors[25], 6, lexical=lexical_text(words))]

    try:
        assert "new" not in await found("zebrafish")  # built from the collection at the first search
        new = Chunk("new", "docs", "fish.md", 0, "", "Fish", "", "zebrafish care", "h")
        tail = Chunk("tail", "docs", "fish.md", 1, "", "Fish", "", "zebrafish tail", "h")
        await store.upsert([new, tail], [far, far])
        assert set(await found("zebrafish")) >= {"new", "tail"}
        await store.delete_page_tail("fish.md", 1)
        assert "tail" not in await found("zebrafish") and "new" in await found("zebrafish")
        await store.delete_pages(["fish.md"])
        assert not {"new", "tail"} & set(await found("zebrafish"))
        words = " ".join(c.text for c in _chunks()[6:8])
        assert {"c6", "c7"} & set(await found(words))
        await store.delete_pages(["page3.md"])  # c6 and c7
        assert not {"c6", "c7"} & set(await found(words))
    finally:
        await store.close()


async def test_warming_reads_local_bm25_before_the_first_question(make_settings: Any) -> None:
    settings = make_settings()
    empty = MilvusStore(settings.milvus_uri, settings.milvus)
    await empty.warm()  # nothing indexed yet: nothing to warm, and no error
    assert empty._bm25 is None
    await empty.ensure_collection(8)
    await empty.upsert(_chunks(), _vectors(24))
    await empty.close()
    store = MilvusStore(settings.milvus_uri, settings.milvus)  # the bot's next start
    try:
        await store.warm()
        assert store._bm25 is not None and len(store._bm25["lexical"]) == 24
    finally:
        await store.close()


async def test_the_first_search_asks_for_the_index_the_collection_has(make_settings: Any) -> None:
    """index_type=auto may find an IVF_FLAT collection (moved there by fit_index): even the first search of a
    new process must send IVF's nprobe, not the parameters of the FLAT a new collection would get."""
    pinned = make_settings(milvus={"index_type": "IVF_FLAT"})
    writer = MilvusStore(pinned.milvus_uri, pinned.milvus)
    await writer.ensure_collection(8)
    await writer.upsert(_chunks(), _vectors(24))
    await writer.flush()
    await writer.close()

    settings = make_settings()  # index_type=auto: a new collection would be FLAT
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    sent: list[dict[str, Any]] = []
    try:
        client = await store._call("connect", lambda c: c)
        real = client.search

        def recorded(*args: Any, **kwargs: Any) -> Any:
            sent.append(kwargs.get("search_params") or {})
            return real(*args, **kwargs)

        client.search = recorded
        await store.search(_vectors(25)[-1], 6)
        assert sent and sent[0].get("params") == {"nprobe": 16}
    finally:
        await store.close()


async def test_closing_waits_for_the_searches_in_flight(make_settings: Any) -> None:
    """A search whose asker went away (a question dropped at shutdown) runs on in its thread: closing the client
    under it failed it midway with "should create connection first"."""
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    await store.ensure_collection(8)
    await store.upsert(_chunks(), _vectors(24))
    await store.flush()
    query = _vectors(25)[-1]
    for _ in range(5):
        searches = [asyncio.create_task(store.search(query, 10, lexical="collection partition")) for _ in range(6)]
        await asyncio.sleep(0)  # let them start
        await store.close()
        assert all(hits for hits in await asyncio.gather(*searches))
    await store.close()
