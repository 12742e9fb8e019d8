"""/reindex: admins refresh the docs index on demand, one run at a time."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import NO_PINGS
from rag.errors import describe, new_error_id

if TYPE_CHECKING:
    from bot.client import DocentBot

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0


def is_admin(member: discord.abc.User, admin_role_ids: list[int]) -> bool:
    """Checked in the handler too: server admins can override a command's default permissions."""
    if not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_guild or member.guild_permissions.administrator:
        return True
    return any(role.id in admin_role_ids for role in member.roles)


async def refused_unless_admin(interaction: discord.Interaction, admin_role_ids: list[int], action: str) -> bool:
    """Tell a non-admin, privately, that ``action`` is for admins; True if they were refused."""
    if is_admin(interaction.user, admin_role_ids):
        return False
    await interaction.response.send_message(
        f"Only members with Manage Server (or a Docent admin role) can {action}.",
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )
    return True


class AdminCog(commands.Cog):
    def __init__(self, bot: DocentBot) -> None:
        self.bot = bot

    @app_commands.command(name="reindex", description="Refresh the docs index now (admins only).")
    @app_commands.describe(source="Only this source id (default: all)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def reindex(self, interaction: discord.Interaction, source: str | None = None) -> None:
        if await refused_unless_admin(interaction, self.bot.settings.discord.admin_role_ids, "reindex"):
            return
        if self.bot.indexer.lock.locked():
            progress = self.bot.indexer.progress
            seen = progress.pages_seen if progress else 0
            await interaction.response.send_message(
                f"A reindex is already running ({seen} pages read so far).", ephemeral=True, allowed_mentions=NO_PINGS
            )
            return
        await interaction.response.defer(thinking=True)
        sources = self.bot.sources(source)
        if not sources:
            await _edit(interaction, f"No configured source has id `{source}`.")
            return

        pump = asyncio.create_task(self._pump_progress(interaction), name="reindex-progress")
        try:
            report = await self.bot.indexer.run(sources)
            self.bot.last_index_report = report
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await _edit(interaction, f"✅ Reindex done: {report.summary()}")
        except Exception as exc:
            error_id = new_error_id()
            logger.exception("reindex failed (error id %s)", error_id)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await _edit(interaction, describe(exc, error_id))

    async def _pump_progress(self, interaction: discord.Interaction) -> None:
        """Edit progress into the response every couple of seconds (one edit in flight at a time)."""
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            report = self.bot.indexer.progress
            if report is not None:
                done = f"{report.pages_seen} pages read, {report.chunks_written} chunks written"
                await _edit(interaction, f"⏳ Reindexing… {done}")


async def _edit(interaction: discord.Interaction, content: str) -> None:
    try:
        await interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        logger.warning("reindex progress edit failed: %s", exc)
