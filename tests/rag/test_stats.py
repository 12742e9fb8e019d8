"""The dashboard's figures: counted as the report counts them in every scope, private words never returned."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

from rag import stats
from rag.feedback import FeedbackStore
from rag.models import Answer, Citation

NOW = 1_767_225_600.0 + 6 * 3600  # 2026-01-01 06:00 UTC
PAGE = Citation(1, "Install", "https://docs/install")
PLACES: tuple[tuple[str, int | str | None, bool], ...] = (
    ("discord", 101, False),
    ("discord", 101, True),  # a private /ask in a server
    ("discord", 202, False),
    ("discord", None, True),  # a direct message
    ("slack", "T1", False),
    ("slack", "101", False),  # a workspace id that reads as a number
    ("slack", None, True),
)


async def filled(path: Path) -> FeedbackStore:
    store = FeedbackStore(path)
    for n in range(42):
        platform, space, private = PLACES[n % len(PLACES)]
        refused = n % 5 == 0
        question = "Secret plans?" if private and n % 2 else f"Question {n % 4}?"
        answer = Answer(
            question, "a", () if refused else (PAGE,), refused, request_id=f"r{n}", timings_ms={"total_ms": n}
        )
        unasked = space is not None and not private and n % 3 == 0
        await store.record_answer(
            answer, n % 9, guild_id=space, private=private, platform=platform,
            channel=f"C{n % 2}" if unasked else None, thread=f"t{n}" if unasked else None, unasked=unasked,
        )  # fmt: skip
        if n % 4 == 0:
            await store.vote(f"r{n}", 50 + n, n % 8 == 0, guild_id=space, platform=platform)
    await store.solved("discord", "t0", channel="C0", guild_id=101)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE answers SET asked_at = ? - CAST(substr(id, 2) AS INTEGER) * 86400 * 3", (NOW,))
    return store


async def test_every_scope_is_counted_as_the_report_counts_it(tmp_path: Path) -> None:
    store = await filled(tmp_path / "feedback.sqlite3")
    scopes = [stats.Scope(p, s) for p in (None, "discord", "slack") for s in (None, "101", "T1", "202", "nowhere")]
    for scope in scopes:
        if scope.platform is None and scope.space is not None:
            continue  # the dashboard picks a space on a platform
        reports = await store.reports_by_server(limit=0, platform=scope.platform, space=scope.space)
        overview = await stats.overview(store, scope, now=NOW)
        assert [(s.platform, s.space, s.answers, s.refused, s.helpful, s.not_helpful) for s in overview.spaces] == [
            (place, guild, r.answers, r.refused, r.helpful, r.not_helpful) for place, guild, r in reports
        ], scope
        channels = [
            (place, guild, row["channel"], row["questions"], row["answered"], row["handed_off"], row["solved"])
            for place, guild, _ in reports if guild is not None
            for row in await store.channel_stats(place, guild)
        ]  # fmt: skip
        assert [tuple(vars(c).values()) for c in overview.channels] == channels, scope
        assert sum(sum(s.per_day) for s in overview.spaces) <= overview.answers, "the chart shows the last 90 days"
    every = await stats.overview(store, now=NOW)
    assert sum(sum(s.per_day) for s in every.spaces) == 30, "r0 to r29: asked within the last 90 days"
    store.close()


async def test_per_day_latency_and_lists(tmp_path: Path) -> None:
    store = await filled(tmp_path / "feedback.sqlite3")
    overview = await stats.overview(store, days=30, now=NOW, top=3)
    assert overview.days[-1] == dt.date(2026, 1, 1) and len(overview.days) == 30
    per_platform = overview.per_platform()
    assert per_platform["discord"][-1] == 1 and per_platform["discord"][-2] == 0, "r0 today, r1 three days ago"
    assert sum(map(sum, per_platform.values())) == 10, "r0 to r9 within 30 days"
    assert overview.latency == stats.Latency(42, 20.0, 39.0)
    assert overview.private == 18
    texts = [q.text for q in overview.top]
    assert "Secret plans?" not in texts and len(texts) == 3
    questions = await stats.questions(store)
    everything = [q.text for q in (*questions.top, *questions.not_in_docs)] + [d.question for d in questions.disliked]
    assert "Secret plans?" not in everything and questions.private == 18
    assert overview.cited == (stats.CitedPage("Install", "https://docs/install", 33),)
    assert await stats.citations(store, stats.Scope("slack", "T1")) == (
        stats.CitedPage("Install", "https://docs/install", 5),
    )
    store.close()


def test_percentiles_and_pages_never_cited() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile([1, 2, 3, 4], 50) == 2 and stats.percentile([1, 2, 3, 4], 95) == 4
    pages = [stats.KnownPage("docs", "Install", "https://docs/install"), stats.KnownPage("docs", "Local", "")]
    cited = [stats.CitedPage("Install", "https://docs/install", 3)]
    assert stats.never_cited(pages, cited) == (pages[1],)
    assert stats.never_cited(pages, [*cited, stats.CitedPage("Local", "", 1)]) == ()
