"""Durable record of questions, answers and votes (SQLite in the data dir), and the reports built from it.

User ids are stored only as salted hashes: enough to count distinct people, stop double votes and find a person's
rows for ``forget``. The salt is kept apart (``rag.private``): with it, anyone holding a member list could hash its
ids and match them, so a copy of this database alone must not include it. Each answer and vote carries its platform
("discord" or "slack"), the space it came from on that platform (a Discord server id or a Slack
workspace id; NULL for direct messages) and whether it was asked privately, so a space's report
shows only that space's public questions. A private question is counted in every figure and listed in none, not
even the operator's.

What became of a question (``rag.resolution``) is read from the answers, votes and solved marks with two more
tables: ``replies`` (which people, hashed, wrote in a question's thread: a refusal people took over) and
``followups`` (the one "Did this solve it?" a support thread may get, and whether it was asked, so a restart never
asks twice).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rag import tallies
from rag.models import Answer
from rag.private import private_file, user_salt
from rag.resolution import Resolution, resolution_sql, total
from rag.sqlite import SharedConnection, add_columns

T = TypeVar("T")
BUSY_TIMEOUT_S = 5.0  # a locked database fails a write after this long instead of waiting forever

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    user_hash TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources TEXT NOT NULL,
    refused INTEGER NOT NULL,
    latency_ms REAL,
    guild_id INTEGER,
    private INTEGER NOT NULL DEFAULT 1,
    platform TEXT NOT NULL DEFAULT 'discord'
);
CREATE TABLE IF NOT EXISTS votes (
    answer_id TEXT NOT NULL REFERENCES answers(id),
    user_hash TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    voted_at REAL NOT NULL,
    guild_id INTEGER,
    platform TEXT NOT NULL DEFAULT 'discord',
    PRIMARY KEY (answer_id, user_hash)
);
CREATE INDEX IF NOT EXISTS answers_question ON answers(question);
CREATE TABLE IF NOT EXISTS solved (
    platform TEXT NOT NULL,
    thread TEXT NOT NULL,
    channel TEXT,
    guild_id TEXT,
    solved_at REAL NOT NULL,
    PRIMARY KEY (platform, thread)
);
CREATE TABLE IF NOT EXISTS replies (
    platform TEXT NOT NULL,
    thread TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    replied_at REAL NOT NULL,
    PRIMARY KEY (platform, thread, user_hash)
);
CREATE TABLE IF NOT EXISTS followups (
    answer_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread TEXT NOT NULL,
    due_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    settled_at REAL,
    UNIQUE (platform, thread)
);
CREATE INDEX IF NOT EXISTS followups_due ON followups(state, due_at);
"""
# Indexes on columns an older database gains only in ``add_columns``: created after it.
_INDEXES = """
CREATE INDEX IF NOT EXISTS answers_thread ON answers(platform, thread, user_hash);
"""

# Columns added after the first release, in the order they were added. Rows written before
# `guild_id`/`private` have no known origin, so they get guild NULL and private 1: they might have been
# DMs or `/ask private:true`, and must never show up in any server's report. (The operator's CLI still
# lists them, under direct messages.) Rows written before `platform` predate Slack: they are Discord's.
#
# `guild_id` holds the space on either platform: a Discord server id (an integer) or a Slack workspace
# id such as "T0123ABC". The column's INTEGER affinity does not stop that: SQLite stores a value that
# does not read as a number as TEXT, unchanged (and one that does, such as "101", as the integer 101).
# So a Discord server and a Slack workspace may hold equal `guild_id`s: every query about one space
# filters on `platform` too.
_ADDED_COLUMNS = {
    "answers": {
        "guild_id": "INTEGER",
        "private": "INTEGER NOT NULL DEFAULT 1",
        "platform": "TEXT NOT NULL DEFAULT 'discord'",
        "channel": "TEXT",  # support channels: which channel asked (NULL before issue 12, and for mentions)
        "unasked": "INTEGER NOT NULL DEFAULT 0",  # a new question in an auto/always channel
        "thread": "TEXT",  # the thread it was answered in (support channels)
        # Issue 24: what a knowledge gap is told by. NULL/0 on rows written before (their gaps are refusals and 👎).
        "confidence": "REAL",  # retrieval's confidence (best dense cosine), what the refusal threshold compared
        "relevance": "REAL",  # the model's probability that the sources hold the answer, when it was asked
        "uncertain": "INTEGER NOT NULL DEFAULT 0",  # answered, but no sentence could be tied to a source
        "handed_off": "INTEGER NOT NULL DEFAULT 0",  # not posted: left to the support channel's helpers
    },
    "votes": {"guild_id": "INTEGER", "platform": "TEXT NOT NULL DEFAULT 'discord'"},
}

