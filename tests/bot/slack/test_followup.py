"""After an answer on Slack (issue 24): "Did this solve it?" asked once after the channel's delay with no word from
the asker (time driven by the harness's clock, never slept), its buttons down the solved and vote paths; a person's
reply to a hand-off counted as handed off; direct messages kept private. Real slack-bolt over the fake Slack."""

from __future__ import annotations

from typing import Any

import pytest

from bot.followup import QUESTION
from rag.feedback import View
from tests.bot.slack.harness import ADMIN, BOB, MEMBER, Harness
from tests.clock import Clock
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
HELP = "C1"
CONFIDENT = "How does IVF_FLAT split vectors into nlist clusters?"
OFF_TOPIC = "Does anyone know a good pizza place near the office for Friday?"
DELAY_S = 3600.0


async def following_up(slack_harness: Any, clock: Clock) -> Harness:
    """A support channel that answers every new question and follows up after ``DELAY_S`` on ``clock``."""
    harness: Harness = await slack_harness(
        ScriptedGenerator("IVF_FLAT clusters vectors [1]."),
        channels={HELP: {"mode": "always", "followup_after_s": DELAY_S}},
        clock=clock,
    )
    return harness


def followups(h: Harness, thread: str) -> list[str]:
    return [m.ts for m in h.slack.messages.values() if m.thread_ts == thread and m.text == QUESTION]


async def recorded(h: Harness, answers: int) -> None:
    """Until the store holds ``answers`` answers (an answer is recorded just after it is posted)."""

    async def enough() -> bool:
        await h.services.records_written()
        return (await h.services.feedback.report()).answers >= answers

    await h.until_async(enough)


async def answered(h: Harness, text: str = CONFIDENT) -> tuple[str, str]:
    """A new question in the help channel, answered unasked and recorded: (its thread, the answer's ts)."""
    before = (await h.services.feedback.report()).answers
    asked = await h.slack.message(HELP, MEMBER, text)
    thread = asked.payload["event"]["ts"]
    answer = await h.final(thread)
    await recorded(h, before + 1)
    return thread, answer.ts


async def test_did_this_solve_it_is_asked_once_after_the_delay_and_marks_it_solved(slack_harness) -> None:
    clock = Clock()
    h = await following_up(slack_harness, clock)
    thread, _ = await answered(h)
    clock.now += DELAY_S - 1
    assert await h.services.followups.tick() == 0, "not before the delay"
    clock.now += 1
    assert await h.services.followups.tick() == 1
    [asking] = followups(h, thread)
    assert h.slack.notifications == [], "it pings no one"
    clock.now += DELAY_S
    assert await h.services.followups.tick() == 0, "never twice"
    await h.restart()
    assert await h.services.followups.tick() == 0, "not after a restart either"

    other = await h.slack.click(asking, "docent_solved", user=BOB)
    said = await h.until(lambda: h.slack.responses_to(other))
    assert "Only the person who asked" in said[-1]["text"]
    solved = await h.slack.click(asking, "docent_solved", user=MEMBER)
    said = await h.until(lambda: h.slack.responses_to(solved))
    assert "Marked solved" in said[-1]["text"], "the asker, known by their hashed id: the button holds no user id"
    [row] = await h.services.feedback.resolution()
    assert (row.channel, row.resolved, row.unresolved) == (HELP, 1, 0)


async def test_not_yet_is_a_thumbs_down_and_makes_the_question_a_gap(slack_harness) -> None:
    clock = Clock()
    h = await following_up(slack_harness, clock)
    thread, _ = await answered(h)
    clock.now += DELAY_S
    await h.services.followups.tick()
    [asking] = followups(h, thread)
    not_yet = await h.slack.click(asking, "docent_vote_down", user=MEMBER)
    said = await h.until(lambda: h.slack.responses_to(not_yet))
    assert "someone can pick it up" in said[-1]["text"]
    report = await h.services.feedback.report(guild_id=h.slack.team_id, platform="slack")
    assert report.not_helpful == 1
    [gap] = await h.services.feedback.gap_questions(View.of_space("slack", h.slack.team_id))
    assert gap.question == CONFIDENT and gap.reasons == ("voted_down",)


async def test_no_follow_up_once_the_asker_reacted_or_wrote_in_the_thread(slack_harness) -> None:
    clock = Clock()
    h = await following_up(slack_harness, clock)
    reacted, answer = await answered(h)
    await h.slack.react(HELP, answer, "thumbsup", user=MEMBER)  # on the answer: its thread is found
    wrote, _ = await answered(h, "What does nprobe do in IVF_FLAT?")
    said = await h.slack.message(HELP, MEMBER, "ok, trying that", thread_ts=wrote)
    await h.slack.wait_acked(said)
    bystander, answer = await answered(h, "Which parameter sets the IVF_FLAT clusters?")
    await h.slack.react(HELP, answer, "eyes", user=BOB)  # not the asker: still asked
    clock.now += DELAY_S

    async def only_one_due() -> bool:
        await h.services.records_written()
        return len(await h.services.feedback.due_followups(now=clock.now)) == 1

    await h.until_async(only_one_due)  # the reaction and the reply are heard after the fake sent them
    assert await h.services.followups.tick() == 1
    assert (followups(h, reacted), followups(h, wrote), len(followups(h, bystander))) == ([], [], 1)


async def test_a_refusal_a_person_took_over_counts_as_handed_off(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator(), channels={HELP: {"mode": "auto", "min_confidence": 0.99}})
    asked = await h.slack.message(HELP, MEMBER, OFF_TOPIC)
    thread = asked.payload["event"]["ts"]
    await h.until(lambda: h.slack.reactions)  # handed off
    await recorded(h, 1)
    mine = await h.slack.message(HELP, MEMBER, "anyone?", thread_ts=thread)  # the asker is no helper
    await h.slack.wait_acked(mine)
    await h.services.records_written()
    [row] = await h.services.feedback.resolution()
    assert (row.handed_off, row.unresolved) == (0, 1)
    await h.slack.message(HELP, ADMIN, "Try the place on Main Street.", thread_ts=thread)

    async def taken_over() -> bool:
        await h.services.records_written()
        [row] = await h.services.feedback.resolution()
        return (row.handed_off, row.unresolved) == (1, 0)

    await h.until_async(taken_over)
    assert followups(h, thread) == [], "a hand-off gets no follow-up"


async def test_a_direct_message_stays_out_of_the_workspace_report(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator("HNSW builds a graph [1]."))
    direct = await h.slack.message("D1", MEMBER, "what is HNSW?", channel_type="im")
    await h.final(direct.payload["event"]["ts"])
    await recorded(h, 1)
    report = await h.services.feedback.report(guild_id=h.slack.team_id, platform="slack")
    assert report.answers == 0, "a workspace's admins never see a member's direct messages"
    [(_, _, operator)] = await h.services.feedback.reports_by_server()
    assert operator.answers == 1 and operator.top_questions == [], "the operator counts it, never sees it"
