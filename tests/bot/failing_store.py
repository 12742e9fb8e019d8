"""The real Milvus store with injectable search failures, for the front-ends' outage tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import StoreUnavailable
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
