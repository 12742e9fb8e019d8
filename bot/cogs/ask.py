"""Answer questions: when the bot is mentioned, its answer is replied to, in its threads, in DMs, and with /ask."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.feedback import feedback_view
from bot.render import MESSAGE_LIMIT, format_answer, split_message
from bot.replies import NO_PINGS, InteractionReplier, MessageReplier, Replier, edit_quietly
from rag import logs
from rag.errors import BadQuestion, describe, new_error_id
from rag.models import Answer
from rag.prompt import Turn

if TYPE_CHECKING:
    from bot.client import DocentBot

logger = logging.getLogger(__name__)
SEARCHING = "🔎 Searching the docs…"
_MENTION = re.compile(r"<@!?\d+>")


class AskCog(commands.Cog):
    def __init__(self, bot: DocentBot) -> None:
        self.bot = bot

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
        return in_our_thread and self.bot.settings.bot.thread_followups_without_mention

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self._is_addressed(message):
            return
        settings = self.bot.settings.bot
        if message.guild is None and settings.direct_messages == "refuse":
            await message.reply(
                "I only answer in servers. Mention me in a channel or use /ask there.",
                mention_author=False,
                allowed_mentions=NO_PINGS,
            )
            return
        question = _MENTION.sub(" ", message.content).strip()
        if not question and not message.mentions:
            # A reply without a ping: Discord hides its text from bots without the Message Content intent.
            question_hint = "I can't read replies that don't mention me. Mention me (or turn the reply ping on)."
            await message.reply(question_hint, mention_author=False, allowed_mentions=NO_PINGS)
            return
        refusal = self.bot.admission.refusal(message.author.id, message.guild.id if message.guild else None)
        if refusal:
            await message.reply(refusal, mention_author=False, allowed_mentions=NO_PINGS, delete_after=15)
            return

        thread_id = message.channel.id if isinstance(message.channel, discord.Thread) else None
        reference = message.reference.message_id if message.reference else None
        history = self.bot.conversations.history(reference) or self.bot.conversations.history(thread_id)
        if settings.reply_in_thread and message.guild is not None and thread_id is None:
            thread = await message.create_thread(name=_thread_name(question), auto_archive_duration=1440)
            thread_id = thread.id
            placeholder = await thread.send(SEARCHING, allowed_mentions=NO_PINGS)
            replier: Replier = MessageReplier(placeholder, thread)
        else:
            placeholder = await message.reply(SEARCHING, mention_author=False, allowed_mentions=NO_PINGS)
            replier = MessageReplier(placeholder, message.channel)
        answer, message_ids = await self.answer(question, replier, user_id=message.author.id, history=history)
        if answer is not None and not answer.refused:
            keys = [*message_ids, *([thread_id] if thread_id else [])]
            self.bot.conversations.remember(keys, history, Turn(answer.question, answer.text))

    # -- /ask -------------------------------------------------------------------------------------------

    @app_commands.command(name="ask", description="Ask a question about the docs.")
    @app_commands.describe(question="What do you want to know?", private="Show the answer only to you")
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        refusal = self.bot.admission.refusal(interaction.user.id, interaction.guild_id)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        await self.answer(question, InteractionReplier(interaction, ephemeral=private), user_id=interaction.user.id)

    # -- the shared answering path ----------------------------------------------------------------------

    async def answer(
        self, question: str, replier: Replier, *, user_id: int, history: tuple[Turn, ...] = ()
    ) -> tuple[Answer | None, list[int]]:
        """Stream an answer into one message, finish it with sources and feedback buttons.

        Returns the answer (None if it failed; the user has then been told why) and the ids of the
        messages that carry it.
        """
        request_id = uuid.uuid4().hex[:12]
        interval = self.bot.settings.bot.edit_interval_s
        started = time.monotonic()
        context = logs.request_id.set(request_id)
        try:
            if self.bot.admission.must_wait:
                ahead = self.bot.admission.waiting + 1
                await edit_quietly(replier, f"⏳ Lots of questions right now; you're in the queue ({ahead} ahead)…")
            answer: Answer | None = None
            async with self.bot.admission.slot():
                if time.monotonic() - started > 1:
                    await edit_quietly(replier, SEARCHING)
                last_edit = time.monotonic()
                async for update in self.bot.pipeline.stream(question, history=history, request_id=request_id):
                    if update.answer is not None:
                        answer = update.answer
                    elif update.text and time.monotonic() - last_edit >= interval:
                        last_edit = time.monotonic()
                        await edit_quietly(replier, update.text[: MESSAGE_LIMIT - 2] + " ▌")
            assert answer is not None
            answer_id = await self.bot.feedback.record_answer(answer, user_id)
            parts = split_message(format_answer(answer))
            view = feedback_view(answer_id)
            ids = [await replier.edit(parts[0], view=view if len(parts) == 1 else None)]
            for index, part in enumerate(parts[1:], start=2):
                ids.append(await replier.send(part, view=view if index == len(parts) else None))
            self.bot.metrics.answered(answer, time.monotonic() - started)
            logger.info(
                "request %s answered in %.0f ms (%d parts, %d sources, refused=%s)",
                request_id,
                (time.monotonic() - started) * 1000,
                len(parts),
                len(answer.citations),
                answer.refused,
            )
            return answer, [i for i in ids if i is not None]
        except Exception as exc:  # one failed question must never take the bot down
            self.bot.metrics.failed(exc)
            error_id = new_error_id()
            if isinstance(exc, BadQuestion):
                logger.info("request %s refused: %s", request_id, exc)
            else:
                logger.exception("request %s failed (error id %s)", request_id, error_id)
            await edit_quietly(replier, describe(exc, error_id))
            return None, []
        finally:
            logs.request_id.reset(context)


def _thread_name(question: str) -> str:
    name = re.sub(r"\s+", " ", question).strip() or "Question"
    return name if len(name) <= 90 else name[:89] + "…"
