"""Durable record of questions, answers and votes (SQLite in the data dir), and the report built from it.

User ids are stored only as salted hashes: enough to count distinct people and
stop double votes, useless for identifying anyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from rag.models import Answer

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
    latency_ms REAL
);
CREATE TABLE IF NOT EXISTS votes (
    answer_id TEXT NOT NULL REFERENCES answers(id),
    user_hash TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    voted_at REAL NOT NULL,
    PRIMARY KEY (answer_id, user_hash)
);
CREATE INDEX IF NOT EXISTS answers_question ON answers(question);
"""


@dataclass(frozen=True)
class Report:
    answers: int
    refused: int
    helpful: int
    not_helpful: int
    top_questions: list[tuple[str, int]]
    not_in_docs: list[tuple[str, int]]
    thumbs_down: list[dict[str, object]]

    def as_text(self, limit: int = 10) -> str:
        lines = [
            f"{self.answers} answers ({self.refused} not in the docs); "
            f"feedback: {self.helpful} helpful, {self.not_helpful} not helpful.",
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


class FeedbackStore:
    """One SQLite file; calls run in a worker thread so the event loop never waits on disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._salt = self._load_salt()
        self._lock = asyncio.Lock()

    def _load_salt(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        if row:
            return row[0]
        salt = secrets.token_hex(16)
        self._db.execute("INSERT INTO meta(key, value) VALUES ('salt', ?)", (salt,))
        return salt

    def hash_user(self, user_id: int | str) -> str:
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()[:24]

    async def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._db.execute(sql, params).fetchall())

    async def record_answer(self, answer: Answer, user_id: int | str) -> str:
        """Store an answer; returns its id (used in the feedback buttons)."""
        answer_id = answer.request_id or secrets.token_hex(6)
        sources = json.dumps([{"title": c.title, "url": c.url} for c in answer.citations])
        await self._run(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                answer_id,
                time.time(),
                self.hash_user(user_id),
                answer.question,
                answer.text,
                sources,
                int(answer.refused),
                answer.timings_ms.get("total_ms"),
            ),
        )
        return answer_id

    async def vote(self, answer_id: str, user_id: int | str, helpful: bool) -> bool:
        """Record (or change) one person's vote; False if the answer is unknown."""
        if not await self._run("SELECT 1 FROM answers WHERE id = ?", (answer_id,)):
            return False
        await self._run(
            "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?)",
            (answer_id, self.hash_user(user_id), int(helpful), time.time()),
        )
        return True

    async def report(self, limit: int = 10) -> Report:
        def normalised(column: str) -> str:
            return f"lower(trim({column}))"

        totals = await self._run("SELECT count(*), coalesce(sum(refused), 0) FROM answers")
        votes = await self._run("SELECT coalesce(sum(helpful), 0), coalesce(sum(1 - helpful), 0) FROM votes")
        top = await self._run(
            f"SELECT min(question), count(*) AS n FROM answers GROUP BY {normalised('question')} "
            "ORDER BY n DESC, max(asked_at) DESC LIMIT ?",
            (limit,),
        )
        missing = await self._run(
            f"SELECT min(question), count(*) AS n FROM answers WHERE refused = 1 GROUP BY {normalised('question')} "
            "ORDER BY n DESC, max(asked_at) DESC LIMIT ?",
            (limit,),
        )
        down = await self._run(
            "SELECT a.question, a.answer, a.sources, count(*) AS n FROM votes v JOIN answers a ON a.id = v.answer_id "
            "WHERE v.helpful = 0 GROUP BY a.id ORDER BY n DESC, max(v.voted_at) DESC LIMIT ?",
            (limit,),
        )
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
        )

    def close(self) -> None:
        self._db.close()