PLATFORMS = ("discord", "slack")  # the report lists platforms in this order


def _checked(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: expected one of {', '.join(PLATFORMS)}")
    return platform


def _space_id(platform: str, stored: object) -> int | str | None:
    """A ``guild_id`` as read back: a Discord server id is an integer, a Slack workspace id a string
    (even one SQLite stored as an integer because it looked like one)."""
    if stored is None:
        return None
    if platform == "slack":
        return str(stored)
    return stored if isinstance(stored, int) else str(stored)


@dataclass(frozen=True)
class Report:
    """Counts cover every question of the scope; the lists (top questions, not in the docs, not helpful) show only
    public ones: a private question (``/ask private``, a direct message, a row older than the private flag) is
    counted, never shown, even to the operator. ``resolution``: per channel (``rag.resolution``)."""

    answers: int
    refused: int
    helpful: int
    not_helpful: int
    top_questions: list[tuple[str, int]]
    not_in_docs: list[tuple[str, int]]
    thumbs_down: list[dict[str, object]]
    resolution: list[Resolution] = field(default_factory=list)

    @property
    def resolved(self) -> Resolution:
        """Every channel's questions together."""
        return total(self.resolution)

    def as_text(self, limit: int = 10) -> str:
        lines = [
            f"{self.answers} answers ({self.refused} not in the docs); "
            f"feedback: {self.helpful} helpful, {self.not_helpful} not helpful.",
            f"Resolution: {self.resolved.line()}.",
            *(
                f"  {'#' + row.channel if row.channel else 'no channel'}: {row.line()}"
                for row in self.resolution
                if any(r.channel for r in self.resolution)
            ),
            "",
            "Top questions:",
            *(f"  {count}× {q}" for q, count in self.top_questions[:limit]),
            "",
            "Asked but not in the docs:",
            *(f"  {count}× {q}" for q, count in self.not_in_docs[:limit]),
            "",
            "Marked not helpful:",
            *(f"  {row['question']}  →  {str(row['answer'])[:120]}" for row in self.thumbs_down[:limit]),
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class View:
    """Whose figures a count or a list is for. ``View.of_space(platform, id)``: that server's or workspace's
    admins, who see its public questions only. ``View(platform, space)``: the operator, who sees every question —
    private ones and direct messages included, counted but never shown — narrowed to a platform or a space (on
    either platform, unless ``platform`` says which) when given."""

    platform: str | None = None
    space: int | str | None = None
    public_only: bool = False

    @classmethod
    def of_space(cls, platform: str, space: int | str) -> View:
        return cls(_checked(platform), space, public_only=True)

    def condition(self, since: float | None = None) -> tuple[str, dict[str, object]]:
        """A condition on ``answers a`` (asked at ``since`` or later, when given), with its named parameters."""
        parts: list[str] = []
        params: dict[str, object] = {}
        if self.platform is not None:
            parts.append("a.platform = :view_platform")
            params["view_platform"] = _checked(self.platform)
        if self.space is not None:
            # Bound as given, compared with the column's INTEGER affinity: "101" finds server 101.
            parts.append("a.guild_id = :view_space")
            params["view_space"] = self.space
        if self.public_only:
            parts.append("a.private = 0")
        if since is not None:
            parts.append("a.asked_at >= :view_since")
            params["view_since"] = since
        return " AND ".join(parts) or "1", params


@dataclass(frozen=True)
class GapQuestion:
    """A question that shows a gap in the docs (``FeedbackStore.gap_questions``); ``reasons`` are among
    ``GAP_REASONS``. A private question's text is here for clustering only: it is never shown."""

    id: str
    question: str
    asked_at: float
    private: bool
    reasons: tuple[str, ...]


GAP_REASONS = ("refused", "handed_off", "voted_down", "low_confidence", "uncertain")


@dataclass(frozen=True)
class DueFollowUp:
    """A "Did this solve it?" to post now: the answer it follows, and where (``FeedbackStore.due_followups``)."""

    answer_id: str
    platform: str
    space: int | str | None
    channel: str
    thread: str


def support_text(stats: list[dict[str, Any]]) -> str:
    """Per support channel: new questions, how many were answered, handed off and marked solved."""
    if not stats:
        return ""
    lines = ["", "", "Support channels (questions nobody asked Docent):"]
    for row in stats:
        lines.append(
            f"  #{row['channel']}: {row['questions']} question{'' if row['questions'] == 1 else 's'}, "
            f"{row['answered']} answered, "
            f"{row['handed_off']} handed off, {row['solved']} solved"
        )
    return "\n".join(lines)


class FeedbackStore:
    """One SQLite file; calls run in a worker thread so the event loop never waits on disk or a lock.

    Write failures (a locked or full database) propagate as ``sqlite3`` errors; callers treat
    recording as best effort and log them.
    """

    def __init__(
        self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S, clock: Callable[[], float] = time.time
    ) -> None:
        """``clock``: the time every row is stamped with (tests set it; reports compare with it too)."""
        private_file(path)
        self._path = path
        self._clock = clock
        self._connection = SharedConnection(path, timeout=busy_timeout_s)
        self._db = self._connection.db  # set-up only; then every use goes through ``_run`` (rag.sqlite)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete = ON")  # what forget deletes is zeroed, not left in free pages
        self._db.executescript(_SCHEMA)
        add_columns(self._db, _ADDED_COLUMNS)
        tallies.prepare(self._db)  # indexes and citation counts for the dashboard's reads
        self._db.executescript(_INDEXES)
        self._salt = user_salt(self._db, path)

    @staticmethod
    def check(path: Path) -> str | None:
        """None if ``path`` is absent or a healthy SQLite database, else the problem in one line.

        Run before any model loads, so a damaged file is reported in a second rather than after a minute of
        start-up. Read-only: checking must never create or repair anything.
        """
        if not path.exists():
            return None
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
            try:
                rows = db.execute("PRAGMA quick_check").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                return None  # in use by another process: not evidence of damage
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                return f"feedback database {path} is corrupt: {exc}; move it aside or restore a backup"
            return f"feedback database {path} cannot be read: {exc}"
        problems = [str(row[0]) for row in rows if row and row[0] != "ok"]
        if problems:
            detail = problems[0].replace("\n", " ")
            return f"feedback database {path} is corrupt: {detail}; move it aside or restore a backup"
        return None

    def hash_user(self, user_id: int | str, platform: str = "discord") -> str:
        """Discord ids hash as they always have (so votes from before Slack still dedupe); other platforms'
        ids are prefixed with the platform, so a Slack user never shares a hash with a Discord user."""
        person = user_id if _checked(platform) == "discord" else f"{platform}:{user_id}"
        return hashlib.sha256(f"{self._salt}:{person}".encode()).hexdigest()[:24]

    async def _run(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[tuple[Any, ...]]:
        return await self._connection.execute(sql, params)

    async def record_answer(
        self,
        answer: Answer,
        user_id: int | str,
        *,
        guild_id: int | str | None = None,
        private: bool = False,
        platform: str = "discord",
        channel: str | None = None,
        thread: str | None = None,
        unasked: bool = False,
        handed_off: bool = False,
    ) -> str:
        """Store an answer asked on ``platform`` in ``guild_id`` (a Discord server id or a Slack workspace id;
        None: a DM); returns its id (used in the feedback buttons). Support channels also give the channel, the
        thread and whether nobody asked Docent; ``handed_off``: it was not posted but left to the helpers."""
        user_hash = self.hash_user(user_id, platform)  # checks the platform before anything is written
        answer_id = answer.request_id or secrets.token_hex(6)
        sources = json.dumps([{"title": c.title, "url": c.url} for c in answer.citations])
        await self._run(
            "INSERT OR REPLACE INTO answers "
            "(id, asked_at, user_hash, question, answer, sources, refused, latency_ms, guild_id, private, platform, "
            "channel, thread, unasked, confidence, relevance, uncertain, handed_off) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                answer_id,
                self._clock(),
                user_hash,
                answer.question,
                answer.text,
                sources,
                int(answer.refused),
                answer.timings_ms.get("total_ms"),
                guild_id,
                int(private),
                platform,
                channel,
                thread,
                int(unasked),
                answer.confidence,
                answer.relevance,
                int(answer.uncertain),
                int(handed_off),
            ),
        )
        return answer_id

    async def solved(self, platform: str, thread: str, *, channel: str | None, guild_id: int | str | None) -> bool:
        """Mark a support thread solved; False if it already was."""
        rows = await self._run(
            "INSERT OR IGNORE INTO solved (platform, thread, channel, guild_id, solved_at) VALUES (?, ?, ?, ?, ?) "
            "RETURNING 1",
            (_checked(platform), thread, channel, None if guild_id is None else str(guild_id), self._clock()),
        )
        return bool(rows)

    async def channel_stats(self, platform: str, guild_id: int | str | None = None) -> list[dict[str, Any]]:
        """Per support channel: new questions considered, answered, handed off, solved (busiest first)."""
        scope = "AND a.guild_id = ?" if guild_id is not None else ""
        params: tuple[object, ...] = (_checked(platform), *(() if guild_id is None else (guild_id,)))
        rows = await self._run(
            "SELECT a.channel, count(*), sum(1 - a.refused), sum(a.refused), "
            "(SELECT count(*) FROM solved s WHERE s.platform = a.platform AND s.channel = a.channel) "
            f"FROM answers a WHERE a.platform = ? AND a.unasked = 1 AND a.channel IS NOT NULL {scope} "
            "GROUP BY a.channel ORDER BY count(*) DESC",
            params,
        )
        return [
            {
                "channel": c,
                "questions": int(n),
                "answered": int(ok or 0),
                "handed_off": int(off or 0),
                "solved": int(sv),
            }
            for c, n, ok, off, sv in rows
        ]

    async def vote(
        self,
        answer_id: str,
        user_id: int | str,
        helpful: bool,
        *,
        guild_id: int | str | None = None,
        platform: str = "discord",
    ) -> bool:
        """Record (or change) one person's vote, cast on ``platform`` in ``guild_id`` (None: a DM);
        False if the answer is unknown."""
        user_hash = self.hash_user(user_id, platform)
        if not await self._run("SELECT 1 FROM answers WHERE id = ?", (answer_id,)):
            return False
        await self._run(
            "INSERT OR REPLACE INTO votes (answer_id, user_hash, helpful, voted_at, guild_id, platform) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (answer_id, user_hash, int(helpful), self._clock(), guild_id, platform),
        )
        return True

    async def report(self, limit: int = 10, *, guild_id: int | str | None = None, platform: str = "discord") -> Report:
        """With ``guild_id``: that space's public questions on ``platform`` only (never private ones, DMs or
        the other platform's), for its admins. Without: everything on every platform, for the operator."""
        _checked(platform)
        if guild_id is None:
            return await self._report(limit, "1", "1", {})
        return await self._report(
            limit,
            "a.platform = :platform AND a.guild_id = :guild AND a.private = 0",
            "v.platform = :platform AND v.guild_id = :guild",
            {"platform": platform, "guild": guild_id},
        )

    async def reports_by_server(
        self, limit: int = 10, *, platform: str | None = None, space: str | None = None
    ) -> list[tuple[str, int | str | None, Report]]:
        """The operator's view: (platform, space, report) for each Discord server, then Discord's direct
        messages (space None), then each Slack workspace, then Slack's direct messages; busiest space first
        within a platform. Private questions are included: this is only for whoever runs the bot.

        ``platform`` keeps one platform; ``space`` keeps the space with that id (on either platform, unless
        ``platform`` says which). A space id comes back as an int for Discord, a str for Slack."""
        conditions: list[str] = []
        params: dict[str, object] = {}
        if platform is not None:
            conditions.append("platform = :platform")
            params["platform"] = _checked(platform)
        if space is not None:
            # Bound as text, compared with the column's INTEGER affinity: "101" finds server 101.
            conditions.append("guild_id = :space")
            params["space"] = space
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(PLATFORMS))
        rows = await self._run(
            f"SELECT platform, guild_id FROM answers {where} GROUP BY platform, guild_id "
            f"ORDER BY CASE platform {order} ELSE {len(PLATFORMS)} END, platform, "
            "guild_id IS NULL, count(*) DESC, guild_id",
            params,
        )
        reports: list[tuple[str, int | str | None, Report]] = []
        for place, guild in rows:
            report = await self._report(
                limit, "a.platform = :platform AND a.guild_id IS :guild", "1", {"platform": place, "guild": guild}
            )
            reports.append((str(place), _space_id(str(place), guild), report))
        return reports

    async def _report(self, limit: int, answers_in: str, votes_in: str, scope: dict[str, object]) -> Report:
        """A report over the answers matching ``answers_in`` (a condition on ``a``) and the votes on them
        matching ``votes_in`` (a condition on ``v``); ``scope`` holds their named parameters."""

        def normalised(column: str) -> str:
            return f"lower(trim({column}))"

        params = {**scope, "limit": limit}
        voted = f"FROM votes v JOIN answers a ON a.id = v.answer_id WHERE {answers_in} AND {votes_in}"
        # Private askings are counted with the public askings of the same question, whose words are shown; a question
        # asked only privately is never listed (the dashboard's lists count the same way: rag.stats).
        public_words = "min(CASE WHEN a.private = 0 THEN a.question END)"
        asked_publicly = "HAVING max(a.private = 0)"
        totals = await self._run(
            f"SELECT count(*), coalesce(sum(a.refused), 0) FROM answers a WHERE {answers_in}", params
        )
        votes = await self._run(f"SELECT coalesce(sum(v.helpful), 0), coalesce(sum(1 - v.helpful), 0) {voted}", params)
        top = await self._run(
            f"SELECT {public_words}, count(*) AS n FROM answers a WHERE {answers_in} "
            f"GROUP BY {normalised('a.question')} {asked_publicly} ORDER BY n DESC, max(a.asked_at) DESC LIMIT :limit",
            params,
        )
        missing = await self._run(
            f"SELECT {public_words}, count(*) AS n FROM answers a WHERE a.refused = 1 AND {answers_in} "
            f"GROUP BY {normalised('a.question')} {asked_publicly} ORDER BY n DESC, max(a.asked_at) DESC LIMIT :limit",
            params,
        )
        down = await self._run(
            f"SELECT a.question, a.answer, a.sources, count(*) AS n {voted} AND a.private = 0 AND v.helpful = 0 "
            "GROUP BY a.id ORDER BY n DESC, max(v.voted_at) DESC LIMIT :limit",
            params,
        )
        resolution = await self._resolution(answers_in, scope)
        return Report(
            answers=int(totals[0][0]),
            refused=int(totals[0][1]),
            helpful=int(votes[0][0]),
            not_helpful=int(votes[0][1]),
            top_questions=[(str(q), int(n)) for q, n in top],
            not_in_docs=[(str(q), int(n)) for q, n in missing],
            thumbs_down=[
                {"question": q, "answer": a, "sources": json.loads(str(s)), "votes": int(n)} for q, a, s, n in down
            ],
            resolution=resolution,
        )

    async def _resolution(self, answers_in: str, scope: dict[str, object]) -> list[Resolution]:
        rows = await self._run(resolution_sql(answers_in), scope)
        return [
            Resolution.of(str(p), _space_id(str(p), g), None if c is None else str(c), int(r), int(h), int(u))
            for p, g, c, r, h, u in rows
        ]

    async def resolution(
        self, *, platform: str | None = None, space: int | str | None = None, since: float | None = None
    ) -> list[Resolution]:
        """The operator's resolution counts (private questions included) per platform, space and channel, busiest
        first; ``platform``, ``space`` and ``since`` (a time) narrow them. What /metrics exports."""
        view = View(platform, space)
        condition, params = view.condition(since)
        return await self._resolution(condition, params)

    async def forget(self, user_id: int | str, platform: str = "discord") -> int:
        """Remove a user from every figure: their questions (answers' rows) and votes, and the replies they wrote in
        others' threads; with their questions go what hangs on them: the votes on them, the solved marks, people's
        replies and the follow-ups of their threads (a thread someone else also asked in keeps its mark and
        replies). Returns how many of their own rows went (questions, votes, replies)."""
        user = self.hash_user(user_id, platform)
        place = _checked(platform)

        def forget(db: sqlite3.Connection) -> int:  # one transaction: no figure is ever half forgotten
            with db:
                db.execute("BEGIN IMMEDIATE")
                votes = db.execute("DELETE FROM votes WHERE user_hash = ? RETURNING 1", (user,)).fetchall()
                replies = db.execute(
                    "DELETE FROM replies WHERE user_hash = ? AND platform = ? RETURNING 1", (user, place)
                ).fetchall()
                asked = db.execute(
                    "DELETE FROM answers WHERE user_hash = ? AND platform = ? RETURNING id, thread", (user, place)
                ).fetchall()
                for answer_id, thread in asked:
                    db.execute("DELETE FROM votes WHERE answer_id = ?", (answer_id,))
                    db.execute("DELETE FROM followups WHERE answer_id = ?", (answer_id,))
                    others = (
                        thread is not None
                        and db.execute(
                            "SELECT 1 FROM answers WHERE platform = ? AND thread = ? LIMIT 1", (place, thread)
                        ).fetchone()
                    )
                    if thread is not None and not others:
                        db.execute("DELETE FROM solved WHERE platform = ? AND thread = ?", (place, thread))
                        db.execute("DELETE FROM replies WHERE platform = ? AND thread = ?", (place, thread))
                        db.execute("DELETE FROM followups WHERE platform = ? AND thread = ?", (place, thread))
                return len(votes) + len(replies) + len(asked)

        return await self._connection.run(forget)

    # -- what happens in a question's thread (issue 24) ---------------------------------------------------------

    async def person_replied(self, platform: str, thread: str, user_id: int | str) -> bool:
        """A person other than the asker wrote in ``thread``: a refused or handed-off question there is now handed
        off to people (``rag.resolution``). Kept once per person and thread, hashed; False if already kept."""
        rows = await self._run(
            "INSERT OR IGNORE INTO replies (platform, thread, user_hash, replied_at) VALUES (?, ?, ?, ?) RETURNING 1",
            (_checked(platform), thread, self.hash_user(user_id, platform), self._clock()),
        )
        return bool(rows)

    async def asked_in(self, platform: str, thread: str, user_id: int | str) -> bool:
        """Whether ``user_id`` asked a question recorded in ``thread`` (who may mark it solved, after a restart)."""
        rows = await self._run(
            "SELECT 1 FROM answers WHERE platform = ? AND thread = ? AND user_hash = ? LIMIT 1",
            (_checked(platform), thread, self.hash_user(user_id, platform)),
        )
        return bool(rows)

    async def schedule_followup(
        self, answer_id: str, *, platform: str, channel: str, thread: str, due_at: float
    ) -> bool:
        """Ask "Did this solve it?" in ``thread`` at ``due_at`` (``due_followups``); one per thread, ever: False if
        the thread has one already."""
        rows = await self._run(
            "INSERT OR IGNORE INTO followups (answer_id, platform, channel, thread, due_at) VALUES (?, ?, ?, ?, ?) "
            "RETURNING 1",
            (answer_id, _checked(platform), channel, thread, due_at),
        )
        return bool(rows)

    async def asker_answered(self, platform: str, thread: str, user_id: int | str) -> bool:
        """The asker wrote or reacted in their thread: its follow-up, still pending, is not needed."""
        rows = await self._run(
            "UPDATE followups SET state = 'not needed', settled_at = ? WHERE platform = ? AND thread = ? "
            "AND state = 'pending' AND answer_id IN (SELECT id FROM answers WHERE platform = ? AND user_hash = ?) "
            "RETURNING 1",
            (self._clock(), _checked(platform), thread, platform, self.hash_user(user_id, platform)),
        )
        return bool(rows)

    async def due_followups(
        self, platforms: tuple[str, ...] = PLATFORMS, *, now: float | None = None
    ) -> list[DueFollowUp]:
        """The follow-ups of ``platforms`` due by ``now`` (default: the store's clock) whose asker has not answered
        yet. One whose thread was marked solved, whose asker voted on an answer there or asked again in it is
        settled as not needed instead."""
        now = self._clock() if now is None else now
        places = tuple(_checked(p) for p in platforms)
        marks = ", ".join("?" * len(places))

        def due(db: sqlite3.Connection) -> list[DueFollowUp]:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "UPDATE followups SET state = 'not needed', settled_at = ? WHERE state = 'pending' AND answer_id "
                    "NOT IN (SELECT id FROM answers)",
                    (now,),
                )
                rows = db.execute(
                    "SELECT f.answer_id, f.platform, a.guild_id, f.channel, f.thread, "
                    "EXISTS (SELECT 1 FROM solved s WHERE s.platform = f.platform AND s.thread = f.thread) "
                    "OR EXISTS (SELECT 1 FROM votes v JOIN answers b ON b.id = v.answer_id "
                    "  WHERE v.user_hash = a.user_hash AND b.platform = f.platform "
                    "  AND (b.id = a.id OR b.thread = f.thread)) "
                    "OR EXISTS (SELECT 1 FROM answers b WHERE b.platform = f.platform AND b.thread = f.thread "
                    "  AND b.user_hash = a.user_hash AND b.id != a.id) "
                    "FROM followups f JOIN answers a ON a.id = f.answer_id "
                    f"WHERE f.state = 'pending' AND f.due_at <= ? AND f.platform IN ({marks}) ORDER BY f.due_at",
                    (now, *places),
                ).fetchall()
                out: list[DueFollowUp] = []
                for answer_id, platform, guild, channel, thread, answered in rows:
                    if answered:
                        db.execute(
                            "UPDATE followups SET state = 'not needed', settled_at = ? WHERE answer_id = ?",
                            (now, answer_id),
                        )
                    else:
                        out.append(DueFollowUp(answer_id, platform, _space_id(platform, guild), channel, thread))
                return out

        return await self._connection.run(due)

    async def claim_followup(self, answer_id: str) -> bool:
        """Take a due follow-up to post it: True once, ever (a restart, a second process, never ask twice)."""
        rows = await self._run(
            "UPDATE followups SET state = 'asked', settled_at = ? WHERE answer_id = ? AND state = 'pending' "
            "RETURNING 1",
            (self._clock(), answer_id),
        )
        return bool(rows)

    async def gap_questions(
        self, view: View, *, since: float | None = None, low_confidence: float = 0.0, limit: int = 5000
    ) -> list[GapQuestion]:
        """The questions of ``view`` (asked since ``since``) that show a gap in the docs, newest first, at most
        ``limit``: refused, handed off, voted 👎 (by anyone), answered at a retrieval confidence below
        ``low_confidence``, or answered without a sentence tied to a source."""
        condition, params = view.condition(since)
        rows = await self._run(
            "SELECT a.id, a.question, a.asked_at, a.private, a.refused, a.handed_off, "
            "EXISTS (SELECT 1 FROM votes v WHERE v.answer_id = a.id AND v.helpful = 0) AS down, "
            "coalesce(a.confidence < :low, 0) AS low, a.uncertain "
            f"FROM answers a WHERE {condition} "
            "AND (a.refused = 1 OR a.handed_off = 1 OR a.uncertain = 1 OR coalesce(a.confidence < :low, 0) "
            "OR EXISTS (SELECT 1 FROM votes v WHERE v.answer_id = a.id AND v.helpful = 0)) "
            "ORDER BY a.asked_at DESC, a.id LIMIT :limit",
            {**params, "low": low_confidence, "limit": limit},
        )
        return [
            GapQuestion(
                str(answer_id),
                str(question),
                float(asked_at),
                bool(private),
                tuple(reason for reason, flag in zip(GAP_REASONS, flags, strict=True) if flag),
            )
            for answer_id, question, asked_at, private, *flags in rows
        ]

    def close(self) -> None:
        self._connection.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in the worker thread, one call at a time: for figures read elsewhere (``rag.stats``, the
        dashboard's), never for writes."""
        return await self._connection.run(fn)
