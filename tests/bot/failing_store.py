"""The real stores with injected trouble: Milvus searches that fail (the front-ends' outage tests) and feedback
writes that hang until released (the buttons' 3-second rule)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from rag.errors import StoreUnavailable
from rag.feedback import FeedbackStore
from rag.models import Hit
from rag.store import MilvusStore


class FailingStore:
    """The real store, but the next ``fail_next`` searches fail as a Milvus outage would."""

    def __init__(self, inner: MilvusStore) -> None:
        self.inner = inner
        self.fail_next = 0

    async def search(self, vector: Sequence[float], limit: int, **options: Any) -> list[Hit]:
        if self.fail_next:
            self.fail_next -= 1
            raise StoreUnavailable("milvus search failed: connection refused (injected)")
        return await self.inner.search(vector, limit, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SlowFeedback:
    """The real feedback store, but votes and "solved" marks wait until the test opens ``gate`` (a locked or busy
    SQLite file, a slow disk): what a button does before its first response must not wait on it."""

    def __init__(self, inner: FeedbackStore) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()  # set once a write is held at the gate

    async def _held(self) -> None:
        self.waiting.set()
        await self.gate.wait()

    async def vote(self, *args: Any, **kwargs: Any) -> bool:
        await self._held()
        return await self.inner.vote(*args, **kwargs)

    async def solved(self, *args: Any, **kwargs: Any) -> bool:
        await self._held()
        return await self.inner.solved(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
