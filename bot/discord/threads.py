"""Reading a Discord thread Docent was asked into: its title, opening message and latest messages."""

from __future__ import annotations

import logging

import discord

from bot.threads import Said, transcript
from rag.settings import BotSettings

logger = logging.getLogger(__name__)


async def read_thread(thread: discord.Thread, asked: discord.Message, settings: BotSettings) -> tuple[str, ...]:
    """What was said in ``thread`` before ``asked``, for the prompt (``bot.threads``). Discord blanks other members'
    text unless the app has the Message Content intent; then only the title is known. Nothing here may stop the
    answer: a thread that cannot be read (permissions, a deleted starter) gives what could be read."""
    limit = settings.thread_context_messages
    if limit <= 0:
        return ()
    me = thread.guild.me.id if thread.guild and thread.guild.me else None
    said: list[Said] = []
    starter: discord.Message | None = None
    try:
        earlier = [m async for m in thread.history(limit=limit, before=asked)]
        earlier.reverse()
        if not earlier or earlier[0].id != thread.id:  # a thread started from a channel message: that message
            starter = thread.starter_message or await _starter(thread)
        for message in [*([starter] if starter else []), *earlier]:
            role = (
                "docent"
                if message.author.id == me
                else "asker"
                if message.author.id == _asker(thread, starter)
                else "member"
            )
            said.append(Said(role, message.content))
    except discord.HTTPException as exc:
        logger.info("thread %s: earlier messages unreadable (%s); answering with what was read", thread.id, exc.status)
    return transcript(thread.name, said, max_messages=limit, max_chars=settings.thread_context_chars)


def _asker(thread: discord.Thread, starter: discord.Message | None) -> int | None:
    return starter.author.id if starter is not None else thread.owner_id


async def _starter(thread: discord.Thread) -> discord.Message | None:
    parent = thread.parent
    if not isinstance(parent, discord.TextChannel):
        return None
    try:
        return await parent.fetch_message(thread.id)
    except discord.HTTPException:
        return None  # the thread was not started from a message, or it is gone
