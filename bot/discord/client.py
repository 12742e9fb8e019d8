"""The Discord client: wiring, intents, command sync, the server allow-list and the owned background tasks.

A plain ``discord.Client`` with an ``app_commands.CommandTree``: Docent has no prefix commands, and a prefix
bot (``commands.Bot(command_prefix=when_mentioned)``) reads every mention as a command and logs an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import discord
import yarl
from discord import app_commands

from bot.discord import admin, ask, feedback, learned
from bot.discord.ask import Asker
from bot.discord.feedback import DiscordFollowUps, NotYetButton, SolvedButton, VoteButton
from bot.discord.learned import LearnedButton
from bot.discord.permissions import PermissionCheck
from bot.discord.replies import NO_PINGS
from bot.discord.state import TOKEN_LIFETIME_S, DiscordState
from bot.services import Services
from rag.errors import describe, new_error_id
from rag.settings import Settings

logger = logging.getLogger(__name__)

SYNC_RETRY_DELAYS = (10.0, 30.0, 60.0, 300.0, 900.0)  # then every 900 s until a sync lands


def point_at(settings: Settings) -> None:
    """Talk to the configured Discord API and gateway (Discord itself, a compatible server, or a test fake)."""
    discord.http.Route.BASE = settings.discord.api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url)


def make_intents(settings: Settings, *, support_channels: bool = False) -> discord.Intents:
    """Least privilege: mentions and DMs carry their text without the privileged Message Content intent;
    it is requested only to answer un-mentioned follow-ups in the bot's threads, or new questions in
    auto/always support channels."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = settings.bot.thread_followups_without_mention or support_channels
    intents.guild_reactions = support_channels  # a moderator's 🚫 on a new question
    return intents


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Every slash command, one module per feature; usable on a bare client to sync."""
    ask.add_commands(tree, settings)
    admin.add_commands(tree, settings)
    feedback.add_commands(tree, settings)
    learned.add_commands(tree, settings)


class DocentTree(app_commands.CommandTree["DocentBot"]):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Every command, context menus included, only in allowed servers (see ``DiscordState.allows``)."""
        state = getattr(interaction.client, "state", None)
        return not isinstance(state, DiscordState) or not await state.refuse_unless_allowed(interaction)

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """The last resort for a failing command: one friendly line with an id that is also logged."""
        error_id = new_error_id()
        original = getattr(error, "original", error)
        logger.error(
            "command %s failed (error id %s)",
            interaction.command and interaction.command.name,
            error_id,
            exc_info=original,
        )
        message = describe(original, error_id)
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=message, allowed_mentions=NO_PINGS)
            else:
                await interaction.response.send_message(message, ephemeral=True, allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            logger.warning("could not tell the user about error %s", error_id)


class DocentBot(discord.Client):
    """The Discord front-end over the shared ``Services``. Normally ``__main__`` owns the services and closes them
    after every front-end; with ``own_services`` (tests, benchmarks: Discord alone) the bot starts and closes them."""

    def __init__(
        self,
        services: Services,
        *,
        own_services: bool = False,
        support_channels: bool = False,
        sync_retry_delays: Sequence[float] = SYNC_RETRY_DELAYS,
        interaction_token_s: float = TOKEN_LIFETIME_S,
        **options: Any,
    ) -> None:
        settings = services.settings
        super().__init__(
            intents=make_intents(settings, support_channels=support_channels), allowed_mentions=NO_PINGS, **options
        )
        self._owns_services = own_services
        self.services = services
        self.settings = settings
        self.state = DiscordState(
            services, self, support_channels=support_channels, token_lifetime_s=interaction_token_s
        )
        self.commands_synced = asyncio.Event()  # set once Discord has the current slash commands
        self.tree = DocentTree(self)
        add_commands(self.tree, settings)
        self.asker = Asker(self.state)
        self.permission_check = PermissionCheck(self.state)
        self._sync_retry_delays = tuple(sync_retry_delays) or SYNC_RETRY_DELAYS
        self._closing: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton, SolvedButton, NotYetButton, LearnedButton)
        self.services.followups.register("discord", DiscordFollowUps(self.state))
        # Synced in the background: a rejected sync (a 400 for the payload, a 5xx, a 429) must not stop the bot
        # from answering mentions.
        self.spawn(self._sync_until_done(), name="command-sync")
        if self._owns_services:
            self.services.start()
            self.spawn(self._close_when_stopped(), name="close-on-stop")

    # -- events -----------------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        await self.asker.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.asker.on_reaction(payload)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        if await self._stays_in(guild):
            await self.permission_check.check(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if await self._stays_in(guild):
            await self.permission_check.check(guild)

    async def _stays_in(self, guild: discord.Guild) -> bool:
        """With ``discord.allowed_guild_ids`` set, a server that adds the bot uninvited is left at once."""
        allowed = self.settings.discord.allowed_guild_ids
        if not allowed or guild.id in allowed:
            return True
        logger.warning("leaving server %r (%d): it is not in discord.allowed_guild_ids", guild.name, guild.id)
        try:
            await guild.leave()
        except discord.HTTPException as exc:
            logger.error("could not leave server %d: %s", guild.id, exc)
        return False

    # -- health and owned tasks ---------------------------------------------------------------------------

    async def connected(self) -> bool:
        """Whether the gateway connection is up, for the health of a process running more than Discord."""
        return self.is_ready() and not self.is_closed()

    def health(self) -> dict[str, Any]:
        """The shared health, with Discord's connection and gateway latency."""
        ready = self.is_ready() and not self.is_closed()
        state = self.services.health({"discord": ready})
        state["gateway_latency_ms"] = round(self.latency * 1000, 1) if ready and math.isfinite(self.latency) else None
        return state

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str, finish_on_close: bool = False) -> asyncio.Task[None]:
        return self.state.spawn(coro, name=name, finish_on_close=finish_on_close)

    async def close(self) -> None:
        self.services.followups.unregister("discord")
        await self.state.tasks.close()
        if self._owns_services:
            await self.services.close()
        await super().close()

    async def _close_when_stopped(self) -> None:
        """Standalone (own services): the engine watchdog's stop closes the bot; ``__main__`` does this otherwise."""
        await self.services.stop.wait()
        self._closing = asyncio.get_running_loop().create_task(self.close())

    # -- slash command sync -------------------------------------------------------------------------------

    async def _sync_until_done(self) -> None:
        """Retry with backoff until Discord takes the commands; each failure is logged with its reason."""
        for attempt in itertools.count():
            try:
                await self.sync_commands_if_changed()
                self.commands_synced.set()
                return
            except Exception as exc:
                delay = self._sync_retry_delays[min(attempt, len(self._sync_retry_delays) - 1)]
                if isinstance(exc, discord.RateLimited):
                    delay = max(delay, exc.retry_after)
                logger.error(
                    "slash command sync failed (%s); mentions still work; retrying in %.0f s", _reason(exc), delay
                )
                await asyncio.sleep(delay)

    async def sync_commands_if_changed(self, *, force: bool = False) -> bool:
        return await sync_commands_if_changed(self.tree, self.settings, force=force)


