"""The Discord client: wiring, intents, command sync and the owned background indexer."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Callable
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.admission import Admission
from bot.conversations import Conversations
from bot.replies import NO_PINGS
from indexer.runner import Indexer
from indexer.sources import DocumentSource
from rag.errors import describe, new_error_id
from rag.feedback import FeedbackStore
from rag.metrics import Metrics
from rag.models import IndexReport
from rag.pipeline import AnswerPipeline
from rag.settings import Settings

logger = logging.getLogger(__name__)

SourceFactory = Callable[[str | None], list[DocumentSource]]


def point_at(settings: Settings) -> None:
    """Talk to the configured Discord API and gateway (Discord itself, a compatible server, or a test fake)."""
    discord.http.Route.BASE = settings.discord.api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url)


def make_intents(settings: Settings) -> discord.Intents:
    """Least privilege: mentions and DMs carry their text without the privileged Message Content intent;
    it is requested only to answer un-mentioned follow-ups in the bot's threads."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = settings.bot.thread_followups_without_mention
    return intents


ENGINE_DIED = 3  # exit code: the engine died and the process should be restarted
ENGINE_CHECK_S = 2.0


class DocentBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        pipeline: AnswerPipeline,
        indexer: Indexer,
        sources: SourceFactory,
        feedback: FeedbackStore,
        *,
        metrics: Metrics | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=make_intents(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **options,
        )
        self.settings = settings
        self.pipeline = pipeline
        self.indexer = indexer
        self.sources = sources
        self.feedback = feedback
        self.metrics = metrics or Metrics()
        self.admission = Admission(
            concurrency=settings.bot.max_concurrent_answers,
            max_queue=settings.bot.max_queue,
            cooldown_s=settings.bot.user_cooldown_s,
            guild_per_minute=settings.bot.guild_questions_per_minute,
        )
        self.conversations = Conversations(max_turns=settings.bot.history_turns)
        self.last_index_report: IndexReport | None = None
        self.exit_code = 0
        self._closing: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def setup_hook(self) -> None:
        from bot.cogs.admin import AdminCog
        from bot.cogs.ask import AskCog
        from bot.cogs.feedback import FeedbackCog, VoteButton

        await self.add_cog(AskCog(self))
        await self.add_cog(AdminCog(self))
        await self.add_cog(FeedbackCog(self))
        self.add_dynamic_items(VoteButton)
        self.tree.on_error = self.on_app_command_error
        await self.sync_commands_if_changed()
        if self.settings.indexer.schedule_minutes > 0:
            self.spawn(self._periodic_index(), name="periodic-index")
        if self.pipeline is not None:
            self.spawn(self._watch_engine(), name="engine-watchdog")

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: discord.app_commands.AppCommandError
    ) -> None:
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

    def health(self) -> dict[str, Any]:
        """What /healthz reports: ok only when connected to Discord and the engine is alive."""
        ready = self.is_ready() and not self.is_closed()
        engine = self.pipeline is not None and self.pipeline.healthy()
        last = self.metrics.last_index
        return {
            "status": "ok" if ready and engine else "unhealthy",
            "discord_ready": ready,
            "gateway_latency_ms": round(self.latency * 1000, 1) if ready and math.isfinite(self.latency) else None,
            "engine_alive": engine,
            "indexing": self.indexer.lock.locked(),
            "last_index_run": None if last is None else dataclasses.asdict(last),
            "queue": self.admission.waiting,
        }

    def spawn(self, coro: Any, *, name: str) -> asyncio.Task[None]:
        """Start a task the bot owns: kept until done, errors logged, cancelled on close."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().close()

    async def _watch_engine(self) -> None:
        """A dead vLLM engine can't be revived in-process: exit with ENGINE_DIED so the supervisor
        (Docker's restart policy, systemd) starts a fresh process. Until then answers fail fast."""
        while True:
            await asyncio.sleep(ENGINE_CHECK_S)
            if not self.pipeline.healthy():
                logger.error(
                    "the language model engine died; exiting (code %d) for the supervisor to restart", ENGINE_DIED
                )
                self.exit_code = ENGINE_DIED
                self._closing = asyncio.get_running_loop().create_task(self.close())
                return

    async def _periodic_index(self) -> None:
        interval = self.settings.indexer.schedule_minutes * 60
        while True:
            try:
                self.last_index_report = await self.indexer.run(self.sources(None))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic index run failed; next try in %.0f s", interval)
            await asyncio.sleep(interval)

    def _command_fingerprint(self, guild: discord.abc.Snowflake | None) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync_commands_if_changed(self, *, force: bool = False) -> bool:
        """Sync deliberately: to the dev guild if set, else globally, and only when the command set changed."""
        guild_id = self.settings.discord.dev_guild_id
        guild = discord.Object(id=guild_id) if guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        marker = self.settings.data_dir / f"commands-{guild_id or 'global'}.sha256"
        fingerprint = self._command_fingerprint(guild)
        if not force and marker.exists() and marker.read_text().strip() == fingerprint:
            logger.info("slash commands unchanged; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(fingerprint)
        logger.info("synced %d slash commands to %s", len(synced), f"guild {guild_id}" if guild_id else "all guilds")
        return True
