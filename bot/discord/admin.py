"""/reindex: admins refresh the docs index on demand; one run at a time, and not too often per server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord import docent
from bot.replies import NO_PINGS
from bot.text import sendable
from indexer.lock import IndexerBusy
from rag.errors import describe, new_error_id
from rag.settings import Settings

if TYPE_CHECKING:
    from bot.client import DocentBot

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0
TOKEN_LIFETIME_S = 14 * 60.0  # Discord's interaction tokens last 15 minutes; stop using one a little before


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


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    @app_commands.command(name="reindex", description="Refresh the docs index now (admins only).")
    @app_commands.describe(source="Only this source id (default: all)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def reindex(interaction: discord.Interaction, source: str | None = None) -> None:
        await docent(interaction).reindexer.reindex(interaction, source)

    tree.add_command(reindex)


class Reindexer:
    """Runs /reindex. The bot's ``index_guard`` makes it single-flight with the periodic run; the file lock
    inside the indexer (``wait=False``) makes it refuse rather than queue behind another process."""

    def __init__(
        self,
        bot: DocentBot,
        *,
        token_lifetime_s: float = TOKEN_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self._token_lifetime_s = token_lifetime_s
        self._clock = clock
        self._last_start: dict[int, float] = {}  # guild id -> when its last run started

    async def reindex(self, interaction: discord.Interaction, source: str | None) -> None:
        if await refused_unless_admin(interaction, self.bot.settings.discord.admin_role_ids, "reindex"):
            return
        guard = self.bot.index_guard
        if guard.locked():
            progress = self.bot.indexer.progress
            seen = progress.pages_seen if progress else 0
            await _private(interaction, f"A reindex is already running ({seen} pages read so far).")
            return
        wait = self._cooldown_left(interaction.guild_id)
        if wait > 0:
            await _private(interaction, f"⏳ This server reindexed recently; try again in {wait:.0f}s.")
            return
        sources = self.bot.sources(source)
        if not sources:
            await _private(interaction, f"No configured source has id `{source}`.")
            return
        # No await between the locked() check above and taking the guard: an unlocked asyncio.Lock is taken
        # without suspending, so two admins at once cannot both get here.
        async with guard:
            started = self._clock()
            if interaction.guild_id is not None:
                self._last_start[interaction.guild_id] = started
            await interaction.response.defer(thinking=True)
            pump = asyncio.create_task(self._pump_progress(interaction, started), name="reindex-progress")
            try:
                report = await self.bot.indexer.run(sources, wait=False)
            except IndexerBusy as exc:
                logger.info("reindex refused: %s", exc)
                message = describe(exc, new_error_id())
            except Exception as exc:
                error_id = new_error_id()
                logger.warning("reindex failed (error id %s)", error_id, exc_info=True)
                message = describe(exc, error_id)
            else:
                self.bot.last_index_report = report
                message = f"✅ Reindex done: {report.summary()}"
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
            await self._tell(interaction, started, message)

    def _cooldown_left(self, guild_id: int | None) -> float:
        last = self._last_start.get(guild_id) if guild_id is not None else None
        if last is None:
            return 0.0
        return self.bot.settings.bot.reindex_cooldown_s - (self._clock() - last)

    def _token_valid(self, started: float) -> bool:
        return self._clock() - started < self._token_lifetime_s

    async def _pump_progress(self, interaction: discord.Interaction, started: float) -> None:
        """Edit progress into the response every couple of seconds (one edit in flight at a time)."""
        while self._token_valid(started):
            await asyncio.sleep(PROGRESS_EVERY_S)
            report = self.bot.indexer.progress
            if report is not None and self._token_valid(started):
                done = f"{report.pages_seen} pages read, {report.chunks_written} chunks written"
                await _edit(interaction, f"⏳ Reindexing… {done}")

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
