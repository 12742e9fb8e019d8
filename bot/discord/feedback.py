"""Helpful / not helpful buttons on answers (they keep working after a restart) and the admin /feedback report.

Everything is scoped to the server it happens in: votes carry the server, and /feedback shows only that
server's public questions (never private /ask answers or DMs), so adding the bot to a server reveals nothing
about any other.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands

from bot.discord import docent
from bot.discord.permissions import is_moderator, refused_unless_admin, solved_tag
from bot.discord.render import split_message
from bot.discord.replies import NO_PINGS
from bot.discord.state import DiscordState
from bot.followup import NOT_YET_LABEL, NOT_YET_THANKS, QUESTION, SOLVED_LABEL
from bot.services import Place
from bot.text import sendable
from rag.errors import new_error_id
from rag.feedback import DueFollowUp, support_text
from rag.settings import Settings

logger = logging.getLogger(__name__)


class VoteButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"docent:vote:(?P<vote>up|down):(?P<id>\w+)"):
    """A button whose custom id carries the answer id and the vote, so no view state must survive restarts."""

    def __init__(self, answer_id: str, helpful: bool) -> None:
        self.answer_id = answer_id
        self.helpful = helpful
        super().__init__(
            discord.ui.Button(
                label="Helpful" if helpful else "Not helpful",
                emoji="👍" if helpful else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"docent:vote:{'up' if helpful else 'down'}:{answer_id}",
            )
        )

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return not await docent(interaction).refuse_unless_allowed(interaction)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VoteButton:
        return cls(match["id"], match["vote"] == "up")

    async def callback(self, interaction: discord.Interaction) -> None:
        await _acknowledge(interaction)
        bot = docent(interaction)
        place = Place("discord", interaction.guild_id)
        try:
            recorded = await bot.services.vote(self.answer_id, interaction.user.id, self.helpful, place)
        except Exception as exc:
            await _failed(interaction, exc, "vote")
            return
        if not self.helpful:
            bot.desk.needs_help(interaction.channel_id)
        await _say(interaction, "Thanks for the feedback!" if recorded else "That answer is too old to rate.")


class SolvedButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"docent:solved:(?P<thread>\d+)"):
    """ "This solved it", on answers to support questions: for the asker (as Discord knows them, so also after a
    restart) and moderators (Manage Threads where it is clicked). It records the thread as solved and, in a forum
    with a tag named ``discord.solved_tag``, applies it."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        super().__init__(
            discord.ui.Button(
                label=SOLVED_LABEL,
                emoji="✅",
                style=discord.ButtonStyle.success,
                custom_id=f"docent:solved:{thread_id}",
            )
        )

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return not await docent(interaction).refuse_unless_allowed(interaction)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SolvedButton:
        return cls(int(match["thread"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _acknowledge(interaction)
        bot = docent(interaction)
        moderator = is_moderator(interaction, bot.settings.discord.admin_role_ids, manage_threads=True)
        if not moderator and await _asker(interaction, self.thread_id) != interaction.user.id:
            await _say(interaction, "Only the person who asked (or a moderator) can mark this solved.")
            return
        channel = interaction.channel
        # Counted for the support channel: a thread's forum or channel, else the channel the answer replies in.
        where = channel.parent_id if isinstance(channel, discord.Thread) else interaction.channel_id
        place = Place("discord", interaction.guild_id)
        try:
            new = await bot.services.solved(place, str(where or ""), str(self.thread_id))
        except Exception as exc:
            await _failed(interaction, exc, "solved mark")
            return
        tagged = await _apply_solved_tag(interaction, bot.settings.discord.solved_tag)
        await _say(interaction, ("✅ Marked solved" if new else "Already marked solved") + tagged)
        logger.info("support thread %s solved by %s", self.thread_id, interaction.user.id)


class NotYetButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"docent:notyet:(?P<id>\w+)"):
    """ "Not yet", under "Did this solve it?" (``bot.followup``): a 👎 on the answer, down the vote button's path (a
    helper's answer in the thread is then worth learning)."""

    def __init__(self, answer_id: str) -> None:
        self.answer_id = answer_id
        super().__init__(
            discord.ui.Button(
                label=NOT_YET_LABEL, style=discord.ButtonStyle.secondary, custom_id=f"docent:notyet:{answer_id}"
            )
        )

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return not await docent(interaction).refuse_unless_allowed(interaction)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> NotYetButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _acknowledge(interaction)
        bot = docent(interaction)
        try:
            recorded = await bot.services.vote(
                self.answer_id, interaction.user.id, False, Place("discord", interaction.guild_id)
            )
        except Exception as exc:
            await _failed(interaction, exc, "not-yet vote")
            return
        bot.desk.needs_help(interaction.channel_id)
        await _say(interaction, NOT_YET_THANKS if recorded else "That answer is too old to rate.")


class DiscordFollowUps:
    """Posts "Did this solve it?" (``bot.followup.Poster``) in a support question's thread, or, where the answer
    went in a reply, as a reply to the question; it pings no one."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state

    async def post_followup(self, due: DueFollowUp) -> None:
        client = self.state.client
        view = followup_view(due.answer_id, due.thread)
        thread_id = int(due.thread)
        thread = client.get_channel(thread_id)
        if thread is None:
            try:
                thread = await client.fetch_channel(thread_id)
            except discord.NotFound:  # no thread: the question's message id
                thread = None
        if isinstance(thread, discord.Thread):
            await thread.send(QUESTION, view=view, allowed_mentions=NO_PINGS)
            return
        channel = client.get_channel(int(due.channel)) or await client.fetch_channel(int(due.channel))
        if not isinstance(channel, discord.TextChannel):
            raise RuntimeError(f"channel {due.channel} takes no reply")
        question = channel.get_partial_message(thread_id)
        await question.reply(QUESTION, view=view, mention_author=False, allowed_mentions=NO_PINGS)


def followup_view(answer_id: str, thread: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if thread.isdigit():
        view.add_item(SolvedButton(int(thread)))
    view.add_item(NotYetButton(answer_id))
    return view


async def _acknowledge(interaction: discord.Interaction) -> None:
    """First, before any database write or Discord call: Discord fails an interaction not answered within 3 s.
    The user sees "thinking…" (privately) until ``_say`` replaces it."""
    await interaction.response.defer(ephemeral=True, thinking=True)


async def _say(interaction: discord.Interaction, text: str) -> None:
    """The answer to an acknowledged click; it replaces the "thinking…" message."""
    await interaction.followup.send(sendable(text), ephemeral=True, allowed_mentions=NO_PINGS)


async def _failed(interaction: discord.Interaction, exc: Exception, what: str) -> None:
    error_id = new_error_id()
    logger.warning("%s by %s not recorded (error id %s)", what, interaction.user.id, error_id, exc_info=exc)
    await _say(interaction, f"Sorry, that wasn't recorded; please try again later (error id `{error_id}`).")


async def _asker(interaction: discord.Interaction, question_id: int) -> int | None:
    """Who asked question ``question_id``, from Discord rather than the bot's memory, so it holds after a restart: a
    forum post's owner, else the question message's author (the starter of the thread Docent opened under it, or
    the message its answer replies to)."""
    channel = interaction.channel
    thread = channel if isinstance(channel, discord.Thread) and channel.id == question_id else None
    if thread is not None and isinstance(thread.parent, discord.ForumChannel):
        return thread.owner_id
    reference = interaction.message.reference if interaction.message else None
    if (
        reference is not None
        and reference.message_id == question_id
        and isinstance(reference.resolved, discord.Message)
    ):
        return reference.resolved.author.id
    where = thread.parent if thread is not None else channel
    if not isinstance(where, discord.abc.Messageable):
        return None
    try:
        question = await where.fetch_message(question_id)
    except discord.HTTPException as exc:
        logger.info("could not read question %s to tell who asked it: %s", question_id, exc)
        return None
    return question.author.id


async def _apply_solved_tag(interaction: discord.Interaction, tag_name: str) -> str:
    """In a forum post, add the forum's tag named ``tag_name`` (if it has one and the post hasn't it yet); returns
    the end of the reply. Tagging a member's post takes Manage Threads, which the README's invite leaves out: the
    user is told, and the start-up check (``PermissionCheck``) has logged it once."""
    channel = interaction.channel
    if not isinstance(channel, discord.Thread) or not isinstance(channel.parent, discord.ForumChannel):
        return "."
    tag = solved_tag(channel.parent, tag_name)
    if tag is None:
        return "."
    if tag in channel.applied_tags:
        return " and tagged."
    me = interaction.client.user
    mine = me is not None and channel.owner_id == me.id  # the bot's own posts it may retag without
    if not interaction.app_permissions.manage_threads and not mine:
        return f". I couldn't add the “{tag.name}” tag: Docent needs Manage Threads in this forum."
    try:
        await channel.edit(applied_tags=[*channel.applied_tags[:4], tag])
    except discord.HTTPException as exc:
        logger.warning("could not tag post %s solved: %s", channel.id, exc)
        return f". I couldn't add the “{tag.name}” tag."
    return " and tagged."


def feedback_view(answer_id: str, *, solved_for: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, True))
    view.add_item(VoteButton(answer_id, False))
    if solved_for is not None and solved_for.isdigit():
        view.add_item(SolvedButton(int(solved_for)))
    return view


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    @app_commands.command(name="feedback", description="Top questions, gaps in the docs and disliked answers.")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def feedback(interaction: discord.Interaction) -> None:
        await show_report(interaction)

    tree.add_command(feedback)


async def show_report(interaction: discord.Interaction) -> None:
    """This server's report, privately, to its admins."""
    bot = docent(interaction)
    if await refused_unless_admin(interaction, bot.settings.discord.admin_role_ids, "see the feedback report"):
        return
    if interaction.guild_id is None:  # guild_only: Discord never sends this from a DM, but never report "all"
        return
    await interaction.response.defer(thinking=True, ephemeral=True)
    report = await bot.services.feedback.report(guild_id=interaction.guild_id)
    support = support_text(await bot.services.feedback.channel_stats("discord", interaction.guild_id))
    parts = split_message(sendable(report.as_text() + support))
    await interaction.edit_original_response(content=parts[0], allowed_mentions=NO_PINGS)
    for part in parts[1:]:
        await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_PINGS)
