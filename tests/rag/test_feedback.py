from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from rag.feedback import FeedbackStore
from rag.models import Answer, Citation


def answer(question: str, request_id: str, *, refused: bool = False) -> Answer:
    return Answer(question, f"answer to {question}", (Citation(1, "Page", "https://x/p"),), refused, (), request_id)


async def test_report_counts_questions_refusals_and_votes(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    a1 = await store.record_answer(answer("How do I install?", "r1"), 111)
    await store.record_answer(answer("how do I install? ", "r2"), 222)
    a3 = await store.record_answer(answer("Best pizza?", "r3", refused=True), 111)
    assert await store.vote(a1, 111, True)
    assert await store.vote(a3, 222, False)
    assert await store.vote(a3, 222, False)  # a second click by the same person replaces the first
    assert not await store.vote("missing", 111, True)

    report = await store.report()
    assert (report.answers, report.refused, report.helpful, report.not_helpful) == (3, 1, 1, 1)
    assert report.top_questions[0][1] == 2  # the two install questions are one question
    assert report.not_in_docs == [("Best pizza?", 1)]
    assert report.thumbs_down[0]["question"] == "Best pizza?"
    assert "Top questions" in report.as_text()
    store.close()


async def test_user_ids_are_never_stored_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    await store.record_answer(answer("q", "r1"), 987654321987654321)
    await store.vote("r1", 987654321987654321, True)
    store.close()
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "987654321987654321" not in dump


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    first = FeedbackStore(path)
    await first.record_answer(answer("q", "r1"), 1)
    salt_hash = first.hash_user(1)
    first.close()
    second = FeedbackStore(path)
    assert second.hash_user(1) == salt_hash
    assert await second.vote("r1", 1, False)
    assert (await second.report()).not_helpful == 1
    second.close()


GUILD, OTHER_GUILD = 100000000000000001, 100000000000000002


async def test_a_server_report_shows_only_that_servers_public_questions(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    public = await store.record_answer(answer("Public here?", "r1"), 1, guild_id=GUILD)
    secret = await store.record_answer(answer("Private here?", "r2"), 2, guild_id=GUILD, private=True)
    elsewhere = await store.record_answer(answer("Other server?", "r3"), 3, guild_id=OTHER_GUILD)
    direct = await store.record_answer(answer("In a DM?", "r4", refused=True), 4)
    assert await store.vote(public, 5, False, guild_id=GUILD)
    for answer_id, guild in ((secret, GUILD), (elsewhere, OTHER_GUILD), (direct, None)):
        assert await store.vote(answer_id, 6, False, guild_id=guild)

    report = await store.report(guild_id=GUILD)
    assert (report.answers, report.refused, report.helpful, report.not_helpful) == (1, 0, 0, 1)
    assert report.top_questions == [("Public here?", 1)]
    assert [row["question"] for row in report.thumbs_down] == ["Public here?"]
    text = report.as_text()
    for hidden in ("Private here?", "Other server?", "In a DM?"):
        assert hidden not in text

    everything = await store.report()
    assert (everything.answers, everything.not_helpful) == (4, 4), "the operator's report still sees all"
    store.close()


async def test_the_operator_report_lists_every_server_then_direct_messages(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    await store.record_answer(answer("dm", "r1"), 1)
    await store.record_answer(answer("small server", "r2"), 1, guild_id=OTHER_GUILD)
    secret = await store.record_answer(answer("private", "r3"), 1, guild_id=GUILD, private=True)
    await store.record_answer(answer("public", "r4"), 2, guild_id=GUILD)
    assert await store.vote(secret, 2, True, guild_id=GUILD)

    reports = await store.reports_by_server()
    assert [guild for guild, _ in reports] == [GUILD, OTHER_GUILD, None], "busiest server first, DMs last"
    busiest = reports[0][1]
    assert (busiest.answers, busiest.helpful) == (2, 1), "private questions are in the operator's view"
    assert sorted(q for q, _ in busiest.top_questions) == ["private", "public"]
    assert reports[2][1].top_questions == [("dm", 1)]
    store.close()


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE answers (id TEXT PRIMARY KEY, asked_at REAL NOT NULL, user_hash TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, sources TEXT NOT NULL, refused INTEGER NOT NULL, latency_ms REAL);
CREATE TABLE votes (answer_id TEXT NOT NULL REFERENCES answers(id), user_hash TEXT NOT NULL, helpful INTEGER NOT NULL,
    voted_at REAL NOT NULL, PRIMARY KEY (answer_id, user_hash));
INSERT INTO meta VALUES ('salt', 'old-salt');
INSERT INTO answers VALUES ('old', 1.0, 'h', 'asked before servers were recorded', 'a', '[]', 0, NULL);
INSERT INTO votes VALUES ('old', 'h', 0, 2.0);
"""


async def test_a_database_from_before_servers_were_recorded_is_migrated_safely(tmp_path: Path) -> None:
    """Old rows may have been DMs or private asks: they go to no server's report, only to the operator's."""
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    db.close()
    store = FeedbackStore(path)
    await store.record_answer(answer("new", "r1"), 1, guild_id=GUILD)
    assert (await store.report(guild_id=GUILD)).top_questions == [("new", 1)]
    assert (await store.report(guild_id=GUILD)).not_helpful == 0
    reports = dict(await store.reports_by_server())
    assert reports[None].top_questions == [("asked before servers were recorded", 1)]
    assert reports[None].not_helpful == 1
    store.close()
    private = sqlite3.connect(path).execute("SELECT private FROM answers WHERE id = 'old'").fetchone()
    assert private == (1,)


async def test_a_locked_database_does_not_block_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path, busy_timeout_s=10)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    recording = asyncio.ensure_future(store.record_answer(answer("q", "r1"), 1))
    for _ in range(5):  # if the write ran on the loop, it would be stuck in SQLite's busy wait right here
        await asyncio.sleep(0)
    assert not recording.done()
    holder.execute("COMMIT")
    holder.close()
    assert await recording == "r1"
    store.close()


async def test_a_locked_database_fails_the_write_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path, busy_timeout_s=0.01)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await store.record_answer(answer("q", "r1"), 1)
    holder.execute("ROLLBACK")
    holder.close()
    store.close()


def test_check_accepts_a_missing_or_healthy_database(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    assert FeedbackStore.check(path) is None
    store = FeedbackStore(path)
    assert FeedbackStore.check(path) is None, "healthy while the bot has it open"
    store.close()
    assert FeedbackStore.check(path) is None


def test_check_names_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    path.write_bytes(b"this is not SQLite\n" * 300)
    problem = FeedbackStore.check(path)
    assert problem is not None and "\n" not in problem
    assert str(path) in problem and "corrupt" in problem and "move it aside" in problem
    assert path.read_bytes() == b"this is not SQLite\n" * 300, "checking changes nothing"


def test_check_finds_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    db.close()
    data = bytearray(path.read_bytes())
    data[3 * 4096 : 3 * 4096 + 200] = b"\xff" * 200  # garbage over a b-tree page
    path.write_bytes(bytes(data))
    problem = FeedbackStore.check(path)
    assert problem is not None and str(path) in problem and "corrupt" in problem
