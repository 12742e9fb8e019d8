"""What became of a question (``rag.resolution``), counted by the feedback store: resolved by a solved mark, the
asker's 👍 or the asker's answered follow-up; handed off when Docent refused or handed off and a person replied;
unresolved otherwise."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from rag.feedback import FeedbackStore
from rag.models import Answer
from rag.resolution import Resolution, total

SPACE, CHANNEL, OTHER_CHANNEL = "T1", "C1", "C2"
ASKER, HELPER, ASKER2 = "UASK", "UHELP", "UASK2"


def clock() -> Callable[[], float]:
    """A second later at every reading: rows are ordered as they are written."""
    ticks = itertools.count(1000)
    return lambda: float(next(ticks))


async def ask(
    store: FeedbackStore,
    request_id: str,
    thread: str | None,
    *,
    user: str = ASKER,
    refused: bool = False,
    handed_off: bool = False,
    channel: str = CHANNEL,
    private: bool = False,
) -> str:
    answer = Answer(f"question {request_id}", "a", (), refused, (), request_id, {})
    return await store.record_answer(
        answer,
        user,
        guild_id=SPACE,
        platform="slack",
        channel=channel,
        thread=thread,
        handed_off=handed_off,
        private=private,
    )


async def test_each_question_is_resolved_handed_off_or_unresolved(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=clock())
    await ask(store, "solved", "t1")
    assert await store.solved("slack", "t1", channel=CHANNEL, guild_id=SPACE)
    await ask(store, "same-thread-other-asker", "t1", user=ASKER2)  # their own question; the thread is solved
    await store.vote(await ask(store, "thumbs-up", "t2"), ASKER, True, guild_id=SPACE, platform="slack")
    await store.vote(await ask(store, "others-thumbs-up", "t3"), HELPER, True, guild_id=SPACE, platform="slack")
    await ask(store, "followed-up", "t4")
    await ask(store, "follow-up", "t4")  # the asker's next question, answered: not a question of its own
    await ask(store, "refused-taken-over", "t5", refused=True)
    assert await store.person_replied("slack", "t5", HELPER)
    await ask(store, "refused-asker-alone", "t6", refused=True)
    await store.person_replied("slack", "t6", ASKER)  # the asker is no helper
    await ask(store, "handed-off", "t7", handed_off=True, channel=OTHER_CHANNEL)
    await store.person_replied("slack", "t7", HELPER)
    await store.vote(await ask(store, "no-thread", None), ASKER, True, guild_id=SPACE, platform="slack")
    await ask(store, "refused-twice", "t8", refused=True)
    await ask(store, "refused-again", "t8", refused=True)  # a follow-up refused too resolves nothing
    await ask(store, "replied-but-answered", "t9")
    await store.person_replied("slack", "t9", HELPER)  # an answered question people talk about: still unresolved

    rows = await store.resolution()
    by_channel = {row.channel: (row.resolved, row.handed_off, row.unresolved) for row in rows}
    assert by_channel == {CHANNEL: (5, 1, 4), OTHER_CHANNEL: (0, 1, 0)}
    everything = total(rows)
    assert (everything.questions, everything.resolved_rate, everything.handed_off_rate) == (11, 0.4545, 0.1818)
    assert everything.line() == "11 questions: 5 resolved (45%), 2 handed off (18%), 4 unresolved (36%)"
    assert all(row.platform == "slack" and row.space == SPACE for row in rows)
    store.close()


async def test_a_space_sees_the_resolution_of_its_public_questions_and_the_operator_of_all(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=clock())
    await ask(store, "public", "t1")
    await ask(store, "private", None, private=True)
    report = await store.report(guild_id=SPACE, platform="slack")
    assert report.resolved.questions == 1 and "Resolution: 1 question: 0 resolved (0%)" in report.as_text()
    [(_, _, operator)] = await store.reports_by_server()
    assert operator.resolved.questions == 2
    assert await store.resolution(platform="discord") == []
    assert [r.questions for r in await store.resolution(space=SPACE, since=1001.0)] == [1], "asked since"
    store.close()


def test_rates_of_no_questions_are_zero() -> None:
    assert Resolution.of("slack", None, None, 0, 0, 0).resolved_rate == 0.0


async def test_forget_takes_a_user_out_of_every_resolution_figure(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=clock())
    await ask(store, "theirs", "t1", refused=True)
    await store.person_replied("slack", "t1", HELPER)
    await store.schedule_followup("theirs", platform="slack", channel=CHANNEL, thread="t1", due_at=0.0)
    await ask(store, "solved", "t2")
    await store.solved("slack", "t2", channel=CHANNEL, guild_id=SPACE)
    await ask(store, "shared", "t3")
    await ask(store, "also-asked", "t3", user=ASKER2)
    await store.solved("slack", "t3", channel=CHANNEL, guild_id=SPACE)
    await ask(store, "helped-by-them", "t4", user=ASKER2, refused=True)
    await store.person_replied("slack", "t4", ASKER)  # the forgotten user helped someone else
    assert (await store.channel_stats("slack", SPACE)) == [], "mentions: no support channel figures"

    assert await store.forget(ASKER, "slack") == 4, "three questions and one reply"
    [row] = await store.resolution()
    assert (row.resolved, row.handed_off, row.unresolved) == (1, 0, 1), "only the other asker's two questions"
    assert await store.due_followups() == [], "their follow-up went with their question"

    def left(sql: str) -> list[tuple[object, ...]]:
        return store._connection.call(lambda db: db.execute(sql).fetchall())

    assert left("SELECT thread FROM solved") == [("t3",)], "a thread someone else asked in keeps its mark"
    assert left("SELECT thread FROM replies") == [], "their reply and the replies in their thread are gone"
    assert left("SELECT count(*) FROM followups") == [(0,)]
    store.close()


async def test_a_follow_up_is_due_once_unless_the_asker_answered_first(tmp_path: Path) -> None:
    now = [100.0]
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: now[0])
    for thread in ("t1", "t2", "t3", "t4", "t5"):
        await ask(store, thread, thread)
        assert await store.schedule_followup(thread, platform="slack", channel=CHANNEL, thread=thread, due_at=200.0)
    assert not await store.schedule_followup("t1", platform="slack", channel=CHANNEL, thread="t1", due_at=300.0)
    await store.solved("slack", "t2", channel=CHANNEL, guild_id=SPACE)
    await store.vote("t3", ASKER, False, guild_id=SPACE, platform="slack")  # any vote is an answer
    assert await store.asker_answered("slack", "t4", ASKER)
    assert not await store.asker_answered("slack", "t5", HELPER), "only the asker's word settles it"
    assert await store.due_followups() == [], "not yet due"
    now[0] = 200.0
    due = await store.due_followups()
    assert [(d.answer_id, d.thread, d.channel, d.space) for d in due] == [
        ("t1", "t1", CHANNEL, SPACE),
        ("t5", "t5", CHANNEL, SPACE),
    ]
    assert await store.due_followups(("discord",)) == []
    assert await store.claim_followup("t1") and not await store.claim_followup("t1"), "claimed once"
    store.close()
    reopened = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: now[0])
    assert [d.answer_id for d in await reopened.due_followups()] == ["t5"], "a restart never asks twice"
    reopened.close()
