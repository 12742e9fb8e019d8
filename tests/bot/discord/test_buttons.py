"""The buttons on answers (👍/👎 and "This solved it"): answered within Discord's 3 seconds whatever the database
does, and working for the right people after a restart. The production bot over the fake Discord, a scripted
model; the fake's clock stands in for a slow store's seconds (``FakeDiscord.advance``), so nothing sleeps."""

from __future__ import annotations

import asyncio

import pytest

from tests.bot.discord.harness import ALICE, BOB, SAID, Harness, answered_post, button, forum_harness
from tests.bot.failing_store import SlowFeedback
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration


async def held_past_the_deadline(h: Harness) -> None:
    """The store holds the click's write while 3.5 s pass for Discord; then it lets go."""
    slow = h.bot.services.feedback
    assert isinstance(slow, SlowFeedback)
    await asyncio.wait_for(slow.waiting.wait(), 10)
    h.fake.advance(3.5)
    slow.gate.set()


async def test_a_vote_is_acknowledged_in_time_while_the_store_is_slow(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator(SAID), feedback=SlowFeedback)
    asked = await h.fake.user_says(ALICE, "What is IVF_FLAT?", mention_bot=True)
    reply = await h.reply_to(asked)
    click = await h.fake.click(reply.id, button(reply, ":up:"), user_id=BOB)
    await held_past_the_deadline(h)

    said = await h.final(click, marker="Thanks", timeout=10)
    assert click.ephemeral and not click.rejected, click.rejected
    assert click.response_latency is not None and click.response_latency < 3
    assert "Thanks" in said


async def test_this_solved_it_is_acknowledged_in_time_while_the_store_is_slow(harness_factory) -> None:
    h = await forum_harness(harness_factory, feedback=SlowFeedback)
    thread, answer = await answered_post(h)
    click = await h.fake.click(answer.id, button(answer, "docent:solved:"), user_id=ALICE)
    await held_past_the_deadline(h)

    said = await h.final(click, marker="Marked solved", timeout=10)
    assert click.ephemeral and not click.rejected, click.rejected
    assert click.response_latency is not None and click.response_latency < 3
    assert "Marked solved" in said and h.fake.thread_tags(thread) == ["Solved"]
