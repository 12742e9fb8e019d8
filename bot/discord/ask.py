"""Answer questions on Discord: mentions, replies to answers, follow-ups in Docent's threads, DMs, /ask, and new
questions in support channels. Each event becomes a neutral ``Incoming`` that ``bot.incoming.classify`` decides
on; the answering itself is ``bot.answering`` and support channels are ``bot.support``. This module only posts."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord
from discord import app_commands

from bot.answering import Question
from bot.discord import docent
from bot.discord.feedback import feedback_view
from bot.discord.permissions import is_admin, is_private
from bot.discord.render import MESSAGE_LIMIT, format_answer, split_message
from bot.discord.replies import NO_PINGS, InteractionReplier, LazyReplier, Replier, edit_quietly, finish
from bot.discord.state import DiscordState
from bot.discord.threads import read_thread
from bot.incoming import Action, Incoming, Rules, classify
from bot.services import SKIP, Place, SupportThread
from bot.support import HANDOFF
from bot.text import sendable
from rag.models import Answer
from rag.prompt import Turn
from rag.settings import ChannelPolicy, Settings

logger = logging.getLogger(__name__)
ONLY_IN_SERVERS = "I only answer in servers. Mention me in a channel or use /ask there."
CANT_READ_REPLY = "I can't read replies that don't mention me. Mention me (or turn the reply ping on)."
NOTICE_LIFETIME_S = 15.0
OFF_HERE = "Docent is switched off in this channel."
_MENTION = re.compile(r"<@!?\d+>")


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Register /ask. With ``bot.direct_messages = "refuse"`` Discord is told not to offer it in DMs at all."""

    @app_commands.command(name="ask", description="Ask a question about the docs.")
    @app_commands.describe(question="What do you want to know?", private="Show the answer only to you")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await Asker(docent(interaction)).ask_command(interaction, question, private=private)

    dms = settings.bot.direct_messages == "answer"
    ask.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=dms, private_channel=False)
    tree.add_command(ask)


class DiscordReply:
    """``bot.answering.Reply`` on Discord: progress and the answer in one message, its overflow in more, the vote
    buttons (and "This solved it" on support answers) on the last part."""

    def __init__(self, replier: Replier, *, solved_for: str | None = None) -> None:
        self._replier = replier
        self._solved_for = solved_for

    async def notice(self, text: str) -> None:
        await edit_quietly(self._replier, text)

    async def partial(self, text: str) -> None:
        await edit_quietly(self._replier, text[: MESSAGE_LIMIT - 2] + " ▌")

    async def final(self, answer: Answer) -> list[int]:
        """The first part must land (``finish`` falls back to a new message); a failed later part keeps what landed."""
        parts = split_message(format_answer(answer))
        view = feedback_view(answer.request_id, solved_for=None if answer.refused else self._solved_for)
        ids = [await finish(self._replier, parts[0], view=view if len(parts) == 1 else None)]
        try:
            for index, part in enumerate(parts[1:], start=2):
                ids.append(await self._replier.send(part, view=view if index == len(parts) else None))
        except Exception:  # the answer's start is posted: say nothing over it
            logger.warning("could not post the rest of answer %s", answer.request_id, exc_info=True)
        return [i for i in ids if i is not None]

    async def fail(self, text: str) -> None:
        if self._replier.opened:
            await edit_quietly(self._replier, text)
        else:
            await self._replier.tell(text)


