from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

from rag.feedback import FeedbackStore, View, support_text
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
    assert [(platform, guild) for platform, guild, _ in reports] == [
        ("discord", GUILD),
        ("discord", OTHER_GUILD),
        ("discord", None),
    ], "busiest server first, DMs last"
    busiest = reports[0][2]
    assert (busiest.answers, busiest.helpful) == (2, 1), "private questions are counted in the operator's view"
    assert busiest.top_questions == [("public", 1)], "and never shown, not even to the operator"
    assert "private" not in busiest.as_text()
    assert reports[2][2].top_questions == [("dm", 1)]
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
    reports = {(platform, guild): report for platform, guild, report in await store.reports_by_server()}
    assert reports["discord", None].answers == 1, "counted for the operator"
    assert reports["discord", None].top_questions == [], "but, maybe private, never shown"
    assert reports["discord", None].not_helpful == 1 and reports["discord", None].thumbs_down == []
    store.close()
    private = sqlite3.connect(path).execute("SELECT private, platform FROM answers WHERE id = 'old'").fetchone()
    assert private == (1, "discord")


# The schema just before Slack: servers and privacy recorded, but no platform column.
SCHEMA_BEFORE_SLACK = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE answers (id TEXT PRIMARY KEY, asked_at REAL NOT NULL, user_hash TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, sources TEXT NOT NULL, refused INTEGER NOT NULL, latency_ms REAL, guild_id INTEGER,
    private INTEGER NOT NULL DEFAULT 1);
CREATE TABLE votes (answer_id TEXT NOT NULL REFERENCES answers(id), user_hash TEXT NOT NULL, helpful INTEGER NOT NULL,
    voted_at REAL NOT NULL, guild_id INTEGER, PRIMARY KEY (answer_id, user_hash));
