"""After an answer on Discord (issue 24): "Did this solve it?" asked once in the support thread (or under the
question, where the answer was a reply) after the channel's delay with no word from the asker, pinging no one, its
buttons down the solved and vote paths; a person's reply to a hand-off counted as handed off. Time is the harness's
clock, never slept. The production bot over the fake Discord, a scripted model."""

from __future__ import annotations

import pytest

from bot.followup import QUESTION
from loopback.discord import MessageRecord
from tests.bot.discord.harness import ALICE, BOB, SAID, Harness, button
from tests.clock import Clock
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
CHANNEL = 222222222222222222  # the fake's default text channel
CONFIDENT = "How does IVF_FLAT split vectors into nlist clusters?"
OFF_TOPIC = "Does anyone know a good pizza place near the office for Friday?"
DELAY_S = 3600.0


def followups(h: Harness) -> list[MessageRecord]:
    return [m for m in h.fake.messages.values() if m.content == QUESTION]


async def test_did_this_solve_it_is_asked_once_in_the_thread_and_marks_it_solved(harness_factory) -> None:
    clock = Clock()
    h = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(CHANNEL): {"mode": "always", "followup_after_s": DELAY_S}},
        bot_options={"support_channels": True},
        clock=clock,
    )
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, timeout=60)
    await h.recorded(1)
    clock.now += DELAY_S - 1
    assert await h.bot.services.followups.tick() == 0, "not before the delay"
    clock.now += 1
    assert await h.bot.services.followups.tick() == 1
    [asking] = followups(h)
    assert asking.channel_id == asked, "in the thread Docent opened under the question"
    assert not asking.pings.users and not asking.pings.roles and not asking.pings.everyone
    clock.now += DELAY_S
    assert await h.bot.services.followups.tick() == 0, "never twice"

    bystander = await h.fake.click(asking.id, button(asking, "docent:solved:"), user_id=BOB)
    await h.final(bystander, marker="Only the person who asked", timeout=10)
    solved = await h.fake.click(asking.id, button(asking, "docent:solved:"), user_id=ALICE)
    await h.final(solved, marker="Marked solved", timeout=10)
    [row] = await h.bot.services.feedback.resolution()
    assert (row.channel, row.resolved, row.unresolved) == (str(CHANNEL), 1, 0)


async def test_under_a_reply_not_yet_is_a_thumbs_down_and_the_askers_reaction_makes_it_unneeded(
    harness_factory,
) -> None:
    clock = Clock()
    h = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(CHANNEL): {"mode": "always", "reply_in_thread": False, "followup_after_s": DELAY_S}},
        bot_options={"support_channels": True},
        clock=clock,
    )
    first = await h.fake.user_says(ALICE, CONFIDENT)
    answer = await h.fake.wait_for_message(lambda m: m.reply_to == first and "AI-generated" in m.content, timeout=60)
    second = await h.fake.user_says(BOB, "Which parameter sets how many IVF_FLAT clusters there are?")
    await h.fake.wait_for_message(lambda m: m.reply_to == second and "AI-generated" in m.content, timeout=60)
    await h.recorded(2)
    await h.fake.user_reacts(ALICE, answer.id, "👍")  # on the answer: the asker has answered
    clock.now += DELAY_S

    async def only_bobs_due() -> bool:
        return len(await h.bot.services.feedback.due_followups(now=clock.now)) == 1

    await h.stored(only_bobs_due, "Alice's reaction to settle her follow-up")
    assert await h.bot.services.followups.tick() == 1
    [asking] = followups(h)
    assert (asking.channel_id, asking.reply_to) == (CHANNEL, second), "a reply to Bob's question, not to Alice's"

    not_yet = await h.fake.click(asking.id, button(asking, "docent:notyet:"), user_id=BOB)
    await h.final(not_yet, marker="someone can pick it up", timeout=10)
    report = await h.bot.services.feedback.report(guild_id=h.fake.guild_id)
    assert report.not_helpful == 1 and report.thumbs_down[0]["question"].startswith("Which parameter")


async def test_a_hand_off_a_person_answered_counts_as_handed_off(harness_factory) -> None:
    h = await harness_factory(
        ScriptedGenerator(),
        channels={str(CHANNEL): {"mode": "auto", "min_confidence": 0.99}},
        bot_options={"support_channels": True},
    )
    asked = await h.fake.user_says(ALICE, OFF_TOPIC)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].reactions, what="the hand-off")
    await h.recorded(1)
    [row] = await h.bot.services.feedback.resolution()
    assert (row.handed_off, row.unresolved) == (0, 1)
    await h.fake.user_says(BOB, "The place on Main Street is good.", reply_to=asked)

    async def taken_over() -> bool:
        [row] = await h.bot.services.feedback.resolution()
        return (row.handed_off, row.unresolved) == (1, 0)

    await h.stored(taken_over, "Bob's reply to count")
