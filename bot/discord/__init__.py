"""Docent's Discord features, one module per thing a user can do: ask (mentions, replies, DMs, /ask),
admin (/reindex, /docent-channel), feedback (vote buttons, /feedback) and learned (community answers). Plain
``discord.Client`` + ``app_commands``: Docent has no prefix commands, so nothing here uses ``discord.ext.commands``.
Features are handed a ``DiscordState`` (``bot.discord.state``), never the client."""

from __future__ import annotations

import discord

from bot.discord.state import DiscordState


def docent(interaction: discord.Interaction) -> DiscordState:
    """What a command or button works with. Commands reach it through the client so the same command definitions
    can be synced by a bare client (``python -m bot sync``) that never receives interactions."""
    state = getattr(interaction.client, "state", None)
    if not isinstance(state, DiscordState):
        raise RuntimeError("this interaction did not reach Docent's client")
    return state