INSERT INTO meta VALUES ('salt', 'old-salt');
"""


async def test_a_database_from_before_slack_keeps_its_rows_as_discord_rows(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_BEFORE_SLACK)
        db.execute(
            "INSERT INTO answers VALUES ('old', 1.0, 'h', 'asked in a server', 'a', '[]', 0, NULL, ?, 0)", (GUILD,)
        )
        voter = hashlib.sha256(b"old-salt:7").hexdigest()[:24]  # how Discord user 7 was always hashed
        db.execute("INSERT INTO votes VALUES ('old', ?, 0, 2.0, ?)", (voter, GUILD))
    db.close()
    store = FeedbackStore(path)
    report = await store.report(guild_id=GUILD)
    assert (report.top_questions, report.not_helpful) == ([("asked in a server", 1)], 1)
    assert (await store.report(guild_id=GUILD, platform="slack")).answers == 0
    assert await store.vote("old", 7, True, guild_id=GUILD), "the same Discord user changes their old vote"
    assert (await store.report(guild_id=GUILD)).helpful == 1 and (await store.report()).not_helpful == 0
    assert [(platform, guild) for platform, guild, _ in await store.reports_by_server()] == [("discord", GUILD)]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT platform FROM answers").fetchall() == [("discord",)]
        assert db.execute("SELECT platform FROM votes").fetchall() == [("discord",)]
    db.close()


TEAM = "T0123ABC"


async def test_slack_and_discord_never_see_each_others_rows(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    on_discord = await store.record_answer(answer("Asked on Discord?", "r1"), 1, guild_id=GUILD)
    on_slack = await store.record_answer(answer("Asked on Slack?", "r2"), "U1", guild_id=TEAM, platform="slack")
    # A Discord server and a Slack workspace whose ids are equal as text are still two different places.
    await store.record_answer(answer("Discord 101?", "r3"), 1, guild_id=101)
    await store.record_answer(answer("Slack 101?", "r4"), "U1", guild_id="101", platform="slack")
    await store.record_answer(answer("Slack DM?", "r5"), "U1", platform="slack")
    assert await store.vote(on_discord, 2, False, guild_id=GUILD)
    assert await store.vote(on_slack, "U2", True, guild_id=TEAM, platform="slack")

    slack = await store.report(guild_id=TEAM, platform="slack")
    assert (slack.answers, slack.helpful, slack.not_helpful) == (1, 1, 0)
    assert slack.top_questions == [("Asked on Slack?", 1)]
    discord = await store.report(guild_id=GUILD)
    assert (discord.answers, discord.helpful, discord.not_helpful) == (1, 0, 1)
    assert discord.top_questions == [("Asked on Discord?", 1)]
    assert (await store.report(guild_id=TEAM)).answers == 0, "a Slack team id is no Discord server"
    assert (await store.report(guild_id=GUILD, platform="slack")).answers == 0
    assert (await store.report(guild_id=101)).top_questions == [("Discord 101?", 1)]
    assert (await store.report(guild_id="101", platform="slack")).top_questions == [("Slack 101?", 1)]
    assert (await store.report()).answers == 5, "the operator's report still sees all"

    reports = await store.reports_by_server()
    assert [(platform, space) for platform, space, _ in reports] == [
        ("discord", 101),
        ("discord", GUILD),
        ("slack", "101"),
        ("slack", TEAM),
        ("slack", None),
    ], "per platform: busiest first (ties by id), direct messages last"
    assert reports[2][2].top_questions == [("Slack 101?", 1)]
    assert reports[4][2].top_questions == [("Slack DM?", 1)]

    only_slack = await store.reports_by_server(platform="slack")
    assert [space for _, space, _ in only_slack] == ["101", TEAM, None]
    by_space = await store.reports_by_server(space="101")
    assert [(platform, space) for platform, space, _ in by_space] == [("discord", 101), ("slack", "101")]
    assert [r.top_questions for _, _, r in await store.reports_by_server(platform="discord", space="101")] == [
        [("Discord 101?", 1)]
    ]
    assert [space for _, space, _ in await store.reports_by_server(platform="slack", space=TEAM)] == [TEAM]
    assert await store.reports_by_server(platform="discord", space=TEAM) == []
    store.close()


async def test_votes_carry_their_platform_and_users_are_hashed_per_platform(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    assert store.hash_user(7) == store.hash_user(7, platform="discord"), "Discord hashes unchanged: old votes dedupe"
    assert store.hash_user(7) != store.hash_user(7, platform="slack")
    assert store.hash_user("U7") != store.hash_user("U7", platform="slack")
    asked = await store.record_answer(answer("q", "r1"), "U7", guild_id=TEAM, platform="slack")
    assert await store.vote(asked, "U7", False, guild_id=TEAM, platform="slack")
    assert await store.vote(asked, "U7", True, guild_id=TEAM, platform="slack")  # replaces the first
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT platform, guild_id FROM answers").fetchall() == [("slack", TEAM)]
        votes = db.execute("SELECT platform, guild_id, helpful, user_hash FROM votes").fetchall()
    db.close()
    assert [row[:3] for row in votes] == [("slack", TEAM, 1)]
    assert "U7" not in votes[0][3]


async def test_an_unknown_platform_is_refused(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with pytest.raises(ValueError, match="platform"):
        await store.record_answer(answer("q", "r1"), 1, platform="teams")
    with pytest.raises(ValueError, match="platform"):
        await store.report(guild_id=1, platform="Slack")
    with pytest.raises(ValueError, match="platform"):
        await store.reports_by_server(platform="irc")
    store.close()


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


async def test_support_channel_stats_and_forgetting_a_user(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for i, refused in enumerate((False, False, True)):
        await store.record_answer(
            answer(f"q{i}", f"s{i}", refused=refused),
            "U1",
            guild_id="T1",
            platform="slack",
            channel="C1",
            thread=f"t{i}",
            unasked=True,
        )
    await store.record_answer(answer("asked", "m1"), "U2", guild_id="T1", platform="slack")  # a mention: not support
    await store.vote("s0", "U1", True, guild_id="T1", platform="slack")
    assert await store.solved("slack", "t0", channel="C1", guild_id="T1")
    assert not await store.solved("slack", "t0", channel="C1", guild_id="T1"), "once"
    stats = await store.channel_stats("slack", "T1")
    assert stats == [{"channel": "C1", "questions": 3, "answered": 2, "handed_off": 1, "solved": 1}]
    assert "#C1: 3 questions, 2 answered, 1 handed off, 1 solved" in support_text(stats)
    assert await store.forget("U1", "slack") == 4, "three questions and one vote"
    assert (await store.report(guild_id="T1", platform="slack")).answers == 1
    store.close()


# The schema just before issue 24: support channels recorded, nothing about confidence, hand-offs or replies.
SCHEMA_BEFORE_GAPS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE answers (id TEXT PRIMARY KEY, asked_at REAL NOT NULL, user_hash TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, sources TEXT NOT NULL, refused INTEGER NOT NULL, latency_ms REAL, guild_id INTEGER,
    private INTEGER NOT NULL DEFAULT 1, platform TEXT NOT NULL DEFAULT 'discord', channel TEXT,
    unasked INTEGER NOT NULL DEFAULT 0, thread TEXT);
CREATE TABLE votes (answer_id TEXT NOT NULL REFERENCES answers(id), user_hash TEXT NOT NULL, helpful INTEGER NOT NULL,
    voted_at REAL NOT NULL, guild_id INTEGER, platform TEXT NOT NULL DEFAULT 'discord',
    PRIMARY KEY (answer_id, user_hash));
CREATE TABLE solved (platform TEXT NOT NULL, thread TEXT NOT NULL, channel TEXT, guild_id TEXT,
    solved_at REAL NOT NULL, PRIMARY KEY (platform, thread));
INSERT INTO meta VALUES ('salt', 'old-salt');
INSERT INTO answers VALUES ('refused', 1.0, 'h1', 'old refusal', 'a', '[]', 1, NULL, 101, 0, 'discord', '7', 1, '70');
INSERT INTO answers VALUES ('solved', 2.0, 'h2', 'old solved', 'a', '[]', 0, NULL, 101, 0, 'discord', '7', 1, '71');
INSERT INTO solved VALUES ('discord', '71', '7', '101', 3.0);
"""


