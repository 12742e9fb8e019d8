"""The buttons on answers (👍/👎 and "This solved it"): answered within Discord's 3 seconds whatever the database
does, and working for the right people after a restart. The production bot over the fake Discord, a scripted
model; the fake's clock stands in for a slow store's seconds (``FakeDiscord.advance``), so nothing sleeps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from loopback.discord import FakeDiscord
from tests.bot.discord.harness import ALICE, BOB, FORUM, SAID, Harness, answered_post, button, forum_harness
from tests.bot.failing_store import SlowFeedback
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
CHANNEL = 222222222222222222  # the fake's default text channel


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


@pytest.mark.parametrize("where", ["forum post", "thread under a message", "reply"])
async def test_this_solved_it_knows_the_asker_after_a_restart(harness_factory, tmp_path: Path, where: str) -> None:
    """Who asked comes from Discord (the post's owner, the question's author), not from the bot's memory, which a
    restart empties."""
    options: dict[str, Any] = {"bot_options": {"support_channels": True}}
    if where == "forum post":
        h = await forum_harness(harness_factory)
        options["channels"] = {str(FORUM): {"mode": "always"}}
        _, answer = await answered_post(h)
    else:
        options["channels"] = {str(CHANNEL): {"mode": "always", "reply_in_thread": where != "reply"}}
        h = await harness_factory(ScriptedGenerator(SAID), **options)
        asked = await h.fake.user_says(ALICE, "How does IVF_FLAT split vectors into nlist clusters?")
        answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, timeout=60)
        assert (answer.channel_id, answer.reply_to) == ((asked, None) if where != "reply" else (CHANNEL, asked))
    await h.close(keep_fake=True)

    restarted = await harness_factory(
        ScriptedGenerator(SAID), fake=h.fake, milvus={"uri": str(tmp_path / "milvus-restarted.db")}, **options
    )
    assert not restarted.bot.state.desk.threads, "a fresh bot remembers no support question"
    solved = button(answer, "docent:solved:")
    bystander = await restarted.fake.click(answer.id, solved, user_id=BOB)
    await restarted.final(bystander, marker="Only the person who asked", timeout=10)
    asker = await restarted.fake.click(answer.id, solved, user_id=ALICE)
    await restarted.final(asker, marker="Marked solved", timeout=10)
    stats = await restarted.bot.services.feedback.channel_stats("discord", restarted.fake.guild_id)
    assert [s["solved"] for s in stats] == [1]


async def test_a_solved_reply_in_a_channel_counts_for_that_channel_not_its_category(harness_factory) -> None:
    """Answered as a reply (no thread) in a channel inside a category: the solved mark is the channel's."""
    help_channel = 222222222222222223

    async def channel_in_a_category(fake: FakeDiscord) -> None:
        category = fake.add_category("Support")
        fake.add_channel("help", channel_id=help_channel, category_id=int(category["id"]))

    h = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(help_channel): {"mode": "always", "reply_in_thread": False}},
        bot_options={"support_channels": True},
        before_start=channel_in_a_category,
    )
    asked = await h.fake.user_says(
        ALICE, "How does IVF_FLAT split vectors into nlist clusters?", channel_id=help_channel
    )
    answer = await h.fake.wait_for_message(lambda m: m.reply_to == asked and "AI-generated" in m.content, timeout=60)
    solved = await h.fake.click(answer.id, button(answer, "docent:solved:"), user_id=ALICE)
    await h.final(solved, marker="Marked solved", timeout=10)
    await h.bot.services.records_written()
    stats = await h.bot.services.feedback.channel_stats("discord", h.fake.guild_id)
    assert stats == [{"channel": str(help_channel), "questions": 1, "answered": 1, "handed_off": 0, "solved": 1}]
