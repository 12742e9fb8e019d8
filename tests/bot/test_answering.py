"""The one answering flow, on a scripted pipeline: the start-up wait, admission, failures in words, and the record
written after the answer is posted. The platforms' own tests drive the same flow through the real clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from bot.answering import STARTING, AnswerFlow, Question
from bot.services import SEARCHING, Place, Services
from indexer.runner import Indexer
from rag.errors import Skipped
from rag.feedback import FeedbackStore
from rag.models import Answer
from rag.pipeline import Update
from rag.prompt import Turn
from rag.settings import ChannelPolicy, Settings

PLACE = Place("discord", 1)
ANSWER = "HNSW is a graph index [1]."


class Scripted:
    """An ``Answering`` whose engine start the test controls; every answer is ``ANSWER`` (or refused)."""

    def __init__(self, *, ready: bool = True, refused: bool = False) -> None:
        self._ready = asyncio.Event()
        if ready:
            self._ready.set()
        self.refused = refused
        self.asked: list[str] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        self._ready.set()

    def healthy(self) -> bool:
        return True

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def check_ready(self) -> None:
        assert self.ready

    async def stream(self, question: str, **_: Any) -> AsyncIterator[Update]:
        self.asked.append(question)
        yield Update("generating", raw="HNSW", sources=())
        yield Update("done", answer=Answer(question, ANSWER, (), refused=self.refused))

    async def ask(self, question: str, *, history: Sequence[Turn] = (), request_id: str | None = None) -> Answer:
        raise NotImplementedError


class Said:
    """A ``Reply`` that keeps what reached it; ``final_error`` makes the answer fail to post."""

    def __init__(self, final_error: Exception | None = None) -> None:
        self.steps: list[tuple[str, str]] = []
        self.final_error = final_error

    async def notice(self, text: str) -> None:
        self.steps.append(("notice", text))

    async def partial(self, text: str) -> None:
        self.steps.append(("partial", text))

    async def final(self, answer: Answer) -> list[int]:
        if self.final_error is not None:
            raise self.final_error
        self.steps.append(("final", answer.text))
        return [42]

    async def fail(self, text: str) -> None:
        self.steps.append(("fail", text))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.steps]


@pytest.fixture
def services(make_settings: Callable[..., Settings], tmp_path: Path) -> Callable[..., Services]:
    def build(pipeline: Scripted, **bot: Any) -> Services:
        settings = make_settings(bot={"user_cooldown_s": 0, "edit_interval_s": 0.2, **bot})
        feedback = FeedbackStore(tmp_path / "feedback.sqlite3")
        # The flow never indexes: no indexer or sources are needed to answer.
        return Services(settings, pipeline, cast(Indexer, None), lambda _: [], feedback)

    return build


async def test_a_question_while_the_engine_starts_is_told_then_answered(services: Callable[..., Services]) -> None:
    pipeline = Scripted(ready=False)
    flow = AnswerFlow(services(pipeline), "discord")
    said = Said()
    running = asyncio.create_task(flow.run(Question("what is HNSW?", 7, PLACE), said))
    for _ in range(20):  # let the flow run up to its wait
        await asyncio.sleep(0)
    assert said.steps == [("notice", STARTING)] and pipeline.asked == []
    pipeline.start()
    outcome = await running
    assert outcome.posted and outcome.ids == (42,) and said.steps[-1] == ("final", ANSWER)
    assert pipeline.asked == ["what is HNSW?"], "nothing was dropped"


async def test_a_support_channel_question_waits_for_the_engine_in_silence(services: Callable[..., Services]) -> None:
    pipeline = Scripted(ready=False)
    flow = AnswerFlow(services(pipeline), "discord")
    said = Said()
    question = Question("what is HNSW in Milvus?", 7, PLACE, policy=ChannelPolicy(mode="auto"), unasked=("c", "t"))
    running = asyncio.create_task(flow.run(question, said))
    for _ in range(20):
        await asyncio.sleep(0)
    assert said.steps == [], "nobody asked: nothing is posted before the answer"
    pipeline.start()
    assert (await running).posted and said.kinds() == ["final"]


async def test_the_start_up_wait_is_bounded_with_an_apology(services: Callable[..., Services]) -> None:
    flow = AnswerFlow(services(Scripted(ready=False), startup_wait_s=0.01), "discord")
    said = Said()
    outcome = await flow.run(Question("what is HNSW?", 7, PLACE), said)
    assert outcome.answer is None and said.kinds() == ["notice", "fail"]
    assert "still starting up" in said.steps[-1][1] and "error id" not in said.steps[-1][1]
    unasked = Said()
    await flow.run(Question("what is HNSW?", 8, PLACE, unasked=("c", "t")), unasked)
    assert unasked.steps == []


async def test_admission_refuses_once_per_window_and_never_where_nobody_asked(
    services: Callable[..., Services],
) -> None:
    flow = AnswerFlow(services(Scripted(), user_cooldown_s=60), "discord")
    assert (await flow.run(Question("first question", 7, PLACE), Said())).posted
    told, again = Said(), Said()
    assert (await flow.run(Question("second question", 7, PLACE), told)).answer is None
    await flow.run(Question("third question", 7, PLACE), again)
    assert told.kinds() == ["fail"] and "wait" in told.steps[0][1]
    assert again.steps == [], "one notice per cooldown"
    unasked = Said()
    await flow.run(Question("a new question", 7, PLACE, unasked=("c", "t")), unasked)
    assert unasked.steps == []


async def test_the_answer_is_recorded_after_it_is_posted_and_a_vote_cast_at_once_waits_for_it(
    services: Callable[..., Services],
) -> None:
    built = services(Scripted())
    flow = AnswerFlow(built, "discord")
    votes: list[asyncio.Task[bool]] = []
    recorded_before_final: list[int] = []

    class VoteAtOnce(Said):
        async def final(self, answer: Answer) -> list[int]:
            recorded_before_final.append((await built.feedback.report(guild_id=1)).answers)
            ids = await super().final(answer)
            # The buttons are live as soon as the message is: a click now must wait for the record.
            votes.append(asyncio.create_task(built.vote(answer.request_id, 9, True, PLACE)))
            await asyncio.sleep(0)
            return ids

    outcome = await flow.run(Question("what is HNSW?", 7, PLACE), VoteAtOnce())
    assert outcome.posted and outcome.answer is not None
    assert recorded_before_final == [0], "posted first, recorded after"
    assert await votes[0], "the vote waited for the record and landed"
    await built.records_written()
    assert (await built.feedback.report(guild_id=1)).answers == 1


async def test_an_answer_that_cannot_be_posted_is_worded_and_not_recorded(services: Callable[..., Services]) -> None:
    built = services(Scripted())
    flow = AnswerFlow(built, "discord")
    said = Said(final_error=ConnectionResetError("gone"))
    outcome = await flow.run(Question("what is HNSW?", 7, PLACE), said)
    assert outcome.answer is None and not outcome.posted
    assert said.kinds() == ["notice", "fail"] and "error id" in said.steps[-1][1]
    await built.records_written()
    assert (await built.feedback.report(guild_id=1)).answers == 0


async def test_a_skipped_question_says_nothing(services: Callable[..., Services]) -> None:
    flow = AnswerFlow(services(Scripted()), "discord")
    said = Said(final_error=Skipped("a moderator skipped this question"))
    question = Question("what is HNSW?", 7, PLACE, policy=ChannelPolicy(mode="always"), unasked=("c", "t"))
    assert (await flow.run(question, said)).answer is None and said.steps == []


async def test_an_unsure_answer_nobody_asked_is_recorded_not_posted(services: Callable[..., Services]) -> None:
    built = services(Scripted(refused=True))
    flow = AnswerFlow(built, "discord")
    said = Said()
    question = Question("what is HNSW?", 7, PLACE, policy=ChannelPolicy(mode="auto"), unasked=("c", "t"), quiet=True)
    outcome = await flow.run(question, said)
    assert outcome.answer is not None and outcome.answer.refused and not outcome.posted and said.steps == []
    await built.records_written()
    assert built.metrics.support.labels("discord", "handed_off")._value.get() == 1


async def test_asked_questions_show_searching_at_once(services: Callable[..., Services]) -> None:
    said = Said()
    await AnswerFlow(services(Scripted()), "slack").run(Question("what is HNSW?", 7, PLACE), said)
    assert said.steps[0] == ("notice", SEARCHING) and said.kinds()[-1] == "final"
