"""Admin commands: /reindex (refresh the docs index; one run at a time, not too often per server) and
/docent-channel (how Docent behaves in a channel)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands

from bot.channels import MODES, describe
from bot.discord import docent
from bot.discord.permissions import refused_unless_admin
from bot.discord.replies import NO_PINGS
from bot.discord.state import DiscordState
from bot.services import Place
from bot.text import sendable
from rag.settings import Settings

logger = logging.getLogger(__name__)


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    @app_commands.command(name="reindex", description="Refresh the docs index now (admins only).")
    @app_commands.describe(source="Only this source id (default: all)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def reindex(interaction: discord.Interaction, source: str | None = None) -> None:
        await Reindexer(docent(interaction)).reindex(interaction, source)

    tree.add_command(reindex)

    @app_commands.command(name="docent-channel", description="Show how Docent behaves in this channel, or set it.")
    @app_commands.describe(mode="Set the mode (Manage Server only)")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in MODES])
    @app_commands.guild_only()
    async def channel_mode(interaction: discord.Interaction, mode: app_commands.Choice[str] | None = None) -> None:
        await set_channel_mode(interaction, mode.value if mode else None)

    tree.add_command(channel_mode)


NEEDS_CONTENT = (
    " New questions here are answered only once the Message Content intent is on in the Developer Portal and "
    "the bot has restarted; until then, mentions."
)


async def set_channel_mode(interaction: discord.Interaction, mode: str | None) -> None:
    """Anyone may see the mode; only admins may set it (kept in SQLite, over config/channels.toml)."""
    bot = docent(interaction)
    channel = interaction.channel
    if channel is None:
        return
    if mode is not None:
        if await refused_unless_admin(interaction, bot.settings.discord.admin_role_ids, "change a channel's mode"):
            return
        await bot.services.channels.set_mode("discord", channel.id, mode)
        logger.info("discord channel %s set to %s by %s", channel.id, mode, interaction.user.id)
    policy = await bot.channel_policy(channel)
    note = NEEDS_CONTENT if policy.mode in ("auto", "always") and not bot.support_channels else ""
    await _private(interaction, describe(policy) + note)


class Reindexer:
    """Runs /reindex through the shared ``Services.reindex`` (single-flight with the periodic run and with Slack's
    /reindex; the indexer's file lock makes it refuse rather than queue behind another process). Discord's part:
    the deferral, progress edits while the interaction token lives, and the summary."""

    def __init__(
        self,
        state: DiscordState,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = state
        self._token_lifetime_s = state.token_lifetime_s
        self._clock = clock

    async def reindex(self, interaction: discord.Interaction, source: str | None) -> None:
        if await refused_unless_admin(interaction, self.bot.settings.discord.admin_role_ids, "reindex"):
            return
        place = Place("discord", interaction.guild_id)
        refusal = self.bot.services.reindex_refusal(place, source)
        if refusal is not None:
            await _private(interaction, refusal)
            return
        started = self._clock()

        async def on_start(_: str) -> None:
            await interaction.response.defer(thinking=True)

        async def progress(text: str) -> None:
            if self._token_valid(started):
                await _edit(interaction, text)

        message = await self.bot.services.reindex(place, source, on_start=on_start, progress=progress)
        await self._tell(interaction, started, message)

    def _token_valid(self, started: float) -> bool:
        return self._clock() - started < self._token_lifetime_s

    async def _tell(self, interaction: discord.Interaction, started: float, content: str) -> None:
        """The final word: into the response while its token lives, else (or if that fails) into the channel."""
        if self._token_valid(started) and await _edit(interaction, content):
            return
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            logger.warning("reindex finished but there is no channel to tell: %s", content)
            return
        try:
            await channel.send(sendable(content), allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            logger.warning("could not post the reindex summary: %s", exc)


async def _private(interaction: discord.Interaction, content: str) -> None:
    await interaction.response.send_message(sendable(content), ephemeral=True, allowed_mentions=NO_PINGS)


async def _edit(interaction: discord.Interaction, content: str) -> bool:
    try:
        await interaction.edit_original_response(content=sendable(content), allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        logger.warning("reindex response edit failed: %s", exc)
        return False
    return True