class Asker:
    """Every message and /ask: classified once, answered through the one flow. Holds nothing of its own: what
    lasts (conversations, support questions) is in the state."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state
        self.flow = state.flow
        self.desk = state.desk

    async def channel_policy(self, channel: Any) -> ChannelPolicy:
        return await self.state.channel_policy(channel)

    # -- messages ------------------------------------------------------------------------------------------------

    def _incoming(self, message: discord.Message, support: SupportThread | None) -> Incoming:
        me = self.state.client.user
        assert me is not None
        conversations = self.state.conversations
        post = _forum_post(message)
        resolved = message.reference.resolved if message.reference is not None else None
        in_thread = isinstance(message.channel, discord.Thread)
        return Incoming(
            text=f"{post.name}\n{message.content}".strip() if post is not None else message.content.strip(),
            direct=message.guild is None,
            mentioned=self._mentions_me(message),
            top_level=post is not None or (not in_thread and message.reference is None),
            replies_to_docent=message.reference is not None
            and (
                conversations.knows(message.reference.message_id)
                or (isinstance(resolved, discord.Message) and resolved.author.id == me.id)
            ),
            in_docent_thread=isinstance(message.channel, discord.Thread)
            and (conversations.knows(message.channel.id) or message.channel.owner_id == me.id),
            in_support_thread=support is not None,
            by_asker=support is not None and str(support.asker) == str(message.author.id),
        )

    def _rules(self) -> Rules:
        settings = self.state.settings.bot
        return Rules(
            unasked=self.state.support_channels,
            followups_without_mention=settings.thread_followups_without_mention,
            direct_messages=settings.direct_messages,
        )

    async def on_message(self, message: discord.Message) -> None:
        me = self.state.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        if message.guild is not None and not self.state.allows(message.guild.id):
            return
        guild = message.guild is not None
        if guild:  # a person's word in a thread Docent answered in: for the resolution figures
            reference = message.reference.message_id if message.reference is not None else None
            here = message.channel.id if isinstance(message.channel, discord.Thread) else None
            self.state.services.watch.said("discord", message.author.id, (here, reference))
        policy = await self.channel_policy(message.channel) if guild else ChannelPolicy()
        support = self._support_of(message) if guild else None
        action = classify(self._incoming(message, support), policy, self._rules())
        if action is Action.REFUSE_DM:
            await self._reply(message, ONLY_IN_SERVERS)
        elif action is Action.NEW_QUESTION:
            await self._answer_new_question(message, policy)
        elif action is Action.HELPER_REPLY and support is not None:
            await self._helper_replied(message, support)
        elif action is Action.ASK:
            await self._answer(message, policy if guild else None)

    async def _answer(self, message: discord.Message, policy: ChannelPolicy | None) -> None:
        """A mention, a reply to an answer, a follow-up in Docent's thread, or a DM."""
        settings = self.state.settings.bot
        question = _MENTION.sub(" ", message.content).strip()
        if not question and not message.mentions:
            # A reply without a ping: Discord hides its text from bots without the Message Content intent.
            await self._reply(message, CANT_READ_REPLY)
            return
        guild_id = message.guild.id if message.guild else None
        thread_id = message.channel.id if isinstance(message.channel, discord.Thread) else None
        reference = message.reference.message_id if message.reference else None
        history = self.state.conversations.history(reference) or self.state.conversations.history(thread_id)
        # The conversation it belongs to: its thread, the one a reply continues, or its own (a thread Docent opens
        # under a message has the message's id).
        conversation = (
            str(thread_id)
            if thread_id
            else self.state.services.watch.thread_of("discord", reference) or str(message.id)
        )
        said: tuple[str, ...] = ()
        if not history and isinstance(message.channel, discord.Thread):  # asked into a thread it did not start
            said = await read_thread(message.channel, message, settings)
        opened: dict[str, int] = {}

        async def open_reply(content: str, view: discord.ui.View | None) -> discord.Message:
            if settings.reply_in_thread and message.guild is not None and thread_id is None:
                thread = await self._open_thread(message, question)
                if thread is not None:
                    opened["thread"] = thread.id
                    return await thread.send(content, allowed_mentions=NO_PINGS, **_view(view))
            return await message.reply(content, mention_author=False, allowed_mentions=NO_PINGS, **_view(view))

        async def tell(text: str) -> None:  # admission's refusal: a reply that cleans itself up
            notice = await message.reply(text, mention_author=False, allowed_mentions=NO_PINGS)
            # An owned task, not discord.py's ``delete_after`` (a bare task): closing the bot cancels it.
            self.state.spawn(_delete_later(notice, NOTICE_LIFETIME_S), name="delete-notice")

        outcome = await self.flow.run(
            Question(
                question,
                message.author.id,
                Place("discord", guild_id),
                private=guild_id is None,
                history=history,
                thread=said,
                policy=policy,
                channel=_channel_id(message.channel) if guild_id else None,
                conversation=conversation if guild_id else None,
            ),
            DiscordReply(LazyReplier(open_reply, tell=tell)),
        )
        if outcome.continues and outcome.answer is not None:
            thread = thread_id or opened.get("thread")
            keys = [*outcome.ids, *([thread] if thread else [])]
            self.state.conversations.remember(keys, history, Turn(outcome.answer.question, outcome.answer.text))

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.state.client.user
        return me is not None and any(user.id == me.id for user in message.mentions)

    async def _open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        """A thread under the question, or None when Discord refuses one (a channel overwrite, a thread that
        already exists, a voice channel's chat): the answer then goes in a reply. Logged once per channel."""
        try:
            return await message.create_thread(name=_thread_name(question), auto_archive_duration=1440)
        except discord.HTTPException as exc:
            if self.state.no_threads.first_time(message.channel.id, None):
                logger.warning("no thread in channel %s (%s); replying instead", message.channel.id, exc)
            return None

    async def _answer_new_question(self, message: discord.Message, policy: ChannelPolicy) -> None:
        """Answered unasked in a thread under it (or as a reply); in auto only when confident, else handed off.
        Nothing is visible until the answer starts, and no admission notice: nobody asked."""
        guild_id = message.guild.id if message.guild else None
        post = _forum_post(message)
        question = f"{post.name}\n{message.content}".strip() if post is not None else message.content.strip()
        support_channel = post.parent_id if post is not None else message.channel.id
        opened: dict[str, int] = {}

        async def open_reply(content: str, view: discord.ui.View | None) -> discord.Message:
            if post is not None:  # a forum post is its own thread
                opened["thread"] = post.id
                return await post.send(content, allowed_mentions=NO_PINGS, **_view(view))
            if policy.reply_in_thread:
                thread = await self._open_thread(message, question)
                if thread is not None:
                    opened["thread"] = thread.id
                    return await thread.send(content, allowed_mentions=NO_PINGS, **_view(view))
            return await message.reply(content, mention_author=False, allowed_mentions=NO_PINGS, **_view(view))

        reply = DiscordReply(
            LazyReplier(open_reply, skipped=lambda: self.desk.skipped(message.id)), solved_for=str(message.id)
        )
        outcome = await self.desk.answer_new(
            message.id,
            Question(
                question,
                message.author.id,
                Place("discord", guild_id),
                policy=policy,
                unasked=(str(support_channel), str(message.id)),
                quiet=policy.mode == "auto",
            ),
            reply,
            hand_off=lambda: self._hand_off(message, policy),
        )
        if outcome.continues and outcome.answer is not None:
            thread_id = opened.get("thread")
            keys = [*outcome.ids, *([thread_id] if thread_id else [])]
            self.state.conversations.remember(keys, (), Turn(outcome.answer.question, outcome.answer.text))

    def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A moderator's 🚫 on a new question keeps Docent from answering it (if the answer isn't posted yet); any
        person's reaction in a thread Docent answered in is heard (the asker's settles the follow-up)."""
        if payload.guild_id is not None and payload.member is not None and not payload.member.bot:
            keys = (payload.message_id, payload.channel_id)
            self.state.services.watch.reacted("discord", payload.user_id, keys)
        self._skip_mark(payload)

    def _skip_mark(self, payload: discord.RawReactionActionEvent) -> None:
        member = payload.member
        if str(payload.emoji) != SKIP or member is None or member.bot or not self.state.allows(payload.guild_id):
            return
        channel = self.state.client.get_channel(payload.channel_id)
        # Where the reaction is, channel overwrites included (a helper may manage messages in the help channel only).
        permissions = (
            channel.permissions_for(member)
            if isinstance(channel, discord.abc.GuildChannel | discord.Thread)
            else member.guild_permissions
        )
        if permissions.manage_messages or is_admin(member, self.state.settings.discord.admin_role_ids):
            self.desk.skip(payload.message_id)

    def _support_of(self, message: discord.Message) -> SupportThread | None:
        """The support question this message follows up: in its thread, or as a reply to it."""
        support = self.desk.threads.get(message.channel.id)
        if support is None and message.reference is not None and message.reference.message_id is not None:
            support = self.desk.threads.get(message.reference.message_id)
        return support

    def needs_help(self, thread_id: int | None) -> None:
        """A 👎 on an answer in a support thread: a trusted member's answer there is worth learning."""
        self.desk.needs_help(thread_id)

    async def _helper_replied(self, message: discord.Message, support: SupportThread) -> None:
        trusted = set(self.state.settings.discord.trusted_role_ids)
        roles = {role.id for role in getattr(message.author, "roles", [])}
        await self.desk.helper_replied(
            support,
            trusted=bool(trusted & roles),
            text=message.content,
            platform="discord",
            space=str(message.guild.id) if message.guild else None,
            private=is_private(message.channel),
            channel=str(message.channel.id),
            link=message.jump_url,
            author=message.author.display_name,
            author_id=message.author.id,
        )

    async def _hand_off(self, message: discord.Message, policy: ChannelPolicy) -> None:
        """Not sure: 👀 on the question, or a line under it that may ping the channel's helper role — the one
        notification Docent ever sends, allowed for that role on that message only."""
        if policy.handoff == "react":
            await message.add_reaction("👀")
        elif policy.handoff == "message":
            role = int(policy.helper_role) if policy.helper_role.isdigit() else None
            text = HANDOFF + (f" <@&{role}>" if role else "")
            allowed = (
                discord.AllowedMentions(everyone=False, users=False, roles=[discord.Object(id=role)])
                if role
                else NO_PINGS
            )
            await message.reply(text, mention_author=False, allowed_mentions=allowed)

    async def _reply(self, message: discord.Message, text: str) -> discord.Message:
        return await message.reply(sendable(text), mention_author=False, allowed_mentions=NO_PINGS)

    # -- /ask ------------------------------------------------------------------------------------------------

    async def ask_command(self, interaction: discord.Interaction, question: str, *, private: bool) -> None:
        guild_id = interaction.guild_id
        if guild_id is None and self.state.settings.bot.direct_messages == "refuse":
            # allowed_contexts already hides /ask in DMs; this covers stale command registrations.
            await interaction.response.send_message(ONLY_IN_SERVERS, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        policy = None
        channel = interaction.channel
        if guild_id is not None and channel is not None:
            policy = await self.channel_policy(channel)
            if policy.mode == "off":
                await interaction.response.send_message(OFF_HERE, ephemeral=True, allowed_mentions=NO_PINGS)
                return
        outcome = await self.flow.run(
            Question(
                question,
                interaction.user.id,
                Place("discord", guild_id),
                private=private or guild_id is None,
                policy=policy,
                channel=_channel_id(channel) if guild_id is not None and channel is not None else None,
                conversation=str(channel.id) if isinstance(channel, discord.Thread) else None,
            ),
            DiscordReply(InteractionReplier(interaction, ephemeral=private)),
        )
        if outcome.continues and outcome.answer is not None and not private:
            # Replies to the answer continue the conversation, as they do for mentions (nobody can reply to an
            # ephemeral answer).
            answer = outcome.answer
            self.state.conversations.remember(list(outcome.ids), (), Turn(answer.question, answer.text))


async def _delete_later(message: discord.Message, delay: float) -> None:
    await asyncio.sleep(delay)
    try:
        await message.delete()
    except discord.HTTPException as exc:
        logger.info("could not delete a notice: %s", exc)


def _view(view: discord.ui.View | None) -> dict[str, Any]:
    return {"view": view} if view is not None else {}


def _channel_id(channel: Any) -> str:
    """The channel a question counts for: a thread's parent (a forum, a text channel), else the channel."""
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return str(parent or channel.id)


def _forum_post(message: discord.Message) -> discord.Thread | None:
    """The forum post this message starts (a post's thread has its starter message's id), else None."""
    channel = message.channel
    if isinstance(channel, discord.Thread) and isinstance(channel.parent, discord.ForumChannel):
        return channel if channel.id == message.id else None
    return None


def _thread_name(question: str) -> str:
    name = re.sub(r"\s+", " ", sendable(question)).strip() or "Question"
    return name if len(name) <= 90 else name[:89] + "…"
