"""Community answers Docent may learn (issue 12): candidate Q&A pairs captured from trusted members' answers in
support threads, kept in SQLite until a maintainer approves, edits or rejects them. Approved pairs become the
``community`` source, indexed like any docs and cited as "Community answer by @name" with a link to the message.

Stored per pair: the question, the answer, a link to the message, the author's display name, the platform and
space, and salted hashes of the asker's and author's ids (so ``forget`` can find them without keeping the ids; the
salt is kept apart, see ``rag.private``).

What an admin approves is exactly what is indexed: the question is stored as answering cleans it, question and
answer are capped (``Limits``) so a review can show every word, and an approval is pinned to the ``version`` the
admin saw; a message stitched on after the review makes a new version, which must be reviewed again.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from rag.errors import BadQuestion, Changed, Unlearnable
from rag.pipeline import clean_question
from rag.private import private_file, user_salt
from rag.scope import COMMUNITY, community_source
from rag.settings import Settings
from rag.sqlite import SharedConnection, add_columns

FILE = "learned.sqlite3"
SOURCE_ID = COMMUNITY  # every community source: ``community`` and ``community:<space>`` (``rag.scope``)
Status = Literal["pending", "approved", "rejected"]
VERSION_CHARS = 32  # hex digits of a version: 128 bits, and short enough for a Discord button's custom id
# What an answer keeps of a message: newlines and tabs; no other control, zero-width or bidirectional characters,
# which could show a reviewer one text while another is indexed.
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learned (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    space TEXT,
    channel TEXT NOT NULL,
    thread TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    link TEXT NOT NULL,
    author TEXT NOT NULL,
    author_hash TEXT NOT NULL,
    asker_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decided_at REAL,
    private INTEGER
);
CREATE INDEX IF NOT EXISTS learned_thread ON learned(platform, channel, thread);
"""
_FIELDS = "id, platform, channel, thread, question, answer, link, author, created_at, status, space, private"
_ADDED_COLUMNS = {"learned": {"private": "INTEGER"}}  # newer than the first release: added to older databases


@dataclass(frozen=True)
class Limits:
    """What a pair may hold: a question as answering cleans and checks it (``retrieval.max_question_chars``), and
    an answer up to ``bot.learned_answer_chars``, so a review can show every word."""

    question_chars: int = 2000
    answer_chars: int = 2000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.retrieval.max_question_chars, settings.bot.learned_answer_chars)


def clean_answer(text: str, max_chars: int) -> str:
    """A member's answer as stored: hidden characters removed, within the cap; ``Unlearnable`` says why not."""
    text = _HIDDEN.sub("", text.replace("\r\n", "\n")).strip()
    if not text:
        raise Unlearnable("The answer is empty.")
    if len(text) > max_chars:
        raise Unlearnable(
            f"The answer is {len(text):,} characters long; Docent learns answers of up to {max_chars:,}, so that "
            "a review can show every word."
        )
    return text


def _clean_question(text: str, max_chars: int) -> str:
    """The question as answering cleans it, its length checked after cleaning (padding does not count)."""
    try:
        cleaned = clean_question(text, sys.maxsize)
    except BadQuestion:
        raise Unlearnable("The question is empty.") from None
    if len(cleaned) > max_chars:
        raise Unlearnable(
            f"The question is {len(cleaned):,} characters long; Docent keeps questions of up to {max_chars:,}."
        )
    return cleaned


