"""The feedback database's tally of cited pages follows every write, and an older database gets its own."""

from __future__ import annotations

import collections
import contextlib
import json
import sqlite3
from pathlib import Path

from rag.feedback import FeedbackStore
from rag.models import Answer, Citation

A, B = Citation(1, "Install", "https://docs/install"), Citation(2, "Search", "https://docs/search")
LOCAL = Citation(3, "Local page", "")  # a folder source without base_url: told by its title
SECTION = Citation(4, "Install › On Linux", "https://docs/install#on-linux")  # a section of Install


def from_json(path: Path) -> collections.Counter[tuple[str, str, object]]:
    """What the tally must hold, counted from every answer's JSON: pages per space, once per answer."""
    counted: collections.Counter[tuple[str, str, object]] = collections.Counter()
    with contextlib.closing(sqlite3.connect(path)) as db:
        for sources, refused, platform, guild in db.execute("SELECT sources, refused, platform, guild_id FROM answers"):
            if not refused:
                cited = [(s["url"].split("#")[0], s["title"].split(" › ")[0]) for s in json.loads(sources)]
                pages = {url or f"title:{title}" for url, title in cited}
                counted.update((page, platform, "" if guild is None else guild) for page in pages)
    return counted


def tally(path: Path) -> collections.Counter[tuple[str, str, object]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT page, platform, guild_id, answers FROM cited").fetchall()
    return collections.Counter({(page, platform, guild): n for page, platform, guild, n in rows})


def answer(request_id: str, *citations: Citation, refused: bool = False) -> Answer:
    return Answer("q", "a", citations, refused, request_id=request_id)


async def test_the_tally_follows_answers_written_replaced_and_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    await store.record_answer(answer("r1", A, B), 1, guild_id=10)
    await store.record_answer(answer("r2", A, SECTION, LOCAL), 2, guild_id=10)  # a page cited twice counts once
    await store.record_answer(answer("r3", A, refused=True), 3, guild_id=10)  # closest pages: not citations
    await store.record_answer(answer("r4", B), 1, platform="slack", guild_id="T1")
    await store.record_answer(answer("r5", B), 4)  # a direct message
    assert tally(path) == from_json(path)
    assert tally(path)[("https://docs/install", "discord", 10)] == 2
    assert tally(path)[("title:Local page", "discord", 10)] == 1

    await store.record_answer(answer("r1", LOCAL), 1, guild_id=10)  # the same id again: replaced
    assert tally(path) == from_json(path)
    assert tally(path)[("https://docs/search", "discord", 10)] == 0, "a page no answer cites leaves the tally"

    assert await store.forget(1) == 1
    assert await store.forget(1, "slack") == 1
    assert tally(path) == from_json(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # a change by hand, as an operator might make
        db.execute("UPDATE answers SET refused = 1 WHERE id = 'r2'")
    assert tally(path) == from_json(path) == {("https://docs/search", "discord", ""): 1}
    store.close()


async def test_an_older_database_gets_its_citations_tallied(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    for n in range(5):
        await store.record_answer(answer(f"r{n}", A if n % 2 else B, LOCAL), n, guild_id=10)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # as a release before the tally left it
        for trigger in ("answers_cite", "answers_replace", "answers_change", "answers_uncite"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("DROP TABLE cited")
        db.execute("DROP INDEX answers_words")

    store = FeedbackStore(path)
    assert tally(path) == from_json(path) and sum(tally(path).values()) == 10
    await store.record_answer(answer("r9", A), 9, guild_id=10)
    assert tally(path) == from_json(path)
    report = await store.report()
    assert report.answers == 6 and report.top_questions == [("q", 6)], "the report reads as before"
    store.close()
