"""Where an answer goes: a message reply (or thread post), or an interaction response. Never pings.

Everything sent passes through ``bot.text.sendable``: model output may hold control characters (a NUL made a
Discord-compatible server reject the message with a 500).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot.text import sendable
from rag.errors import Skipped

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()


class Replier(Protocol):
    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Replace the answer message's content; returns its id."""
        ...

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Post an extra message (the rest of a long answer); returns its id."""
        ...


def _view(view: discord.ui.View | None) -> dict[str, Any]:
    return {"view": view} if view is not None else {}


class MessageReplier:
    """Answers in a channel or thread by editing a placeholder message the bot posted."""

    def __init__(self, placeholder: discord.Message, channel: discord.abc.Messageable) -> None:
        self._placeholder = placeholder
        self._channel = channel

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        await self._placeholder.edit(content=sendable(content), allowed_mentions=NO_PINGS, **_view(view))
        return self._placeholder.id

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        message = await self._channel.send(sendable(content), allowed_mentions=NO_PINGS, **_view(view))
        return message.id


class InteractionReplier:
    """Answers a deferred slash command: edits the original response, follow-ups for overflow."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        message = await self._interaction.edit_original_response(
            content=sendable(content), allowed_mentions=NO_PINGS, **_view(view)
        )
        return message.id

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        message = await self._interaction.followup.send(
            sendable(content), ephemeral=self._ephemeral, allowed_mentions=NO_PINGS, wait=True, **_view(view)
        )
        return message.id


class LazyReplier:
    """Posts nothing until there is something to show, for questions nobody asked the bot: ``open`` posts the first
    content (in a new thread, or as a reply) and returns the message that later edits go to."""

    def __init__(
        self,
        open: Callable[[str, discord.ui.View | None], Awaitable[discord.Message]],
        skipped: Callable[[], bool] = lambda: False,
    ) -> None:
        self._open = open
        self._skipped = skipped  # a moderator said not to answer: nothing is posted, ever
        self._message: discord.Message | None = None

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        if self._message is None:
            if self._skipped():
                raise Skipped("a moderator skipped this question")
            self._message = await self._open(sendable(content), view)
        else:
            await self._message.edit(content=sendable(content), allowed_mentions=NO_PINGS, **_view(view))
        return self._message.id

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        if self._message is None:
            return await self.edit(content, view=view)
        message = await self._message.channel.send(sendable(content), allowed_mentions=NO_PINGS, **_view(view))
        return message.id


async def edit_quietly(replier: Replier, content: str) -> None:
    """Progress edits are best effort: a failed one must not fail the answer.

    Any Exception, not only HTTPException: a Discord-compatible server answered an edit with a body that made
    discord.py raise TypeError, and that aborted a whole answer.
    """
    try:
        await replier.edit(content)
    except Skipped:
        return  # a moderator skipped the question: nothing is shown, by design
    except Exception as exc:
        logger.warning("progress edit failed: %s: %s", type(exc).__name__, exc)


async def finish(replier: Replier, content: str, *, view: discord.ui.View | None = None) -> int | None:
    """The final edit of an answer must land: if editing fails, post it as a new message instead.

    Returns the id of the message that carries ``content``. If the new message fails too, that error
    propagates: the caller tells the user something went wrong.
    """
    try:
        return await replier.edit(content, view=view)
    except Skipped:
        raise  # nothing may be posted; a new message would be posting too
    except Exception as exc:
        logger.warning("final edit failed (%s: %s); sending the answer as a new message", type(exc).__name__, exc)
    return await replier.send(content, view=view)
