"""Who may do what, and what Docent itself may do: members' permissions are judged in the channel where they act
(overwrites included, as Discord computes them for the interaction), and the bot gets exactly what the README's
invite asks for. The production bot over the fake Discord, a scripted model."""

from __future__ import annotations

import logging
from typing import Any

import discord
import pytest

from loopback.discord import GUILDS, FakeDiscord
from tests.bot.discord.harness import ALICE, BOB, FORUM, SAID, answered_post, button, help_forum
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
HELPER, MOD = 600000000000000011, 600000000000000012
HELPER_ROLE, MOD_ROLE = 810000000000000001, 810000000000000002
MANAGE_THREADS = discord.Permissions(manage_threads=True).value
MANAGE_MESSAGES = discord.Permissions(manage_messages=True).value
CHANNEL = 222222222222222222  # the fake's default text channel
OFF_TOPIC = "Does anyone know a good pizza place near the office for Friday?"


def moderators(permission: int, channel: int | None = None) -> Any:
    """A helper role with ``permission`` only through ``channel``'s overwrite, and a moderator role that has it
    server-wide but is denied it there (default: the fake's main channel)."""

    async def setup(fake: FakeDiscord) -> None:
        where = channel or fake.channel_id
        fake.add_role("helpers", role_id=HELPER_ROLE)
        fake.add_role("mods", permission, role_id=MOD_ROLE)
        fake.add_member(HELPER, "helper", roles=[HELPER_ROLE])
        fake.add_member(MOD, "mod", roles=[MOD_ROLE])
        fake.set_overwrite(where, HELPER_ROLE, allow=permission)
        fake.set_overwrite(where, MOD_ROLE, deny=permission)

    return setup


async def test_this_solved_it_takes_manage_threads_in_that_forum(harness_factory) -> None:
    async def setup(fake: FakeDiscord) -> None:
        help_forum(fake)
        await moderators(MANAGE_THREADS, FORUM)(fake)

    h = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(FORUM): {"mode": "always"}},
        bot_options={"support_channels": True},
        before_start=setup,
    )
    thread, answer = await answered_post(h)
    solved = button(answer, "docent:solved:")
    refused = await h.fake.click(answer.id, solved, user_id=MOD)
    await h.final(refused, marker="Only the person who asked", timeout=10)
    assert h.fake.thread_tags(thread) == [], "Manage Threads is denied to the mods in this forum"
    accepted = await h.fake.click(answer.id, solved, user_id=HELPER)
    await h.final(accepted, marker="Marked solved", timeout=10)
    assert h.fake.thread_tags(thread) == ["Solved"], "the helpers may manage threads in this forum"


async def test_teach_docent_takes_manage_messages_in_that_channel(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator(), before_start=moderators(MANAGE_MESSAGES))
    question = await h.fake.user_says(ALICE, "How do I keep the zorblax cache across restarts?")
    reply = await h.fake.user_says(BOB, "Set `zorblax.persist = true`.", reply_to=question, ping_reply=False)
    refused = await h.fake.message_command("Teach Docent", reply, user_id=MOD)
    await h.fake.wait_for(lambda: refused.responded, what="the refusal")
    assert "Only moderators" in (refused.final_content or "")
    taught = await h.fake.message_command("Teach Docent", reply, user_id=HELPER)
    await h.fake.wait_for(lambda: taught.responded, what="the confirmation")
    assert "for approval" in (taught.final_content or "")


async def test_a_support_forum_without_manage_threads_is_warned_of_once_and_the_asker_told(
    harness_factory, caplog: pytest.LogCaptureFixture
) -> None:
    """The README's invite has no Manage Threads; a support forum with a solved tag needs it to tag members' posts."""
    granted, mentions_only = FORUM - 1, FORUM - 2
    caplog.set_level(logging.DEBUG, logger="bot.discord.permissions")

    async def forums(fake: FakeDiscord) -> None:
        help_forum(fake, FORUM, manage_threads=False)
        help_forum(fake, granted)
        help_forum(fake, mentions_only, manage_threads=False)  # no "This solved it" there: nothing to warn of

    h = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(FORUM): {"mode": "always"}, str(granted): {"mode": "auto"}},
        bot_options={"support_channels": True},
        before_start=forums,
    )

    def checks() -> int:
        return sum("checked Docent's permissions" in r.getMessage() for r in caplog.records)

    await h.fake.wait_for(checks, what="the start-up permission check")
    await h.fake.dispatch("GUILD_DELETE", {"id": str(h.fake.guild_id), "unavailable": True}, intent=GUILDS)
    await h.fake.dispatch("GUILD_CREATE", h.fake.guild_payload(), intent=GUILDS)  # available again: checked again
    await h.fake.wait_for(lambda: checks() == 2, what="the second check")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("bot.")]
    assert len(warned) == 1 and str(FORUM) in warned[0] and "Manage Threads" in warned[0], warned

    thread, answer = await answered_post(h)
    solved = await h.fake.click(answer.id, button(answer, "docent:solved:"), user_id=ALICE)
    said = await h.final(solved, marker="Marked solved", timeout=10)
    assert "couldn't add the “Solved” tag" in said and "Manage Threads" in said
    assert h.fake.thread_tags(thread) == [] and not h.fake.calls("PATCH", f"/channels/{thread}"), "not even tried"
    stats = await h.bot.services.feedback.channel_stats("discord", h.fake.guild_id)
    assert [s["solved"] for s in stats] == [1], "recorded as solved all the same"


async def test_a_hand_off_role_nobody_can_ping_is_warned_of_once(
    harness_factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord notifies a role only if it is mentionable or the author has Mention Everyone; neither is in the
    README's invite, so a hand-off line to a plain role reaches nobody unless the server changes one of them."""
    quiet_role, heard_role, heard = 820000000000000001, 820000000000000002, 230000000000000001
    caplog.set_level(logging.DEBUG, logger="bot.discord.permissions")

    async def roles(fake: FakeDiscord) -> None:
        fake.add_role("helpers", role_id=quiet_role)  # not mentionable, as Discord creates roles
        fake.add_role("support", role_id=heard_role)
        fake.add_channel("support-desk", channel_id=heard)
        fake.set_overwrite(heard, fake.bot_role_id, allow=discord.Permissions(mention_everyone=True).value)

    def hand_off(role: int) -> dict[str, Any]:
        return {"mode": "auto", "min_confidence": 0.99, "handoff": "message", "helper_role": str(role)}

    h = await harness_factory(
        ScriptedGenerator(),
        channels={str(CHANNEL): hand_off(quiet_role), str(heard): hand_off(heard_role)},
        bot_options={"support_channels": True},
        before_start=roles,
    )
    h.allowed_roles = {quiet_role, heard_role}
    await h.fake.wait_for(
        lambda: any("checked Docent's permissions" in r.getMessage() for r in caplog.records), what="the check"
    )
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("bot.")]
    assert len(warned) == 1 and "@helpers" in warned[0] and str(CHANNEL) in warned[0], warned

    for channel in (CHANNEL, heard):
        await h.fake.user_says(ALICE, OFF_TOPIC, channel_id=channel)
    quiet = await h.fake.wait_for_message(lambda m: "helpers" in m.content, channel_id=CHANNEL, timeout=60)
    loud = await h.fake.wait_for_message(lambda m: "helpers" in m.content, channel_id=heard, timeout=60)
    assert quiet.allowed_pings.roles == {quiet_role} and not quiet.pings, "allowed, but nobody is notified"
    assert loud.pings.roles == {heard_role}, "Docent may mention everyone there"
