"""Answer questions: when the bot is mentioned, its answer is replied to, in its threads, in DMs, and with /ask."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord import docent
from bot.discord.feedback import feedback_view
from bot.discord.permissions import is_admin
from bot.discord.render import MESSAGE_LIMIT, format_answer, split_message
from bot.discord.replies import (
    NO_PINGS,
    InteractionReplier,
    LazyReplier,
    MessageReplier,
    Replier,
    edit_quietly,
    finish,
)
from bot.discord.threads import read_thread
from bot.services import SEARCHING, SKIP, Place, SupportThread
from bot.text import sendable
from rag import logs
from rag.errors import DocentError, Skipped, StartingUp, describe, new_error_id
from rag.models import Answer
from rag.prompt import Turn
from rag.settings import ChannelPolicy, Settings

if TYPE_CHECKING:
    from bot.discord.client import DocentBot

logger = logging.getLogger(__name__)
ONLY_IN_SERVERS = "I only answer in servers. Mention me in a channel or use /ask there."
CANT_READ_REPLY = "I can't read replies that don't mention me. Mention me (or turn the reply ping on)."
NOTICE_LIFETIME_S = 15.0
OFF_HERE = "Docent is switched off in this channel."
HANDOFF = "I'm not sure about this one, so I'll leave it to the helpers."
MAX_SUPPORT_THREADS = 5000
_MENTION = re.compile(r"<@!?\d+>")


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Register /ask. With ``bot.direct_messages = "refuse"`` Discord is told not to offer it in DMs at all."""

    @app_commands.command(name="ask", description="Ask a question about the docs.")
    @app_commands.describe(question="What do you want to know?", private="Show the answer only to you")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await docent(interaction).asker.ask_command(interaction, question, private=private)

    dms = settings.bot.direct_messages == "answer"
    ask.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=dms, private_channel=False)
    tree.add_command(ask)


