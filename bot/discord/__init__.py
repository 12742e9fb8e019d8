"""Docent's Discord features, one module per thing a user can do: ask (mentions, replies, DMs, /ask),
admin (/reindex) and feedback (vote buttons, /feedback). Plain ``discord.Client`` + ``app_commands``:
Docent has no prefix commands, so nothing here uses ``discord.ext.commands``."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord

if TYPE_CHECKING:
    from bot.discord.client import DocentBot


def docent(interaction: discord.Interaction) -> DocentBot:
    """The bot behind an interaction. Commands reach it this way so the same command definitions can be
    synced by a bare client (``python -m bot sync``) that never receives interactions."""
    return cast("DocentBot", interaction.client)
