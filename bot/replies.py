"""Where an answer goes: a message reply (or thread post), or an interaction response. Never pings."""

from __future__ import annotations

import logging
from typing import Protocol

import discord

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()


class Replier(Protocol):
    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Replace the answer message's content; returns its id."""
        ...

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        """Post an extra message (the rest of a long answer); returns its id."""
        ...


class MessageReplier:
    """Answers in a channel or thread by editing a placeholder message the bot posted."""

    def __init__(self, placeholder: discord.Message, channel: discord.abc.Messageable) -> None:
        self._placeholder = placeholder
        self._channel = channel

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        kwargs = {"view": view} if view is not None else {}
        await self._placeholder.edit(content=content, allowed_mentions=NO_PINGS, **kwargs)
        return self._placeholder.id

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        kwargs = {"view": view} if view is not None else {}
        message = await self._channel.send(content, allowed_mentions=NO_PINGS, **kwargs)
        return message.id


class InteractionReplier:
    """Answers a deferred slash command: edits the original response, follow-ups for overflow."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        kwargs = {"view": view} if view is not None else {}
        message = await self._interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS, **kwargs)
        return message.id

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        kwargs = {"view": view} if view is not None else {}
        message = await self._interaction.followup.send(
            content, ephemeral=self._ephemeral, allowed_mentions=NO_PINGS, wait=True, **kwargs
        )
        return message.id


async def edit_quietly(replier: Replier, content: str) -> None:
    """Progress edits are best effort: a failed one (rate limit, network) must not fail the answer."""
    try:
        await replier.edit(content)
    except discord.HTTPException as exc:
        logger.warning("progress edit failed: %s", exc)