async def test_a_database_from_before_gaps_gains_their_columns_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_BEFORE_GAPS)
    db.close()
    store = FeedbackStore(path)
    report = await store.report(guild_id=101)
    assert (report.answers, report.not_in_docs) == (2, [("old refusal", 1)]), "old rows read as before"
    assert [(r.channel, r.resolved, r.handed_off, r.unresolved) for r in report.resolution] == [("7", 1, 0, 1)]
    gaps = await store.gap_questions(View.of_space("discord", 101), low_confidence=0.45)
    assert [(g.id, g.reasons) for g in gaps] == [("refused", ("refused",))], "no confidence known: not a low one"
    confident = Answer("new", "a", (), False, (), "new", {}, confidence=0.9, relevance=0.8)
    await store.record_answer(confident, 1, guild_id=101, handed_off=True)
    assert await store.person_replied("discord", "70", 2)
    store.close()
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT confidence, relevance, uncertain, handed_off FROM answers WHERE id = 'new'").fetchone()
        old = db.execute("SELECT confidence, uncertain, handed_off FROM answers WHERE id = 'refused'").fetchone()
    db.close()
    assert row == (0.9, 0.8, 0, 1) and old == (None, 0, 0)


async def test_gap_questions_are_refusals_hand_offs_thumbs_down_low_confidence_and_ungrounded(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    await store.record_answer(Answer("fine", "a", (), False, (), "ok", {}, confidence=0.8), 1, guild_id=GUILD)
    await store.record_answer(Answer("refused", "a", (), True, (), "r", {}, confidence=0.2), 1, guild_id=GUILD)
    await store.record_answer(
        Answer("unsure", "a", (), False, (), "h", {}, confidence=0.8), 1, guild_id=GUILD, handed_off=True
    )
    await store.record_answer(Answer("disliked", "a", (), False, (), "d", {}, confidence=0.8), 1, guild_id=GUILD)
    await store.record_answer(Answer("weak", "a", (), False, (), "w", {}, confidence=0.4), 1, guild_id=GUILD)
    await store.record_answer(Answer("loose", "a", (), False, (), "u", {}, True, confidence=0.8), 1, guild_id=GUILD)
    await store.record_answer(Answer("secret", "a", (), True, (), "p", {}), 1, guild_id=GUILD, private=True)
    await store.record_answer(Answer("elsewhere", "a", (), True, (), "e", {}), 1, guild_id=OTHER_GUILD)
    await store.vote("d", 2, False, guild_id=GUILD)
    await store.vote("ok", 2, True, guild_id=GUILD)

    admins = await store.gap_questions(View.of_space("discord", GUILD), low_confidence=0.45)
    assert {g.question: g.reasons for g in admins} == {
        "refused": ("refused", "low_confidence"),
        "unsure": ("handed_off",),
        "disliked": ("voted_down",),
        "weak": ("low_confidence",),
        "loose": ("uncertain",),
    }
    operator = await store.gap_questions(View(space=GUILD), low_confidence=0.45)
    assert [g.question for g in operator if g.private] == ["secret"], "the operator's view counts private ones"
    assert len(await store.gap_questions(View())) == 6, 'every space; no low_confidence: "weak" is no gap'
    store.close()
