"""Finding the passages for a question: hybrid search, optional reranking, then ranking by page.

Users are cited pages, not chunks, so candidates are grouped by page: a page scores its best chunk plus a
geometrically discounted share of its other matching chunks, which lifts a page that covers a topic
throughout above one that mentions it once, without letting one long page crowd out the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rag.embedder import Embedder
from rag.lexical import lexical_text
from rag.models import Hit
from rag.query import search_text
from rag.rerank import Reranker
from rag.settings import RetrievalSettings
from rag.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieval:
    """Hits grouped by page, best page first; ``confidence`` is what the refusal threshold is compared with."""

    hits: tuple[Hit, ...]
    confidence: float
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def pages(self) -> list[str]:
        return list(dict.fromkeys(hit.page_id for hit in self.hits))


def rank_pages(hits: Sequence[Hit], *, top_k: int, per_page: int, bonus: float) -> list[Hit]:
    """Group ranked chunks by page and order pages by aggregated score; keep each page's best chunks."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.page_id, []).append(hit)

    def page_score(chunks: list[Hit]) -> float:
        return sum(chunk.score * bonus**i for i, chunk in enumerate(chunks))

    ranked = sorted(groups.values(), key=page_score, reverse=True)  # stable: ties keep first-seen order
    return [chunk for chunks in ranked[:top_k] for chunk in chunks[:per_page]]


class Retriever:
    def __init__(
        self, embedder: Embedder, store: Store, settings: RetrievalSettings, reranker: Reranker | None = None
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings
        self._reranker = reranker

    async def retrieve(self, question: str, history: Sequence[str] = ()) -> Retrieval:
        settings = self._settings
        query = search_text(question, history, settings.history_questions, normalise=settings.normalise_query)
        started = time.perf_counter()
        vector = await self._embedder.embed_query(query.dense)
        embedded = time.perf_counter()
        lexical = lexical_text(query.lexical) if settings.mode == "hybrid" else ""
        candidates = await self._store.search(
            vector, max(settings.candidates, settings.top_k), lexical=lexical, rrf_k=settings.rrf_k
        )
        searched = time.perf_counter()
        timings = {"embed_ms": (embedded - started) * 1000, "search_ms": (searched - embedded) * 1000}
        if self._reranker is not None and candidates:
            head = candidates[: settings.rerank_candidates]
            scores = await self._reranker.score(query.dense, [hit.context_text for hit in head])
            reranked = sorted(
                (replace(hit, score=score) for hit, score in zip(head, scores, strict=True)),
                key=lambda hit: -hit.score,
            )
            candidates = reranked + list(candidates[settings.rerank_candidates :])
            timings["rerank_ms"] = (time.perf_counter() - searched) * 1000
        hits = rank_pages(
            candidates, top_k=settings.top_k, per_page=settings.chunks_per_page, bonus=settings.page_bonus
        )
        confidence = max((hit.similarity for hit in hits), default=0.0)
        return Retrieval(tuple(hits), confidence, timings)
