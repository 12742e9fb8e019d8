"""Knowledge gaps (issue 24): the questions the docs did not answer well, grouped by meaning.

What goes in: the questions ``FeedbackStore.gap_questions`` selects for a view — refused, handed off, voted 👎,
answered below ``gaps.low_confidence`` or with no sentence tied to a source — scoped as the report is
(``rag.feedback.View``: a space's admins see its public questions; the operator sees all).

How they are grouped: each distinct question (case and spacing aside) is embedded by the embedder Docent answers
with, and scikit-learn's ``AgglomerativeClustering`` joins them by cosine distance with average linkage until the
distance between groups reaches ``gaps.cluster_distance``: the threshold, not a count, decides how many clusters there
are, so the number follows the questions.

What each cluster shows: its size (every time it was asked) and trend (this week against the week before); up to
``gaps.representatives`` distinct questions nearest its centre; the docs pages nearest its centre (dense search over
the docs alone, community answers left out) with their cosine: where the docs come closest but fall short; and the
approved community answer, visible in the view, whose question is at least ``gaps.covered_similarity`` close to the
centre, if there is one.

Privacy: a private question (``/ask private``, a direct message, an old row of unknown origin) is clustered and
counted in its cluster's size — how big a gap is must not depend on where it was asked — but its words are never
shown: representatives are public questions only, and a cluster of private questions shows none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from rag.embedder import Embedder
from rag.errors import DocentError
from rag.feedback import GAP_REASONS, FeedbackStore, GapQuestion, View
from rag.learned import Learned, LearnedStore
from rag.models import Hit
from rag.scope import SearchScope, visible_communities
from rag.settings import GapSettings

logger = logging.getLogger(__name__)
WEEK_S = 7 * 24 * 3600.0
DOCS_ONLY = SearchScope(communities=())  # every docs source, no community answer: what the docs themselves hold
PAGE_CANDIDATES = 40  # chunks searched for a cluster's nearest pages


class PageSearch(Protocol):
    """The store's dense search (``rag.store.Store.search``), all gaps need of it."""

    async def search(self, vector: Sequence[float], limit: int, *, scope: SearchScope = ...) -> list[Hit]: ...


@dataclass(frozen=True)
class NearPage:
    """A docs page near a cluster's centre: the closest the docs come."""

    title: str
    url: str
    similarity: float


@dataclass(frozen=True)
class Coverage:
    """The approved community answer whose question is nearest a cluster's centre."""

    pair_id: int
    question: str
    link: str
    similarity: float


@dataclass(frozen=True)
class GapCluster:
    size: int  # every time a question of it was asked, private ones included
    private: int  # of which private: counted, never shown
    this_week: int  # asked in the 7 days before the report
    last_week: int  # asked in the 7 days before those
    trend: str  # "new" (first asked this week), "rising", "falling" or "steady"
    first_asked: float
    last_asked: float
    reasons: dict[str, int]  # why its questions are gaps (``rag.feedback.GAP_REASONS``), how often
    representatives: tuple[str, ...]  # public questions nearest its centre, distinct
    pages: tuple[NearPage, ...] = ()
    covered_by: Coverage | None = None


@dataclass(frozen=True)
class GapReport:
    platform: str | None
    space: int | str | None
    since: float | None
    generated_at: float
    questions: int
    private: int
    clusters: tuple[GapCluster, ...]
    pages_note: str = ""  # why no docs pages are shown, when the store could not be searched
    settings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return asdict(self)

    def as_text(self) -> str:
        """For a terminal or a chat message; only public questions' words appear."""
        since = f" since {_day(self.since)}" if self.since is not None else ""
        clusters = len(self.clusters)
        lines = [
            f"{self.questions} gap question{'' if self.questions == 1 else 's'}{since} "
            f"in {clusters} cluster{'' if clusters == 1 else 's'}"
            + (f" ({self.private} private: counted, never shown)." if self.private else "."),
        ]
        if self.pages_note:
            lines.append(f"(No nearest docs pages: {self.pages_note})")
        for number, cluster in enumerate(self.clusters, start=1):
            why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in cluster.reasons.items())
            lines += [
                "",
                f"{number}. {cluster.size} question{'' if cluster.size == 1 else 's'} — {cluster.this_week} this week, "
                f"{cluster.last_week} the week before ({cluster.trend}); {why}",
                *(f"   • {question}" for question in cluster.representatives),
            ]
            if cluster.private:
                lines.append(f"   ({cluster.private} private, not shown)")
            if cluster.pages:
                nearest = "; ".join(f"{page.title} ({page.similarity:.2f}) {page.url}" for page in cluster.pages)
                lines.append(f"   Nearest docs: {nearest}")
            if cluster.covered_by is not None:
                pair = cluster.covered_by
                lines.append(
                    f"   Covered by community answer #{pair.pair_id} ({pair.similarity:.2f}): {pair.question} "
                    f"{pair.link}"
                )
            else:
                lines.append("   No community answer covers it.")
        return "\n".join(lines)


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def normalised(question: str) -> str:
    """How two askings count as one question: case and spacing aside (as the report counts them)."""
    return " ".join(question.lower().split())


def cluster_labels(vectors: NDArray[np.float32], distance: float) -> list[int]:
    """Cluster unit ``vectors`` by cosine distance, average linkage, cut at ``distance``; a label per vector."""
    if len(vectors) < 2:
        return [0] * len(vectors)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average")
    return [int(label) for label in model.fit_predict(vectors)]


