"""The Milvus store on a real Milvus Lite: a failing call never makes the event loop wait for the reconnect lock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from rag.errors import StoreUnavailable
from rag.lexical import lexical_text
from rag.store import MilvusStore

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
