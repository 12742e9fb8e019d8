"""Answer questions: when the bot is mentioned (or its answer is replied to), and with /ask."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.render import MESSAGE_LIMIT, format_answer, split_message
from rag.errors import BadQuestion, describe, new_error_id
from rag.models import Answer

if TYPE_CHECKING:
    from bot.client import DocentBot

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
Edit = Callable[[str], Awaitable[object]]
Send = Callable[[str], Awaitable[object]]


class AskCog(commands.Cog):
    def __init__(self, bot: DocentBot) -> None:
        self.bot = bot

    def _addressed(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot:
            return False
        if any(user.id == me.id for user in message.mentions):
            return True
        ref = message.reference.resolved if message.reference else None
        return isinstance(ref, discord.Message) and ref.author.id == me.id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self._addressed(message):
            return
        question = re.sub(r"<@!?\d+>", " ", message.content).strip()
        reply = await message.reply("🔎 Searching the docs…", mention_author=False, allowed_mentions=NO_PINGS)

        async def edit(content: str) -> object:
            return await reply.edit(content=content, allowed_mentions=NO_PINGS)

        async def send(content: str) -> object:
            return await message.channel.send(content, allowed_mentions=NO_PINGS)

        await self.answer(question, edit, send, user_id=message.author.id)

    @app_commands.command(name="ask", description="Ask a question about the docs.")
    @app_commands.describe(question="What do you want to know?", private="Show the answer only to you")
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await interaction.response.defer(thinking=True, ephemeral=private)

        async def edit(content: str) -> object:
            return await interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)

        async def send(content: str) -> object:
            return await interaction.followup.send(content, ephemeral=private, allowed_mentions=NO_PINGS)

        await self.answer(question, edit, send, user_id=interaction.user.id)

    async def answer(self, question: str, edit: Edit, send: Send, *, user_id: int) -> Answer | None:
        """Stream an answer into one message, then finish it with sources (and overflow messages)."""
        request_id = uuid.uuid4().hex[:12]
        interval = self.bot.settings.bot.edit_interval_s
        last_edit = time.monotonic()
        started = last_edit
        try:
            if self.bot.answer_slots.locked():
                await _safe(edit, "⏳ Lots of questions right now; you're in the queue…")
            async with self.bot.answer_slots:
                answer: Answer | None = None
                async for update in self.bot.pipeline.stream(question, request_id=request_id):
                    if update.answer is not None:
                        answer = update.answer
                    elif update.text and time.monotonic() - last_edit >= interval:
                        last_edit = time.monotonic()
                        await _safe(edit, update.text[: MESSAGE_LIMIT - 2] + " ▌")
            assert answer is not None
            parts = split_message(format_answer(answer))
            await edit(parts[0])
            for part in parts[1:]:
                await send(part)
            logger.info(
                "request %s for user %s answered in %.0f ms",
                request_id,
                user_id,
                (time.monotonic() - started) * 1000,
            )
            return answer
        except Exception as exc:  # one failed question must never take the bot down
            error_id = new_error_id()
            if isinstance(exc, BadQuestion):
                logger.info("request %s refused: %s", request_id, exc)
            else:
                logger.exception("request %s failed (error id %s)", request_id, error_id)
            await _safe(edit, describe(exc, error_id))
            return None


async def _safe(edit: Edit, content: str) -> None:
    """Progress edits are best effort: a failed edit must not fail the answer."""
    try:
        await edit(content)
    except discord.HTTPException as exc:
        logger.warning("progress edit failed: %s", exc)
