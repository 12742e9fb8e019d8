"""Where an answer goes on Discord: a message Docent posts (a reply, or in a thread), or an interaction response.
Never pings.

Everything sent passes through ``bot.text.sendable``: model output may hold control characters (a NUL made a
Discord-compatible server reject the message with a 500).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot.services import SEARCHING
from bot.text import sendable
from rag.errors import Skipped

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
INVALID_WEBHOOK_TOKEN = 50027  # an interaction token past its 15 minutes


class Replier(Protocol):
    @property
    def opened(self) -> bool:
        """Something is visible: later words edit it."""
        ...

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Show ``content`` in the answer message (posting it first if nothing is open); returns its id."""
        ...

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Post an extra message (the rest of a long answer); returns its id."""
        ...

    async def tell(self, content: str) -> None:
        """Before anything is open: a short word for the asker alone (an admission refusal)."""
        ...


def _view(view: discord.ui.View | None) -> dict[str, Any]:
    return {"view": view} if view is not None else {}


class LazyReplier:
    """Posts nothing until there is something to show: ``open`` posts the first content (in a new thread, or as a
    reply) and returns the message later edits go to. ``tell`` answers the asker with a reply that deletes itself.
    ``skipped`` is a moderator's 🚫 on a question nobody asked Docent: then nothing is ever posted."""

    def __init__(
        self,
        open: Callable[[str, discord.ui.View | None], Awaitable[discord.Message]],
        *,
        tell: Callable[[str], Awaitable[object]] | None = None,
        skipped: Callable[[], bool] = lambda: False,
    ) -> None:
        self._open = open
        self._tell = tell
        self._skipped = skipped
        self._message: discord.Message | None = None

    @property
    def opened(self) -> bool:
        return self._message is not None

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

    async def tell(self, content: str) -> None:
        if self._tell is not None:
            await self._tell(sendable(content))


class InteractionReplier:
    """Answers a slash command. The first word defers it (Discord's 3 s), or, when it is a refusal, answers it
    privately; later words edit the original response, follow-ups carry overflow. An interaction token lasts
    15 minutes: after a long queue a public answer goes to the channel instead of being lost (a private one
    cannot, and is logged)."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral
        self._expired = False  # Discord said the token is no longer valid (50027), whatever the clock says

    @property
    def opened(self) -> bool:
        return self._interaction.response.is_done()

    def _channel(self) -> discord.abc.Messageable | None:
        """Where a public answer goes once the token has expired."""
        channel = self._interaction.channel
        expired = self._expired or self._interaction.is_expired()
        if self._ephemeral or not expired or not isinstance(channel, discord.abc.Messageable):
            return None
        return channel

    async def _with_token(
        self, call: Callable[[], Awaitable[int | None]], content: str, view: discord.ui.View | None
    ) -> int | None:
        """``call`` uses the token; if Discord says it expired, a public answer goes to the channel instead."""
        try:
            return await call()
        except discord.HTTPException as exc:
            if exc.code != INVALID_WEBHOOK_TOKEN or self._expired:
                raise
            self._expired = True
            if self._channel() is None:
                raise
            logger.info("interaction %s: token expired; answering in the channel", self._interaction.id)
            return await self.send(content, view=view)

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        if not self.opened:
            await self._interaction.response.defer(thinking=True, ephemeral=self._ephemeral)
            if content == SEARCHING:  # "Docent is thinking…" says it already
                return None
        if self._channel() is not None:
            return await self.send(content, view=view)

        async def edit_original() -> int | None:
            message = await self._interaction.edit_original_response(
                content=sendable(content), allowed_mentions=NO_PINGS, **_view(view)
            )
            return message.id

        return await self._with_token(edit_original, content, view)

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        channel = self._channel()
        if channel is not None:
            message = await channel.send(sendable(content), allowed_mentions=NO_PINGS, **_view(view))
            return message.id

        async def followup() -> int | None:
            sent = await self._interaction.followup.send(
                sendable(content), ephemeral=self._ephemeral, allowed_mentions=NO_PINGS, wait=True, **_view(view)
            )
            return sent.id

        return await self._with_token(followup, content, view)

    async def tell(self, content: str) -> None:
        await self._interaction.response.send_message(sendable(content), ephemeral=True, allowed_mentions=NO_PINGS)


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
