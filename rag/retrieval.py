"""Finding the passages for a question: hybrid search, optional reranking, then ranking by page.

Users are cited pages, not chunks, so candidates are grouped by page, and within a page by section: a
section scores its best match at either granularity (the whole section, or a window of it), and a page
scores its best section plus a geometrically discounted share of its other matching sections, optionally
lifted by how many distinct sections match. That lifts a page that covers a topic throughout above one that
mentions it once, without letting one long page (or one long section's many windows) crowd out the rest.

Fused scores are ranks: the most one chunk can get is 2 / (rrf_k + 1), however much closer it is than the rest,
and a long page's many weak matches summed past it. So only a page whose best match is itself close (a dense
cosine at least ``support_ratio`` of the best candidate's) is lifted by its other matches: an approved community
answer, always one chunk, is not outvoted by long pages that merely share its words (issue 22).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rag.embedder import QueryEmbedder
from rag.lexical import lexical_text
from rag.models import Hit
from rag.query import search_text
from rag.rerank import Reranker
from rag.scope import EVERYTHING, SearchScope
from rag.settings import RetrievalSettings, TuningSettings
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


def rank_pages(
    hits: Sequence[Hit],
    *,
    top_k: int,
    per_page: int,
    bonus: float,
    window_weight: float = 1.0,
    section_weight: float = 0.0,
    support_ratio: float = 0.0,
) -> list[Hit]:
    """Group ranked chunks by page and section, order pages by aggregated score; keep one hit (its best) for
    each of a page's best sections, so a section matched by several windows is passed on once. A page whose
    closest match has a cosine below ``support_ratio`` times the best candidate's scores its best section alone."""
    pages: dict[str, dict[object, tuple[float, Hit]]] = {}
    closest: dict[str, float] = {}
    for hit in hits:
        score = hit.score * (window_weight if hit.kind == "window" else 1.0)
        sections = pages.setdefault(hit.page_id, {})
        key: object = hit.section if hit.section is not None else ("chunk", hit.chunk_id)
        if key not in sections or score > sections[key][0]:
            sections[key] = (score, hit)
        closest[hit.page_id] = max(closest.get(hit.page_id, -math.inf), hit.similarity)
    top = max(closest.values(), default=0.0)
    weak = support_ratio * top if support_ratio and top > 0 else -math.inf
    ranked: list[tuple[float, list[Hit]]] = []
    for page, sections in pages.items():
        best = sorted(sections.values(), key=lambda pair: -pair[0])  # stable: ties keep first-seen order
        if closest[page] < weak:  # weak matches only: their number says nothing about this question
            score = best[0][0]
        else:
            score = sum(s * bonus**i for i, (s, _) in enumerate(best))
            if section_weight:
                score *= 1 + section_weight * math.log(len(best))
        ranked.append((score, [h for _, h in best]))
    ranked.sort(key=lambda pair: -pair[0])  # stable: ties keep first-seen order
    return [hit for _, chunks in ranked[:top_k] for hit in chunks[:per_page]]


class Retriever:
    """Search and page ranking under ``tuning`` (what the benchmark chose); ``tuning`` is public so that the refusal
    compares this retriever's confidence with the threshold chosen together with its ranking."""

    def __init__(
        self,
        embedder: QueryEmbedder,
        store: Store,
        settings: RetrievalSettings,
        tuning: TuningSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings
        self.tuning = tuning
        self._reranker = reranker

    async def retrieve(
        self, question: str, history: Sequence[str] = (), *, scope: SearchScope = EVERYTHING
    ) -> Retrieval:
        """The best passages for ``question`` (with earlier questions of the thread), of what ``scope`` admits."""
        settings, tuning = self._settings, self.tuning
        query = search_text(question, history, settings.history_questions, normalise=tuning.normalise_query)
        started = time.perf_counter()
        vector = await self._embedder.embed_query(query.dense)
        embedded = time.perf_counter()
        lexical = lexical_text(query.lexical) if tuning.mode == "hybrid" else ""
        candidates = await self._store.search(
            vector,
            max(tuning.candidates, settings.top_k),
            lexical=lexical,
            rrf_k=tuning.rrf_k,
            headings=tuning.heading_search,
            scope=scope,
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
            candidates,
            top_k=settings.top_k,
            per_page=settings.chunks_per_page,
            bonus=tuning.page_bonus,
            window_weight=tuning.window_weight,
            section_weight=tuning.section_match_weight,
            support_ratio=tuning.page_support_ratio,
        )
        confidence = max((hit.similarity for hit in hits), default=0.0)
        return Retrieval(tuple(hits), confidence, timings)
