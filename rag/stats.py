"""The dashboard's figures (issue 24), read from the feedback database in its worker thread.

Every figure the report also gives is counted as ``python -m bot report`` counts it, over the same scope (a platform,
a space id, or both, compared as ``FeedbackStore.reports_by_server`` compares them): each space's answers, refusals and
votes, and each support channel's questions, answers, hand-offs and solved threads. A test holds the two equal. They
are read here by grouped queries over the indexes ``rag.tallies`` keeps, in one trip to the worker thread, rather than
through the report's query per space. What the report does not show (questions per day, latency, cited pages, the
lists without private words) is read over the same scope.

Private questions are counted everywhere and their text is never returned: a list of questions takes each
question's words from a public asking only, and one asked only privately is left out of the lists. Askers' hashes
are never read.

Knowledge gaps and resolution counts are computed elsewhere (issue 24, items 1 and 2) and reach the dashboard through
``GapsSource`` and ``ResolutionSource``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rag.feedback import PLATFORMS, FeedbackStore

DAY_S = 86_400


@dataclass(frozen=True)
class Scope:
    """What a page shows: one platform, one space (a Discord server or Slack workspace id), both, or everything."""

    platform: str | None = None
    space: str | None = None

    def condition(self, table: str = "", *, indexed: bool = True) -> tuple[str, dict[str, object]]:
        """An SQL condition on ``answers`` (named ``table`` in the query, if it is) and its parameters; compared as
        ``reports_by_server`` compares them. ``indexed=False`` keeps SQLite from using an index for it (each
        comparison inside a function, which keeps the column's affinity, unlike a unary ``+``), so a query grouped
        in an index's order is not sorted again."""
        column = f"{table}." if table else ""
        conditions = ["1"]
        params: dict[str, object] = {}
        if self.platform is not None:
            conditions.append(f"{column}platform = :platform")
            params["platform"] = self.platform
        if self.space is not None:
            conditions.append(f"{column}guild_id = :space")  # bound as text, like the report: "101" finds server 101
            params["space"] = self.space
        if not indexed:
            conditions = [f"coalesce({condition}, 0)" for condition in conditions]
        return " AND ".join(conditions), params


EVERYTHING = Scope()


def space_key(platform: str, space: object) -> tuple[str, str | None]:
    """A space as a key both ways of reading it agree on (the report gives Discord ids as ints)."""
    return platform, None if space is None else str(space)


async def spaces(store: FeedbackStore) -> tuple[tuple[str, int | str | None], ...]:
    """Every (platform, space) questions came from (space None: direct messages), for choosing a scope."""

    def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
        return db.execute("SELECT DISTINCT platform, guild_id FROM answers INDEXED BY answers_space").fetchall()

    found = {space_key(platform, guild): (str(platform), guild) for platform, guild in await store.read(read)}
    return tuple(found[key] for key in sorted(found, key=lambda k: (_platform_order(k[0]), k[1] is None, k[1] or "")))


def _platform_order(platform: str) -> tuple[int, str]:
    return (PLATFORMS.index(platform) if platform in PLATFORMS else len(PLATFORMS), platform)


@dataclass(frozen=True)
class SpaceFigures:
    """One Discord server, Slack workspace or platform's direct messages (``space`` None)."""

    platform: str
    space: int | str | None
    answers: int
    refused: int
    helpful: int
    not_helpful: int
    per_day: tuple[int, ...]  # questions on each of ``Overview.days``


@dataclass(frozen=True)
class ChannelFigures:
    """A support channel, as the report counts it: new questions, answered, handed off (refused), solved."""

    platform: str
    space: int | str
    channel: str
    questions: int
    answered: int
    handed_off: int
    solved: int


@dataclass(frozen=True)
class Latency:
    measured: int  # answers with a recorded latency
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class Resolution:
    """What became of questions in one channel (issue 24, item 2)."""

    platform: str
    space: str | None
    channel: str | None
    resolved: int
    handed_off: int
    unresolved: int


class ResolutionSource(Protocol):
    """Resolution counts per platform, space and channel within ``scope``."""

    async def __call__(self, scope: Scope) -> Sequence[Resolution]: ...


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def share(self) -> float | None:
        return self.count / self.of if self.of else None


@dataclass(frozen=True)
class Overview:
    days: tuple[dt.date, ...]  # the chart's days (UTC), oldest first
    spaces: tuple[SpaceFigures, ...]  # in the report's order
    channels: tuple[ChannelFigures, ...]
    private: int  # questions asked privately (DMs, private /ask), counted in every total
    latency: Latency
    resolution: tuple[Resolution, ...] | None = None  # None: no resolution source
    top: tuple[AskedQuestion, ...] = ()  # the most asked, when asked for
    cited: tuple[CitedPage, ...] = ()  # pages cited, most first, with ``top``

    @property
    def answers(self) -> int:
        return sum(s.answers for s in self.spaces)

    @property
    def refused(self) -> int:
        return sum(s.refused for s in self.spaces)

    @property
    def helpful(self) -> int:
        return sum(s.helpful for s in self.spaces)

    @property
    def not_helpful(self) -> int:
        return sum(s.not_helpful for s in self.spaces)

    @property
    def answered(self) -> Rate:
        return Rate(self.answers - self.refused, self.answers)

    @property
    def refusals(self) -> Rate:
        return Rate(self.refused, self.answers)

    @property
    def handed_off(self) -> Rate:
        """Questions left to people: the resolution source's count when there is one, else the report's (support
        channels' new questions Docent did not answer)."""
        if self.resolution is not None:
            return Rate(sum(r.handed_off for r in self.resolution), sum(_considered(r) for r in self.resolution))
        return Rate(sum(c.handed_off for c in self.channels), self.answers)

    @property
    def resolved(self) -> Rate | None:
        if self.resolution is None:
            return None
        return Rate(sum(r.resolved for r in self.resolution), sum(_considered(r) for r in self.resolution))

    def per_platform(self) -> dict[str, tuple[int, ...]]:
        """Questions per day by platform, platforms in the report's order."""
        found: dict[str, list[int]] = {}
        for space in self.spaces:
            counts = found.setdefault(space.platform, [0] * len(self.days))
            for i, n in enumerate(space.per_day):
                counts[i] += n
        return {platform: tuple(counts) for platform, counts in found.items()}


def _considered(row: Resolution) -> int:
    return row.resolved + row.handed_off + row.unresolved


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values: the smallest value with at least ``p`` percent at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def chart_days(now: float, days: int) -> tuple[dt.date, ...]:
    today = int(now // DAY_S)
    return tuple(dt.datetime.fromtimestamp((today - days + 1 + i) * DAY_S, dt.UTC).date() for i in range(days))


async def overview(
    store: FeedbackStore,
    scope: Scope = EVERYTHING,
    *,
    days: int = 90,
    now: float | None = None,
    top: int = 0,
    resolution: ResolutionSource | None = None,
) -> Overview:
    """Totals per space and support channel, counted as the report counts them; questions per day over the last
    ``days`` (UTC); the private count, latency percentiles, and with ``top`` the most asked questions and the cited
    pages: all in one read (each trip to the worker thread costs, on a busy machine, more than a query)."""
    now = time.time() if now is None else now
    first_day = int(now // DAY_S) - days + 1
    where, params = scope.condition()
    joined, _ = scope.condition("a")
    unindexed, _ = scope.condition(indexed=False)  # grouped in the index's order, not sorted again
    day = "CAST(asked_at / 86400 AS INTEGER)"  # as the index on it (rag.tallies) computes it

    def read(db: sqlite3.Connection) -> dict[str, Any]:
        return {
            "per_day": db.execute(
                f"SELECT {day}, platform, guild_id, count(*), sum(refused), sum(private) FROM answers "
                f"INDEXED BY answers_day WHERE {unindexed} GROUP BY {day}, platform, guild_id",
                params,
            ).fetchall(),
            # The report's votes of a space: every vote on its answers (from the votes: far fewer than answers).
            "votes": db.execute(
                "SELECT a.platform, a.guild_id, sum(v.helpful), sum(1 - v.helpful) FROM votes v CROSS JOIN answers a "
                f"ON a.id = v.answer_id WHERE {joined} GROUP BY a.platform, a.guild_id",
                params,
            ).fetchall(),
            # The report's support channels (FeedbackStore.channel_stats), of every server and workspace at once.
            "channels": db.execute(
                "SELECT a.platform, a.guild_id, a.channel, count(*), sum(1 - a.refused), sum(a.refused), "
                "(SELECT count(*) FROM solved s WHERE s.platform = a.platform AND s.channel = a.channel) "
                "FROM answers a WHERE a.unasked = 1 AND a.channel IS NOT NULL AND a.guild_id IS NOT NULL "
                f"AND {joined} GROUP BY a.platform, a.guild_id, a.channel ORDER BY count(*) DESC",
                params,
            ).fetchall(),
            "latency": _latency(db, where, params),
            "top": _asked(db, where, {**params, "limit": top}, False) if top else (),
            "cited": _citations(db, where, params) if top else (),
        }

    found = await store.read(read)
    totals: dict[tuple[str, str | None], list[int]] = {}  # answers, refused
    names: dict[tuple[str, str | None], tuple[str, int | str | None]] = {}
    counts: dict[tuple[str, str | None], list[int]] = {}
    private = 0
    for on, platform, guild, n, refused, private_n in found["per_day"]:
        key = space_key(platform, guild)
        names.setdefault(key, (str(platform), _space_id(str(platform), guild)))
        total = totals.setdefault(key, [0, 0])
        total[0] += int(n)
        total[1] += int(refused)
        private += int(private_n)
        if 0 <= on - first_day < days:  # older, or stamped in the future by a clock set back
            counts.setdefault(key, [0] * days)[on - first_day] += int(n)
    votes = {space_key(platform, guild): (int(up), int(down)) for platform, guild, up, down in found["votes"]}
    # The report's order: Discord then Slack, a platform's direct messages last, the busiest space first.
    order = sorted(totals, key=lambda k: (_platform_order(k[0]), k[1] is None, -totals[k][0], _sortable(names[k][1])))
    spaces = tuple(
        SpaceFigures(
            *names[key],
            totals[key][0],
            totals[key][1],
            *votes.get(key, (0, 0)),
            tuple(counts.get(key, [0] * days)),
        )
        for key in order
    )
    rank = {key: i for i, key in enumerate(order)}
    channels = sorted(
        (
            (rank[space_key(platform, guild)], i, ChannelFigures(platform, _space_id(platform, guild) or "", *row))
            for i, (platform, guild, *row) in enumerate(found["channels"])
        ),
    )
    resolved = None if resolution is None else tuple(await resolution(scope))
    return Overview(
        chart_days(now, days),
        spaces,
        tuple(_channel(figures) for _, _, figures in channels),
        private,
        found["latency"],
        resolved,
        found["top"],
        found["cited"],
    )


def _channel(figures: ChannelFigures) -> ChannelFigures:
    return ChannelFigures(
        figures.platform,
        figures.space,
        str(figures.channel),
        int(figures.questions),
        int(figures.answered or 0),
        int(figures.handed_off or 0),
        int(figures.solved),
    )


def _space_id(platform: str, stored: object) -> int | str | None:
    """A space id as the report gives it: an int for a Discord server, a str for a Slack workspace."""
    if stored is None:
        return None
    if platform == "slack" or not isinstance(stored, int):
        return str(stored)
    return stored


def _sortable(space: int | str | None) -> tuple[int, str]:
    return (0, f"{space:030d}") if isinstance(space, int) else (1, str(space))


def _latency(db: sqlite3.Connection, where: str, params: dict[str, object]) -> Latency:
    """p50 and p95 by rank, each read through the latency index rather than every value."""
    measured_in = f"FROM answers INDEXED BY answers_latency WHERE latency_ms IS NOT NULL AND {where}"
    (measured,) = db.execute(f"SELECT count(*) {measured_in}", params).fetchone()

    def at(p: float) -> float | None:
        if not measured:
            return None
        row = db.execute(
            f"SELECT latency_ms {measured_in} ORDER BY latency_ms LIMIT 1 OFFSET :rank",
            {**params, "rank": max(0, math.ceil(p / 100 * measured) - 1)},
        ).fetchone()
        return float(row[0])

    return Latency(int(measured), at(50), at(95))


@dataclass(frozen=True)
class AskedQuestion:
    text: str  # as a public asker typed it
    count: int  # every asking, private ones included (the report's count)


@dataclass(frozen=True)
class CitedPage:
    title: str
    url: str
    count: int = 0

    @property
    def key(self) -> str:
        """How a citation and a page of the index are matched: by address, by title for a page without one."""
        return self.url or f"title:{self.title}"


@dataclass(frozen=True)
class DislikedAnswer:
    question: str
    answer: str
    votes: int  # 👎
    sources: tuple[CitedPage, ...]


@dataclass(frozen=True)
class Questions:
    top: tuple[AskedQuestion, ...]
    not_in_docs: tuple[AskedQuestion, ...]  # refused: the docs did not cover it
    disliked: tuple[DislikedAnswer, ...]
    private: int  # askings whose text is never shown


def _normalised(column: str) -> str:
    return f"lower(trim({column}))"  # as the report groups questions, and the index on them (rag.tallies)


def _asked(db: sqlite3.Connection, where: str, params: dict[str, object], refused: bool) -> tuple[AskedQuestion, ...]:
    rows = db.execute(
        "SELECT min(CASE WHEN private = 0 THEN question END) AS shown, count(*) AS n FROM answers "
        f"INDEXED BY answers_words WHERE {'refused = 1 AND ' if refused else ''}{where} "
        f"GROUP BY {_normalised('question')} HAVING shown IS NOT NULL ORDER BY n DESC, max(asked_at) DESC LIMIT :limit",
        params,
    ).fetchall()
    return tuple(AskedQuestion(str(text), int(n)) for text, n in rows)


async def top_questions(
    store: FeedbackStore, scope: Scope = EVERYTHING, *, limit: int = 10, refused: bool = False
) -> tuple[AskedQuestion, ...]:
    """The most asked questions (``refused``: of those the docs did not cover), grouped and ordered as the report's,
    with their words from a public asking; a question asked only privately is left out."""
    where, params = scope.condition()
    return await store.read(lambda db: _asked(db, where, {**params, "limit": limit}, refused))


async def questions(store: FeedbackStore, scope: Scope = EVERYTHING, *, limit: int = 50) -> Questions:
    """The most asked questions, those the docs did not cover, and the answers marked not helpful, grouped and
    ordered as the report's, with their words from public askings only."""
    where, params = scope.condition()
    joined, _ = scope.condition("a")
    params = {**params, "limit": limit}

    def read(db: sqlite3.Connection) -> Questions:
        down = db.execute(
            # From the votes (CROSS JOIN keeps that order): far fewer than the answers.
            "SELECT a.question, a.answer, a.sources, count(*) AS n FROM votes v CROSS JOIN answers a "
            f"ON a.id = v.answer_id WHERE a.private = 0 AND v.helpful = 0 AND {joined} "
            "GROUP BY a.id ORDER BY n DESC, max(v.voted_at) DESC LIMIT :limit",
            params,
        ).fetchall()
        (private,) = db.execute(f"SELECT count(*) FROM answers WHERE private = 1 AND {where}", params).fetchone()
        return Questions(
            _asked(db, where, params, False),
            _asked(db, where, params, True),
            tuple(DislikedAnswer(str(q), str(a), int(n), _cited(str(s))) for q, a, s, n in down),
            int(private),
        )

    return await store.read(read)


def _cited(sources: str) -> tuple[CitedPage, ...]:
    try:
        found = json.loads(sources)
    except ValueError:
        return ()
    return tuple(CitedPage(str(s.get("title", "")), str(s.get("url", ""))) for s in found if isinstance(s, dict))


def _citations(db: sqlite3.Connection, where: str, params: dict[str, object]) -> tuple[CitedPage, ...]:
    rows = db.execute(
        f"SELECT page, max(title), max(url), sum(answers) AS n FROM cited WHERE {where} GROUP BY page "
        "ORDER BY n DESC, page",
        params,
    ).fetchall()
    return tuple(CitedPage(str(title), str(url), int(n)) for _, title, url, n in rows)


async def citations(store: FeedbackStore, scope: Scope = EVERYTHING) -> tuple[CitedPage, ...]:
    """Every page cited by answers within ``scope``, with how many answers cited it, most cited first (the tally
    ``rag.tallies`` keeps; a refusal's closest pages are not citations)."""
    where, params = scope.condition()
    return await store.read(lambda db: _citations(db, where, params))


@dataclass(frozen=True)
class KnownPage:
    """A page of the index (the index record's)."""

    source_id: str
    title: str
    url: str

    @property
    def key(self) -> str:
        return CitedPage(self.title, self.url).key


def never_cited(pages: Iterable[KnownPage], cited: Iterable[CitedPage]) -> tuple[KnownPage, ...]:
    """The pages of the index no answer cited, by source then title."""
    seen = {page.key for page in cited}
    return tuple(sorted((p for p in pages if p.key not in seen), key=lambda p: (p.source_id, p.title, p.url)))


@dataclass(frozen=True)
class PageRef:
    title: str
    url: str


@dataclass(frozen=True)
class Gap:
    """A knowledge gap (issue 24, item 1): questions the docs answer badly, grouped by meaning."""

    size: int  # questions in it
    questions: tuple[str, ...]  # representative questions: public askings' words only (never a private one)
    trend: int = 0  # questions in the latest period minus the one before: > 0 growing
    pages: tuple[PageRef, ...] = ()  # the docs pages nearest to it
    community: int = 0  # approved community answers that cover it


class GapsSource(Protocol):
    """Knowledge gaps within ``scope``, largest first."""

    async def __call__(self, scope: Scope) -> Sequence[Gap]: ...