class Asker:
    """Mentions, replies to answers, follow-ups in the bot's threads, DMs and /ask: one answering path."""

    def __init__(self, bot: DocentBot) -> None:
        self.bot = bot
        # Questions answered or handed off unasked, by the question's message id (a thread made from a message
        # has the message's id, so this is also the thread).
        self.support: OrderedDict[int, SupportThread] = OrderedDict()
        self._skipped: OrderedDict[int, None] = OrderedDict()  # questions a moderator marked 🚫

    # -- mentions, replies, threads, DMs -------------------------------------------------------------

    def _is_addressed(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.guild is None:
            return True
        if any(user.id == me.id for user in message.mentions):
            return True
        if message.reference is not None:
            resolved = message.reference.resolved
            if self.bot.conversations.knows(message.reference.message_id) or (
                isinstance(resolved, discord.Message) and resolved.author.id == me.id
            ):
                return True
        in_our_thread = isinstance(message.channel, discord.Thread) and (
            self.bot.conversations.knows(message.channel.id) or message.channel.owner_id == me.id
        )
        support_thread = self.bot.support_channels and message.channel.id in self.support
        return in_our_thread and (self.bot.settings.bot.thread_followups_without_mention or support_thread)

    async def channel_policy(self, channel: Any) -> ChannelPolicy:
        """The channel's policy: its own entry, else its parent's (a forum or the thread's channel), else its
        category's."""
        parent = getattr(channel, "parent", None)
        category = getattr(parent or channel, "category_id", None)
        return await self.bot.services.channels.policy("discord", channel.id, getattr(parent, "id", None), category)

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is not None and not message.author.bot:
            policy = await self.channel_policy(message.channel)
            if policy.mode == "off":
                return
            if self._is_new_question(message, policy):
                await self._answer_new_question(message, policy)
                return
            support = self._support_of(message)
            if support is not None and str(support.asker) != str(message.author.id) and not self._mentions_me(message):
                # A support thread: only the asker's follow-ups get more answers; others are people helping, and a
                # trusted member's answer after a hand-off is offered for learning.
                await self._maybe_learn(message, support)
                return
        else:
            policy = None
        if not self._is_addressed(message):
            return
        settings = self.bot.settings.bot
        if message.guild is None and settings.direct_messages == "refuse":
            await self._reply(message, ONLY_IN_SERVERS)
            return
        question = _MENTION.sub(" ", message.content).strip()
        if not question and not message.mentions:
            # A reply without a ping: Discord hides its text from bots without the Message Content intent.
            await self._reply(message, CANT_READ_REPLY)
            return
        guild_id = message.guild.id if message.guild else None
        refusal = self.bot.services.admit(message.author.id, Place("discord", guild_id))
        if refusal is not None:
            if refusal.notify:  # once per cooldown window; the rest are ignored rather than answered
                notice = await self._reply(message, refusal.message)
                self.bot.spawn(_delete_later(notice, NOTICE_LIFETIME_S), name="delete-notice")
            return

        thread_id = message.channel.id if isinstance(message.channel, discord.Thread) else None
        reference = message.reference.message_id if message.reference else None
        history = self.bot.conversations.history(reference) or self.bot.conversations.history(thread_id)
        said: tuple[str, ...] = ()
        if not history and isinstance(message.channel, discord.Thread):  # asked into a thread it did not start
            said = await read_thread(message.channel, message, settings)
        if settings.reply_in_thread and message.guild is not None and thread_id is None:
            thread = await message.create_thread(name=_thread_name(question), auto_archive_duration=1440)
            thread_id = thread.id
            placeholder = await thread.send(SEARCHING, allowed_mentions=NO_PINGS)
            replier: Replier = MessageReplier(placeholder, thread)
        else:
            placeholder = await message.reply(SEARCHING, mention_author=False, allowed_mentions=NO_PINGS)
            replier = MessageReplier(placeholder, message.channel)
        answer, message_ids = await self.answer(
            question,
            replier,
            user_id=message.author.id,
            guild_id=guild_id,
            private=guild_id is None,
            history=history,
            policy=policy,
            thread=said,
        )
        if answer is not None and not answer.refused:
            keys = [*message_ids, *([thread_id] if thread_id else [])]
            self.bot.conversations.remember(keys, history, Turn(answer.question, answer.text))

    def _mentions_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        return me is not None and any(user.id == me.id for user in message.mentions)

    def _is_new_question(self, message: discord.Message, policy: ChannelPolicy) -> bool:
        """In an auto/always channel: a new forum post, or a top-level message (not a reply, not in a thread), that
        doesn't mention the bot and is long enough to be a question. Only visible with the Message Content intent."""
        if policy.mode not in ("auto", "always") or not self.bot.support_channels:
            return False
        if self._mentions_me(message):
            return False
        post = _forum_post(message)
        if post is not None:  # a new forum post: its title is part of the question
            return len(f"{post.name} {message.content}".strip()) >= policy.min_chars
        if isinstance(message.channel, discord.Thread) or message.reference is not None:
            return False
        return len(message.content.strip()) >= policy.min_chars

    async def _answer_new_question(self, message: discord.Message, policy: ChannelPolicy) -> None:
        """Answered unasked in a thread under it (or as a reply); in auto only when confident, else handed off.
        Nothing is visible until the answer starts, and no admission notice: nobody asked."""
        guild_id = message.guild.id if message.guild else None
        if message.id in self._skipped:
            return
        if not self.bot.services.pipeline.ready:  # nobody asked: no "starting up" reply either
            logger.info("a new question in %s was not considered (the engine is starting)", message.channel.id)
            return
        if self.bot.services.admit(message.author.id, Place("discord", guild_id)) is not None:
            logger.info("a new question in %s was not considered (admission)", message.channel.id)
            return
        post = _forum_post(message)
        question = f"{post.name}\n{message.content}".strip() if post is not None else message.content.strip()
        support_channel = post.parent_id if post is not None else message.channel.id
        opened: dict[str, int] = {}

        async def open_reply(content: str, view: discord.ui.View | None) -> discord.Message:
            options: dict[str, Any] = {"view": view} if view is not None else {}
            if post is not None:  # a forum post is its own thread
                opened["thread"] = post.id
                return await post.send(content, allowed_mentions=NO_PINGS, **options)
            if policy.reply_in_thread:
                thread = await message.create_thread(name=_thread_name(question), auto_archive_duration=1440)
                opened["thread"] = thread.id
                return await thread.send(content, allowed_mentions=NO_PINGS, **options)
            return await message.reply(content, mention_author=False, allowed_mentions=NO_PINGS, **options)

        auto = policy.mode == "auto"
        answer, message_ids = await self.answer(
            question,
            LazyReplier(open_reply, lambda: message.id in self._skipped),
            user_id=message.author.id,
            guild_id=guild_id,
            private=False,
            policy=policy,
            quiet_refusal=auto,
            support=(str(support_channel), str(message.id)),
        )
        if answer is None:
            return
        self.support[message.id] = SupportThread(str(message.id), message.author.id, question, answer.unsure)
        while len(self.support) > MAX_SUPPORT_THREADS:
            self.support.popitem(last=False)
        if answer.unsure and auto:
            await self._hand_off(message, policy)
            return
        thread_id = opened.get("thread")
        if not answer.refused:
            keys = [*message_ids, *([thread_id] if thread_id else [])]
            self.bot.conversations.remember(keys, (), Turn(answer.question, answer.text))

    def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A moderator's 🚫 on a new question keeps Docent from answering it (if the answer isn't posted yet)."""
        member = payload.member
        if str(payload.emoji) != SKIP or member is None or member.bot:
            return
        permissions = member.guild_permissions
        if permissions.manage_messages or is_admin(member, self.bot.settings.discord.admin_role_ids):
            self._skipped[payload.message_id] = None
            while len(self._skipped) > MAX_SUPPORT_THREADS:
                self._skipped.popitem(last=False)

    def _support_of(self, message: discord.Message) -> SupportThread | None:
        """The support question this message follows up: in its thread, or as a reply to it."""
        support = self.support.get(message.channel.id)
        if support is None and message.reference is not None and message.reference.message_id is not None:
            support = self.support.get(message.reference.message_id)
        return support

    def needs_help(self, thread_id: int | None) -> None:
        """A 👎 on an answer in a support thread: a trusted member's answer there is worth learning."""
        support = self.support.get(thread_id) if thread_id is not None else None
        if support is not None:
            support.needs_help = True

    async def _maybe_learn(self, message: discord.Message, support: SupportThread) -> None:
        trusted = set(self.bot.settings.discord.trusted_role_ids)
        roles = {role.id for role in getattr(message.author, "roles", [])}
        if not support.needs_help or not trusted & roles or not message.content.strip():
            return
        await self.bot.services.capture(
            support,
            platform="discord",
            space=str(message.guild.id) if message.guild else None,
            channel=str(message.channel.id),
            answer=message.content.strip(),
            link=message.jump_url,
            author=message.author.display_name,
            author_id=message.author.id,
        )

    async def _hand_off(self, message: discord.Message, policy: ChannelPolicy) -> None:
        """Not sure: 👀 on the question, or a line under it that may ping the channel's helper role — the one
        notification Docent ever sends, allowed for that role on that message only."""
        try:
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
        except discord.HTTPException as exc:
            logger.warning("hand-off in %s failed: %s", message.channel.id, exc)

    async def _reply(self, message: discord.Message, text: str) -> discord.Message:
        return await message.reply(sendable(text), mention_author=False, allowed_mentions=NO_PINGS)

    # -- /ask -------------------------------------------------------------------------------------------

    async def ask_command(self, interaction: discord.Interaction, question: str, *, private: bool) -> None:
        guild_id = interaction.guild_id
        if guild_id is None and self.bot.settings.bot.direct_messages == "refuse":
            # allowed_contexts already hides /ask in DMs; this covers stale command registrations.
            await interaction.response.send_message(ONLY_IN_SERVERS, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        policy = None
        if guild_id is not None and interaction.channel is not None:
            policy = await self.channel_policy(interaction.channel)
            if policy.mode == "off":
                await interaction.response.send_message(OFF_HERE, ephemeral=True, allowed_mentions=NO_PINGS)
                return
        refusal = self.bot.services.admit(interaction.user.id, Place("discord", guild_id))
        if refusal is not None:  # an interaction must always be answered: privately, so it costs nobody else
            await interaction.response.send_message(
                sendable(refusal.message), ephemeral=True, allowed_mentions=NO_PINGS
            )
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        answer, message_ids = await self.answer(
            question,
            InteractionReplier(interaction, ephemeral=private),
            user_id=interaction.user.id,
            guild_id=guild_id,
            private=private or guild_id is None,
            policy=policy,
        )
        if answer is not None and not answer.refused and not private:
            # Replies to the answer continue the conversation, as they do for mentions (nobody can reply to an
            # ephemeral answer).
            self.bot.conversations.remember(message_ids, (), Turn(answer.question, answer.text))

    # -- the shared answering path ----------------------------------------------------------------------

    async def answer(
        self,
        question: str,
        replier: Replier,
        *,
        user_id: int,
        guild_id: int | None,
        private: bool,
        history: tuple[Turn, ...] = (),
        policy: ChannelPolicy | None = None,
        quiet_refusal: bool = False,
        support: tuple[str, str] | None = None,
        thread: tuple[str, ...] = (),
    ) -> tuple[Answer | None, list[int]]:
        """Stream an answer into one message, finish it with sources and feedback buttons, then record it.

        Returns the answer (None if it failed; the user has then been told why) and the ids of the
        messages that carry it. The answer is posted before it is recorded: a broken feedback database
        must never cost the user an answer that was already generated.
        """
        request_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        context = logs.request_id.set(request_id)
        try:
            answer = await self._generate(question, replier, history, request_id, policy, quiet_refusal, thread)
            if answer is None:
                return None, []
            if quiet_refusal and answer.unsure:  # nobody asked: recorded as unanswered, not posted
                posted_now: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                posted_now.set_result(True)
                place = Place("discord", guild_id)
                self.bot.services.record_later(answer, posted_now, user_id, place, private=False, support=support)
                return answer, []
            posted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            place = Place("discord", guild_id)
            self.bot.services.record_later(answer, posted, user_id, place, private=private, support=support)
            ids = None
            try:
                ids = await self._post(answer, replier, request_id, started, solved_for=support[1] if support else None)
            finally:
                posted.set_result(ids is not None)
            if ids is None:
                return None, []
            return answer, ids
        finally:
            logs.request_id.reset(context)

    async def _generate(
        self,
        question: str,
        replier: Replier,
        history: tuple[Turn, ...],
        request_id: str,
        policy: ChannelPolicy | None = None,
        quiet: bool = False,
        thread: tuple[str, ...] = (),
    ) -> Answer | None:
        async def notice(text: str) -> None:
            await edit_quietly(replier, text)

        async def partial(text: str) -> None:
            await edit_quietly(replier, text[: MESSAGE_LIMIT - 2] + " ▌")

        try:
            return await self.bot.services.generate(
                question,
                history=history,
                request_id=request_id,
                notice=notice if not quiet else _nothing,
                partial=partial if not quiet else _nothing,  # unasked: nothing shows until it is sure to be posted
                source_ids=policy.sources if policy else (),
                min_score=policy.min_confidence if policy and quiet else None,
                thread=thread,
            )
        except Exception as exc:  # one failed question must never take the bot down
            if quiet:  # nobody asked: log it, say nothing (also while the engine starts)
                level = logging.INFO if isinstance(exc, StartingUp) else logging.WARNING
                logger.log(level, "request %s (unasked) not answered: %s", request_id, exc)
                return None
            await self._fail(exc, replier, request_id)
            return None

    async def _post(
        self, answer: Answer, replier: Replier, request_id: str, started: float, *, solved_for: str | None = None
    ) -> list[int] | None:
        """The final edit must land (``finish`` falls back to a new message); the vote buttons go on the last part
        and carry the answer id, known before anything is recorded."""
        parts = split_message(format_answer(answer))
        view = feedback_view(answer.request_id, solved_for=None if answer.refused else solved_for)
        try:
            first = await finish(replier, parts[0], view=view if len(parts) == 1 else None)
        except Exception as exc:
            await self._fail(exc, replier, request_id)
            return None
        ids = [first]
        try:
            for index, part in enumerate(parts[1:], start=2):
                ids.append(await replier.send(part, view=view if index == len(parts) else None))
        except Exception:  # the answer's start is posted: say nothing over it, keep what landed
            logger.warning("request %s: could not post the rest of the answer", request_id, exc_info=True)
        self.bot.metrics.answered(answer, time.monotonic() - started)
        logger.info(
            "request %s answered in %.0f ms (%d parts, %d sources, refused=%s)",
            request_id,
            (time.monotonic() - started) * 1000,
            len(parts),
            len(answer.citations),
            answer.refused,
        )
        return [i for i in ids if i is not None]

    async def _fail(self, exc: Exception, replier: Replier, request_id: str) -> None:
        if isinstance(exc, Skipped):
            logger.info("request %s skipped by a moderator", request_id)
            return
        self.bot.metrics.failed(exc)
        error_id = new_error_id()
        if isinstance(exc, DocentError) and not exc.shows_error_id:  # expected (a bad question, starting up)
            logger.info("request %s refused: %s", request_id, exc)
        else:
            logger.exception("request %s failed (error id %s)", request_id, error_id)
        await edit_quietly(replier, describe(exc, error_id))


def _forum_post(message: discord.Message) -> discord.Thread | None:
    """The forum post this message starts (a post's thread has its starter message's id), else None."""
    channel = message.channel
    if isinstance(channel, discord.Thread) and isinstance(channel.parent, discord.ForumChannel):
        return channel if channel.id == message.id else None
    return None


async def _nothing(_: str) -> None:
    return None


async def _delete_later(message: discord.Message, delay: float) -> None:
    """Notices clean themselves up; an owned task, so closing the bot cancels it instead of leaking it."""
    await asyncio.sleep(delay)
    try:
        await message.delete()
    except discord.HTTPException as exc:
        logger.info("could not delete a notice: %s", exc)


def _thread_name(question: str) -> str:
    name = re.sub(r"\s+", " ", sendable(question)).strip() or "Question"
    return name if len(name) <= 90 else name[:89] + "…"
