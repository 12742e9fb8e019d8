"""``bot.followup`` without a platform: the watch over threads and the follow-up task, over a real feedback store
and a recording poster; time is the store's and the task's injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.answering import Question, followup_after
from bot.followup import FollowUps, ThreadWatch
from bot.services import Place
from rag.feedback import DueFollowUp, FeedbackStore
from rag.models import Answer
from rag.settings import ChannelPolicy

ASKER, HELPER = "UASK", "UHELP"


class Poster:
    def __init__(self, fail: bool = False) -> None:
        self.posted: list[DueFollowUp] = []
        self.fail = fail

    async def post_followup(self, due: DueFollowUp) -> None:
        if self.fail:
            raise RuntimeError("the thread is gone")
        self.posted.append(due)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    feedback = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: 0.0)
    yield feedback
    feedback.close()


async def asked(store: FeedbackStore, thread: str, platform: str = "slack", *, refused: bool = False) -> str:
    answer = Answer(f"q {thread}", "a", (), refused, (), f"{platform}-{thread}", {})
    return await store.record_answer(answer, ASKER, guild_id="T1", platform=platform, channel="C1", thread=thread)


async def test_a_follow_up_waits_for_its_platform_and_a_failed_one_is_never_retried(store: FeedbackStore) -> None:
    now = [0.0]
    followups = FollowUps(store, clock=lambda: now[0])
    for platform in ("slack", "discord"):
        await followups.schedule(await asked(store, "t1", platform), platform, "C1", "t1", after_s=10)
    now[0] = 10.0
    assert await followups.tick() == 0, "no platform runs"
    slack, discord = Poster(), Poster(fail=True)
    followups.register("slack", slack)
    assert await followups.tick() == 1 and [d.platform for d in slack.posted] == ["slack"]
    followups.register("discord", discord)
    assert await followups.tick() == 0, "its post failed"
    assert await followups.tick() == 0 and await store.due_followups(now=now[0]) == [], "and is not asked again"
    followups.unregister("slack")


async def test_a_person_replying_to_a_refusal_is_kept_once_and_the_askers_word_settles_the_follow_up(
    store: FeedbackStore,
) -> None:
    spawned: list[asyncio.Task[None]] = []

    def spawn(write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(write)
        spawned.append(task)
        return task

    watch = ThreadWatch(store, spawn)
    await asked(store, "refused", refused=True)
    watch.watch("slack", "refused", ASKER, needs_person=True)
    answer_id = await asked(store, "answered")
    watch.watch("slack", "answered", ASKER, needs_person=False, messages=("answer-ts",))
    await store.schedule_followup(answer_id, platform="slack", channel="C1", thread="answered", due_at=5.0)

    watch.said("slack", HELPER, ("refused",))
    watch.said("slack", HELPER, ("refused",))  # once per person and thread
    watch.said("slack", HELPER, ("answered", "elsewhere"))  # an answered question needs no one; unknown: ignored
    watch.reacted("slack", HELPER, ("answer-ts",))  # not the asker
    await watch.written()
    assert len(spawned) == 1
    [row] = [r for r in await store.resolution()]
    assert (row.handed_off, row.unresolved) == (1, 1)
    assert [d.thread for d in await store.due_followups(now=5.0)] == ["answered"]

    watch.reacted("slack", ASKER, ("answer-ts",))  # the asker's reaction on the answer finds its thread
    await watch.written()
    assert await store.due_followups(now=5.0) == []
    assert watch.thread_of("slack", "answer-ts") == "answered" and watch.thread_of("discord", "answer-ts") is None


def question(policy: ChannelPolicy | None, *, space: str | None = "T1", private: bool = False) -> Question:
    return Question("q", ASKER, Place("slack", space), private=private, policy=policy, unasked=("C1", "t1"))


@pytest.mark.parametrize(
    ("asked", "refused", "after"),
    [
        (question(ChannelPolicy(mode="auto", followup_after_s=60)), False, 60.0),
        (question(ChannelPolicy(mode="auto")), False, 0.0),  # off by default
        (question(ChannelPolicy(mode="auto", followup_after_s=60)), True, 0.0),  # a refusal solves nothing
        (question(ChannelPolicy(mode="auto", followup_after_s=60), space=None), False, 0.0),  # never in a DM
        (question(ChannelPolicy(mode="auto", followup_after_s=60), private=True), False, 0.0),
        (Question("q", ASKER, Place("slack", "T1"), policy=ChannelPolicy(followup_after_s=60)), False, 0.0),  # asked
    ],
)
def test_only_a_support_channels_posted_answer_to_a_new_question_is_followed_up(
    asked: Question, refused: bool, after: float
) -> None:
    assert followup_after(asked, Answer("q", "a", (), refused)) == after