@dataclass(frozen=True)
class Learned:
    id: int
    platform: str
    channel: str
    thread: str
    question: str
    answer: str
    link: str
    author: str
    created_at: float
    status: Status
    space: str | None = None
    private: bool | None = None  # captured in a private channel; None: before Docent recorded it (counts as private)

    @property
    def source_id(self) -> str:
        """The source it is indexed under: its server or workspace's (``rag.scope``)."""
        return community_source(self.platform, self.space, private=self.private)

    @property
    def title(self) -> str:
        return f"Community answer by @{self.author}"

    @property
    def version(self) -> str:
        """What an approval is pinned to: a SHA-256 of everything the page indexes (author, link, question,
        answer). A message stitched on after the review is a new version, and approving the old one is refused."""
        content = json.dumps([self.author, self.link, self.question, self.answer], ensure_ascii=False)
        return hashlib.sha256(content.encode()).hexdigest()[:VERSION_CHARS]

    def as_markdown(self) -> str:
        """What ``learned export`` writes: a page to move into the real docs."""
        return f"# {self.title}\n\n**Question:** {self.question}\n\n{self.answer}\n"

    def as_page(self) -> str:
        """What the ``community`` source indexes: the title in front matter, no heading, so citations link to the
        message itself rather than to a heading anchor inside it. PyYAML writes the front matter: a display name
        is anyone's text (a trailing backslash, quotes, a newline) and must stay inside its value."""
        front = yaml.safe_dump({"title": self.title}, allow_unicode=True, default_flow_style=False, width=1 << 16)
        return f"---\n{front}---\n\n**Question:** {self.question}\n\n{self.answer}\n"


