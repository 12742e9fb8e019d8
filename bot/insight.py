"""The dashboard's knowledge gaps and resolved rate (issue 24, items 1 and 2), read from what ``python -m bot gaps``
and ``python -m bot report`` read: ``rag.gaps.GapFinder`` and ``FeedbackStore.resolution``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rag import stats
from rag.feedback import FeedbackStore, View
from rag.gaps import GapCluster, GapFinder

GAPS_TTL_S = 600.0  # clustering embeds every gap question: at most once per scope in this long


class Resolutions:
    """``stats.ResolutionSource`` over the feedback store: the operator's counts, as the report prints them."""

    def __init__(self, feedback: FeedbackStore) -> None:
        self._feedback = feedback

    async def __call__(self, scope: stats.Scope) -> list[stats.Resolution]:
        rows = await self._feedback.resolution(platform=scope.platform, space=scope.space)
        return [
            stats.Resolution(
                row.platform,
                None if row.space is None else str(row.space),
                row.channel,
                row.resolved,
                row.handed_off,
                row.unresolved,
            )
            for row in rows
        ]


class Gaps:
    """``stats.GapsSource`` over a ``GapFinder``. A report is kept for ``ttl_s`` per scope, and one scope's report
    is made once at a time, so reloading the page never clusters again."""

    def __init__(
        self, finder: GapFinder, *, ttl_s: float = GAPS_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._finder = finder
        self._ttl_s = ttl_s
        self._clock = clock
        self._made: dict[tuple[str | None, str | None], tuple[float, list[stats.Gap]]] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, scope: stats.Scope) -> list[stats.Gap]:
        key = (scope.platform, scope.space)
        async with self._lock:
            made = self._made.get(key)
            if made is None or self._clock() - made[0] >= self._ttl_s:
                report = await self._finder.report(View(scope.platform, scope.space))
                made = (self._clock(), [_gap(cluster) for cluster in report.clusters])
                self._made[key] = made
            return made[1]


def _gap(cluster: GapCluster) -> stats.Gap:
    return stats.Gap(
        size=cluster.size,
        questions=cluster.representatives,  # public questions only (rag.gaps)
        trend=cluster.this_week - cluster.last_week,
        pages=tuple(stats.PageRef(page.title, page.url) for page in cluster.pages),
        community=int(cluster.covered_by is not None),
    )