def _reason(exc: Exception) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}, code {exc.code}: {exc.text or exc.response.reason}"
    if isinstance(exc, discord.RateLimited):
        return f"rate limited for {exc.retry_after:.0f} s"
    return f"{type(exc).__name__}: {exc}"


def _command_fingerprint(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_commands_if_changed(
    tree: app_commands.CommandTree[Any], settings: Settings, *, force: bool = False
) -> bool:
    """Sync deliberately: to the dev guild if set, else globally, and only when the command set changed. Discord
    keeps commands per application, so the marker is too: a new application (token) on the same data dir syncs."""
    guild_id = settings.discord.dev_guild_id
    guild = discord.Object(id=guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    application_id = tree.client.application_id  # known once logged in, as ``tree.sync`` needs it
    if application_id is None:
        raise app_commands.MissingApplicationID()
    marker = settings.data_dir / f"commands-{application_id}-{guild_id or 'global'}.sha256"
    fingerprint = _command_fingerprint(tree, guild)
    if not force and await asyncio.to_thread(_marker_matches, marker, fingerprint):
        logger.info("slash commands unchanged; not syncing")
        return False
    synced = await tree.sync(guild=guild)
    await asyncio.to_thread(_write_marker, marker, fingerprint)
    logger.info("synced %d slash commands to %s", len(synced), f"guild {guild_id}" if guild_id else "all guilds")
    return True


def _marker_matches(marker: Path, fingerprint: str) -> bool:
    return bool(marker.exists() and marker.read_text().strip() == fingerprint)


def _write_marker(marker: Path, fingerprint: str) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint)


async def sync_now(settings: Settings, token: str) -> None:
    """``python -m bot sync``: push the commands with a bare client; no models, no gateway connection."""
    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    add_commands(tree, settings)
    async with client:
        await client.login(token)
        await sync_commands_if_changed(tree, settings, force=True)