def _unit(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def trend(this_week: int, last_week: int, first_asked: float, now: float) -> str:
    if first_asked >= now - WEEK_S:
        return "new"
    if this_week > last_week:
        return "rising"
    return "falling" if this_week < last_week else "steady"


class GapFinder:
    """The gap report over a feedback store, with the embedder already loaded; ``pages`` (the docs store) and
    ``learned`` (community answers) are optional: without them no pages, no coverage."""

    def __init__(
        self,
        feedback: FeedbackStore,
        embedder: Embedder,
        settings: GapSettings,
        *,
        pages: PageSearch | None = None,
        learned: LearnedStore | None = None,
        shared_spaces: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._feedback = feedback
        self._embedder = embedder
        self._settings = settings
        self._pages = pages
        self._learned = learned
        self._shared = tuple(shared_spaces)
        self._clock = clock

    async def report(self, view: View, *, since: float | None = None) -> GapReport:
        settings = self._settings
        now = self._clock()
        asked = await self._feedback.gap_questions(
            view, since=since, low_confidence=settings.low_confidence, limit=settings.max_questions
        )
        groups: dict[str, list[GapQuestion]] = {}
        for question in asked:
            groups.setdefault(normalised(question.question), []).append(question)
        keys = list(groups)
        vectors = await self._embed([groups[key][0].question for key in keys])
        labels = await asyncio.to_thread(cluster_labels, vectors, settings.cluster_distance)
        members: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            members.setdefault(label, []).append(index)
        approved = await self._approved(view)
        approved_vectors = await self._embed([pair.question for pair in approved])
        clusters: list[GapCluster] = []
        note = ""
        for indices in members.values():
            centre = _unit(vectors[indices].mean(axis=0))
            questions = [q for i in indices for q in groups[keys[i]]]
            pages: tuple[NearPage, ...] = ()
            if self._pages is not None and settings.pages and not note:
                try:
                    pages = await self._nearest_pages(centre)
                except DocentError as exc:
                    note = str(exc)
            clusters.append(
                self._cluster(
                    questions,
                    [groups[keys[i]] for i in indices],
                    vectors[indices] @ centre,
                    now,
                    pages,
                    self._coverage(centre, approved, approved_vectors),
                )
            )
        clusters.sort(key=lambda c: (-c.size, -c.last_asked))
        return GapReport(
            view.platform,
            view.space,
            since,
            now,
            len(asked),
            sum(q.private for q in asked),
            tuple(clusters),
            note,
            {
                "cluster_distance": settings.cluster_distance,
                "low_confidence": settings.low_confidence,
                "covered_similarity": settings.covered_similarity,
            },
        )

    async def _embed(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit vectors of ``texts``, as questions are embedded for search (the query prefix, batched)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = await asyncio.gather(*(self._embedder.embed_query(text) for text in texts))
        return np.array([_unit(np.asarray(v, dtype=np.float32)) for v in vectors], dtype=np.float32)

    def _cluster(
        self,
        questions: list[GapQuestion],
        groups: list[list[GapQuestion]],
        closeness: NDArray[np.float32],
        now: float,
        pages: tuple[NearPage, ...],
        covered_by: Coverage | None,
    ) -> GapCluster:
        times = [q.asked_at for q in questions]
        this_week = sum(t >= now - WEEK_S for t in times)
        last_week = sum(now - 2 * WEEK_S <= t < now - WEEK_S for t in times)
        reasons = Counter(reason for q in questions for reason in q.reasons)
        shown: list[str] = []
        for index in np.argsort(-closeness, kind="stable"):
            public = [q for q in groups[int(index)] if not q.private]  # newest first, as selected
            if public and len(shown) < self._settings.representatives:
                shown.append(public[0].question)
        return GapCluster(
            size=len(questions),
            private=sum(q.private for q in questions),
            this_week=this_week,
            last_week=last_week,
            trend=trend(this_week, last_week, min(times), now),
            first_asked=min(times),
            last_asked=max(times),
            reasons={reason: reasons[reason] for reason in GAP_REASONS if reasons[reason]},
            representatives=tuple(shown),
            pages=pages,
            covered_by=covered_by,
        )

    async def _nearest_pages(self, centre: NDArray[np.float32]) -> tuple[NearPage, ...]:
        assert self._pages is not None
        hits = await self._pages.search(centre.tolist(), PAGE_CANDIDATES, scope=DOCS_ONLY)
        best: dict[str, NearPage] = {}
        for hit in hits:
            url = hit.url.split("#", 1)[0]
            key = url or hit.page_id
            if key not in best or hit.similarity > best[key].similarity:
                best[key] = NearPage(hit.title, url, round(float(hit.similarity), 3))
        ranked = sorted(best.values(), key=lambda page: -page.similarity)
        return tuple(ranked[: self._settings.pages])

    async def _approved(self, view: View) -> list[Learned]:
        """The approved community answers the view may see: every one for the operator's whole view; those of a
        platform for one platform; for a space, the ones its questions may cite (``rag.scope``)."""
        if self._learned is None:
            return []
        pairs = await self._learned.list("approved", limit=100_000)
        if view.space is None:
            return [p for p in pairs if view.platform is None or p.platform == view.platform]
        platforms = (view.platform,) if view.platform else ("discord", "slack")
        visible = {s for p in platforms for s in visible_communities(p, view.space, self._shared)}
        return [pair for pair in pairs if pair.source_id in visible]

    def _coverage(
        self, centre: NDArray[np.float32], approved: list[Learned], vectors: NDArray[np.float32]
    ) -> Coverage | None:
        if not approved:
            return None
        similarities = vectors @ centre
        best = int(np.argmax(similarities))
        similarity = float(similarities[best])
        if similarity < self._settings.covered_similarity:
            return None
        pair = approved[best]
        return Coverage(pair.id, pair.question, pair.link, round(similarity, 3))