class LearnedStore:
    """One SQLite file under ``data_dir``; every call runs in a worker thread."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.limits = limits
        private_file(path)
        self._connection = SharedConnection(path, timeout=5)
        self._db = self._connection.db  # set-up only; then every use goes through the connection (rag.sqlite)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete = ON")  # what forget deletes is zeroed, not left in free pages
        self._db.executescript(_SCHEMA)
        add_columns(self._db, _ADDED_COLUMNS)
        self._salt = user_salt(self._db, path)  # kept apart from the hashes (rag.private)

    def hash_user(self, platform: str, user_id: int | str) -> str:
        return hashlib.sha256(f"{self._salt}:{platform}:{user_id}".encode()).hexdigest()[:24]

    async def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return await self._connection.execute(sql, params)

    async def capture(
        self,
        *,
        platform: str,
        space: str | None,
        private: bool,
        channel: str,
        thread: str,
        question: str,
        answer: str,
        link: str,
        author: str,
        author_id: int | str,
        asker_id: int | str,
    ) -> int:
        """A trusted member answered in a thread: a new pending pair, or — when their previous message there is
        the newest pending pair — the same pair with this message stitched on (a new version of it: an approval of
        the version reviewed before is refused). A stitch that would pass the answer cap starts a new pair instead.
        ``private``: the channel is private (its answer is never shared beyond its server or workspace, see
        ``rag.scope``). The question is stored cleaned; ``Unlearnable`` when the question or the answer cannot be
        stored."""
        question = _clean_question(question, self.limits.question_chars)
        answer = clean_answer(answer, self.limits.answer_chars)
        author_hash = self.hash_user(platform, author_id)
        asker_hash = self.hash_user(platform, asker_id)

        def write(db: sqlite3.Connection) -> int:  # one transaction: two messages together must not both start a pair
            with db:
                db.execute("BEGIN IMMEDIATE")
                last = db.execute(
                    "SELECT id, author_hash, status, answer FROM learned WHERE platform = ? AND channel = ? "
                    "AND thread = ? ORDER BY id DESC LIMIT 1",
                    (platform, channel, thread),
                ).fetchone()
                stitched = f"{last[3]}\n\n{answer}" if last and last[1] == author_hash and last[2] == "pending" else ""
                if stitched and len(stitched) <= self.limits.answer_chars:
                    db.execute("UPDATE learned SET answer = ? WHERE id = ?", (stitched, last[0]))
                    return int(last[0])
                row = db.execute(
                    "INSERT INTO learned (platform, space, private, channel, thread, question, answer, link, author, "
                    "author_hash, asker_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        platform,
                        space,
                        private,
                        channel,
                        thread,
                        question,
                        answer,
                        link,
                        author,
                        author_hash,
                        asker_hash,
                        time.time(),
                    ),
                ).fetchone()
                return int(row[0])

        return await self._connection.run(write)

    async def list(
        self,
        status: Status | None = "pending",
        *,
        limit: int = 50,
        platform: str | None = None,
        space: str | None = None,
    ) -> list[Learned]:
        """Pairs by status (None: all), oldest first; with ``platform``/``space``, only that server's or
        workspace's (what its admins may see)."""
        where: list[str] = []
        params: list[object] = []
        for column, value in (("status", status), ("platform", platform), ("space", space)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._run(
            f"SELECT {_FIELDS} FROM learned {clause} ORDER BY id LIMIT ?",
            (*params, limit),
        )
        return [_learned(row) for row in rows]

    async def get(self, pair_id: int) -> Learned | None:
        rows = await self._run(
            f"SELECT {_FIELDS} FROM learned WHERE id = ?",
            (pair_id,),
        )
        return _learned(rows[0]) if rows else None

    async def decide(
        self, pair_id: int, status: Status, *, answer: str | None = None, version: str | None = None
    ) -> bool:
        """Approve (optionally with an edited answer, cleaned and capped like a captured one) or reject a pair;
        False if there is no such pair. With ``version`` (``Learned.version`` as the reviewer saw it) the decision
        holds only for that text: ``Changed`` if the pair is another version now."""
        if answer is not None:
            answer = clean_answer(answer, self.limits.answer_chars)

        def write(db: sqlite3.Connection) -> bool:  # one transaction: a message stitched on meanwhile is seen here
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(f"SELECT {_FIELDS} FROM learned WHERE id = ?", (pair_id,)).fetchone()
                if row is None:
                    return False
                if version is not None and _learned(row).version != version:
                    raise Changed(f"community answer {pair_id} is not version {version}")
                db.execute(
                    "UPDATE learned SET status = ?, decided_at = ?, answer = COALESCE(?, answer) WHERE id = ?",
                    (status, time.time(), answer, pair_id),
                )
                return True

        return await self._connection.run(write)

    async def delete(self, pair_id: int) -> bool:
        return bool(await self._run("DELETE FROM learned WHERE id = ? RETURNING id", (pair_id,)))

    async def pairs_of(self, platform: str, user_id: int | str) -> tuple[Learned, ...]:
        """The pairs a user asked or wrote (what ``forget`` would remove)."""
        user = self.hash_user(platform, user_id)
        rows = await self._run(f"SELECT {_FIELDS} FROM learned WHERE asker_hash = ? OR author_hash = ?", (user, user))
        return tuple(_learned(row) for row in rows)

    def source_ids(self) -> tuple[str, ...]:
        """Every source the pairs are indexed under (any status: a source whose answers were all rejected still
        has its pages pruned). Synchronous: for the indexer's source listing, run in a worker thread."""
        rows = self._connection.call(
            lambda db: db.execute("SELECT DISTINCT platform, space, private FROM learned").fetchall()
        )
        return tuple(
            sorted({community_source(platform, space, private=_flag(private)) for platform, space, private in rows})
        )

    async def forget(self, platform: str, user_id: int | str) -> int:
        """Remove every pair a user asked or wrote; returns how many."""
        user = self.hash_user(platform, user_id)
        rows = await self._run("DELETE FROM learned WHERE asker_hash = ? OR author_hash = ? RETURNING id", (user, user))
        return len(rows)

    def close(self) -> None:
        self._connection.close()


def _flag(value: object) -> bool | None:
    return None if value is None else bool(value)


def _learned(row: tuple[Any, ...]) -> Learned:
    """A row of ``_FIELDS`` as a pair."""
    pair_id, platform, channel, thread, question, answer, link, author, created_at, status, space, private = row
    return Learned(
        pair_id, platform, channel, thread, question, answer, link, author, created_at, status, space, _flag(private)
    )
