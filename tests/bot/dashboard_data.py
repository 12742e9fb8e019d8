"""A small install's data for the dashboard's tests: questions on both platforms, private ones, a hostile one,
support channels, votes, community answers and index runs, dated relative to ``NOW``."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.community import FEEDBACK_FILE
from bot.dashboard import DashboardData
from bot.ops import OpsServer
from indexer.build import RECORD_FILE
from indexer.manifest import IndexManifest, IndexRun, PageRecord
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.learned import LearnedStore
from rag.metrics import Metrics
from rag.models import Answer, Citation
from rag.settings import OpsSettings

NOW = 1_767_225_600.0 + 13 * 3600  # 2026-01-01 13:00 UTC
DAY = 86_400
TOKEN = "s3cret-dashboard-token"
SERVER, OTHER_SERVER, WORKSPACE = 111111111111111111, 222222222222222222, "T0SLACK"
HOSTILE = "<script>alert('pwned')</script><img src=x onerror=alert(1)> why?"
PRIVATE_TEXTS = ("Salary bands for the SRE team?", "My private DM about the outage")
INSTALL = Citation(1, "Install", "https://docs.example.org/install")
LINUX = Citation(2, "Install › On Linux", "https://docs.example.org/install#on-linux")  # a section of it
CONFIGURE = Citation(1, "Configure Slack", "https://docs.example.org/slack")
NEVER = PageRecord("docs", "never.md", "h", 1, "https://docs.example.org/never", "Never cited page")


@dataclass(frozen=True)
class Asked:
    question: str
    platform: str = "discord"
    space: int | str | None = SERVER
    private: bool = False
    refused: bool = False
    days_ago: float = 0
    latency_ms: float | None = 1000.0
    cites: tuple[Citation, ...] = ()
    channel: str | None = None  # a support channel's question nobody asked Docent


ASKED = (
    Asked("How do I install?", days_ago=0, latency_ms=1000, cites=(INSTALL,)),
    Asked("How do I install?", days_ago=1, latency_ms=2000, cites=(INSTALL, LINUX)),  # one page, twice
    Asked("how do I install? ", days_ago=1, latency_ms=3000, cites=(INSTALL,)),
    Asked("How do I install?", private=True, days_ago=2, latency_ms=4000, cites=(INSTALL,)),
    Asked(HOSTILE, refused=True, days_ago=3, latency_ms=5000),
    Asked(PRIVATE_TEXTS[0], private=True, refused=True, days_ago=3, latency_ms=6000),
    Asked(PRIVATE_TEXTS[1], space=None, private=True, days_ago=4, latency_ms=7000, cites=(INSTALL,)),
    Asked("Does it run on ARM?", space=OTHER_SERVER, days_ago=5, latency_ms=8000, cites=(INSTALL,)),
    Asked("Why is search slow?", channel="C1", days_ago=6, latency_ms=9000, cites=(INSTALL,)),
    Asked("Can I shard by tenant?", channel="C1", refused=True, days_ago=6, latency_ms=None),
    Asked("How do I configure Slack?", "slack", WORKSPACE, days_ago=0, latency_ms=10_000, cites=(CONFIGURE,)),
    Asked("How do I configure Slack?", "slack", WORKSPACE, days_ago=40, latency_ms=11_000, cites=(CONFIGURE,)),
    Asked("Is there a Slack app?", "slack", WORKSPACE, refused=True, days_ago=100, latency_ms=12_000),
)


async def fill(data_dir: Path) -> DashboardData:
    """Write ``ASKED`` (with votes, a solved thread, community answers and index runs) under ``data_dir``."""
    feedback = FeedbackStore(data_dir / FEEDBACK_FILE)
    for n, asked in enumerate(ASKED):
        answer = Answer(
            asked.question,
            "" if asked.refused else f"Answer {n} [1].",
            asked.cites,
            asked.refused,
            request_id=f"r{n}",
            timings_ms={} if asked.latency_ms is None else {"total_ms": asked.latency_ms},
        )
        await feedback.record_answer(
            answer,
            1000 + n % 4,
            guild_id=asked.space,
            private=asked.private,
            platform=asked.platform,
            channel=asked.channel,
            thread=f"t{n}" if asked.channel else None,
            unasked=asked.channel is not None,
        )
    await feedback.vote("r0", 1, True, guild_id=SERVER)
    await feedback.vote("r1", 2, True, guild_id=SERVER)
    await feedback.vote("r4", 3, False, guild_id=SERVER)
    await feedback.vote("r10", "U1", False, guild_id=WORKSPACE, platform="slack")
    await feedback.solved("discord", "t8", channel="C1", guild_id=SERVER)

    with contextlib.closing(sqlite3.connect(data_dir / FEEDBACK_FILE)) as db, db:  # back-dated beside the store
        for n, asked in enumerate(ASKED):
            db.execute("UPDATE answers SET asked_at = ? WHERE id = ?", (NOW - asked.days_ago * DAY, f"r{n}"))

    learned = LearnedStore(data_dir / LEARNED_FILE)
    for n, private in enumerate((False, True, False)):
        pair = await learned.capture(
            platform="discord",
            space=str(SERVER),
            private=private,
            channel="C1",
            thread=f"learn{n}",
            question=f"Community question {n}" if not private else "Private community question",
            answer="Use the tenant key.",
            link=f"https://discord.com/channels/{SERVER}/1/{n}",
            author="helper",
            author_id=7,
            asker_id=8 + n,
        )
        if n == 2:
            await learned.decide(pair, "approved")
    record = IndexManifest(data_dir / RECORD_FILE, "docent_chunks")
    await record.record(
        [
            PageRecord("docs", "install.md", "h", 2, INSTALL.url, INSTALL.title),
            PageRecord("docs", "slack.md", "h", 2, CONFIGURE.url, CONFIGURE.title),
            NEVER,
        ]
    )
    await record.record_run(IndexRun(NOW - 2 * DAY, 42.0, pages_new=3, pages_unchanged=0))
    await record.record_run(IndexRun(NOW - DAY, 7.5, pages_changed=1, pages_unchanged=2, pages_failed=1))
    return DashboardData(feedback, learned, record)


def empty(data_dir: Path) -> DashboardData:
    """A new install: the stores exist (the bot opens them), nothing in them."""
    return DashboardData(
        FeedbackStore(data_dir / FEEDBACK_FILE),
        LearnedStore(data_dir / LEARNED_FILE),
        IndexManifest(data_dir / RECORD_FILE, "docent_chunks"),
    )


def close(data: DashboardData) -> None:
    data.feedback.close()
    if data.learned is not None:
        data.learned.close()


@contextlib.asynccontextmanager
async def serving(
    data: DashboardData, *, token: str | None = TOKEN, clock: Callable[[], float] = lambda: NOW
) -> AsyncIterator[str]:
    """The real ops server on a free loopback port, with the dashboard over ``data``; yields its base URL."""
    settings = OpsSettings(port=0, dashboard_token=token)
    async with OpsServer(settings, Metrics(), lambda: {"status": "ok"}, dashboard=data, clock=clock) as ops:
        yield f"http://127.0.0.1:{ops.port}"


async def fetch(http: aiohttp.ClientSession, url: str, *, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()
