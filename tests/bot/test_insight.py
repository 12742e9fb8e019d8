"""The dashboard's gaps and resolved rate come from what ``python -m bot gaps`` and ``python -m bot report`` read
(``bot.insight``), so the figures agree."""

from __future__ import annotations

import itertools
from pathlib import Path

import aiohttp
from bs4 import BeautifulSoup

from bot.dashboard import DashboardData
from bot.insight import Gaps, Resolutions
from rag import stats
from rag.feedback import FeedbackStore, View
from rag.gaps import Coverage, GapCluster, GapReport, NearPage
from rag.models import Answer
from rag.resolution import total
from tests.bot.dashboard_data import fetch, serving

SPACE = "T1"


async def ask(store: FeedbackStore, request_id: str, thread: str, *, refused: bool = False) -> str:
    answer = Answer(f"question {request_id}", "a", (), refused, (), request_id, {})
    return await store.record_answer(answer, "UASK", guild_id=SPACE, platform="slack", channel="C1", thread=thread)


async def test_the_resolved_and_handed_off_rates_are_the_reports(tmp_path: Path) -> None:
    ticks = itertools.count(1000)
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: float(next(ticks)))
    await ask(store, "solved", "t1")
    await store.solved("slack", "t1", channel="C1", guild_id=SPACE)
    await ask(store, "taken-over", "t2", refused=True)
    await store.person_replied("slack", "t2", "UHELP")
    await ask(store, "left", "t3")
    rows = await store.resolution()
    report = total(rows)
    assert (report.resolved, report.handed_off, report.unresolved) == (1, 1, 1)

    got = await Resolutions(store)(stats.EVERYTHING)
    assert [(r.platform, r.space, r.channel, r.resolved, r.handed_off, r.unresolved) for r in got] == [
        ("slack", SPACE, "C1", 1, 1, 1)
    ]
    async with serving(DashboardData(store, resolution=Resolutions(store))) as base, aiohttp.ClientSession() as http:
        page = BeautifulSoup((await fetch(http, f"{base}/dashboard/"))[1], "html.parser")
    shown = page.select_one('[data-figure="resolved-rate"]')
    assert shown is not None and shown.get_text(strip=True) == f"{report.resolved_rate:.1%}"
    store.close()


class Finder:
    """A gap finder's report, counted: clustering is tested with the real embedder in tests/rag/test_gaps.py."""

    def __init__(self) -> None:
        self.views: list[View] = []

    async def report(self, view: View, *, since: float | None = None) -> GapReport:
        self.views.append(view)
        cluster = GapCluster(
            size=5,
            private=1,
            this_week=4,
            last_week=1,
            trend="rising",
            first_asked=0.0,
            last_asked=1.0,
            reasons={"refused": 5},
            representatives=("does it support LDAP?", "SSO login?"),
            pages=(NearPage("Authenticate", "https://docs.example/auth", 0.6),),
            covered_by=Coverage(7, "LDAP?", "https://chat.example/7", 0.8),
        )
        return GapReport(view.platform, view.space, since, 1.0, 5, 1, (cluster,))


async def test_gaps_are_the_gap_reports_clusters_made_once_per_scope_until_they_age() -> None:
    now = [0.0]
    finder = Finder()
    gaps = Gaps(finder, ttl_s=600, clock=lambda: now[0])  # type: ignore[arg-type]
    first = await gaps(stats.Scope("slack", SPACE))
    assert first == [
        stats.Gap(
            5,
            ("does it support LDAP?", "SSO login?"),
            trend=3,
            pages=(stats.PageRef("Authenticate", "https://docs.example/auth"),),
            community=1,
        )
    ]
    await gaps(stats.Scope("slack", SPACE))
    await gaps(stats.EVERYTHING)
    assert finder.views == [View("slack", SPACE), View(None, None)], "a reload reuses the scope's report"
    now[0] = 600.0
    await gaps(stats.Scope("slack", SPACE))
    assert len(finder.views) == 3, "an aged report is made again"
