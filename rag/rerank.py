"""Optional cross-encoder reranking: slower than the bi-encoder, but reads question and passage together."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from rag.errors import ConfigError
from rag.settings import resolve_embedding_model

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    async def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Relevance in (0, 1) of each passage to the query."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder behind one worker thread (like the embedder)."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 16) -> None:
        from sentence_transformers import CrossEncoder

        started = time.perf_counter()
        try:
            self._model = CrossEncoder(resolve_embedding_model(model), device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot load rerank model {model!r}: {exc}") from exc
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reranker")
        logger.info("rerank model %s loaded in %.1fs", model, time.perf_counter() - started)

    def _predict(self, query: str, passages: list[str]) -> list[float]:
        logits = self._model.predict(
            [(query, p) for p in passages], batch_size=self._batch_size, show_progress_bar=False
        )
        return [_sigmoid(float(x)) for x in logits]

    async def score(self, query: str, passages: Sequence[str]) -> list[float]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._predict, query, list(passages))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
