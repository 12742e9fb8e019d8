"""What Docent's Discord features share: the process's services and Discord's own pieces. Features are handed
this, never the client, so they don't import it; the client imports them and keeps one of these."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.answering import AnswerFlow
from bot.bounded import BoundedMap
from bot.conversations import Conversations
from bot.discord.replies import NO_PINGS
from bot.services import Services
from bot.support import SupportDesk
from bot.tasks import OwnedTasks
from rag.settings import ChannelPolicy, Settings

logger = logging.getLogger(__name__)
NOT_ALLOWED = "Docent is not enabled for this server."
TOKEN_LIFETIME_S = 14 * 60.0  # Discord's interaction tokens last 15 minutes; stop using one a little before


@dataclass
class DiscordState:
    services: Services
    client: discord.Client  # for who Docent is (``user``) and channel lookups; never for features
    support_channels: bool = False  # new questions are visible (Message Content) and answered
    token_lifetime_s: float = TOKEN_LIFETIME_S
    conversations: Conversations = field(init=False)
    flow: AnswerFlow = field(init=False)
    # Support questions by the question's message id (a thread made from a message has the message's id).
    desk: SupportDesk = field(init=False)
    no_threads: BoundedMap[int, None] = field(init=False)  # channels where a thread was refused (logged once)
    tasks: OwnedTasks = field(init=False)

    def __post_init__(self) -> None:
        self.conversations = Conversations(max_turns=self.services.settings.bot.history_turns)
        self.flow = AnswerFlow(self.services, "discord")
        self.desk = SupportDesk(self.services, self.flow)
        self.no_threads = BoundedMap(1000)
        self.tasks = OwnedTasks()

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def allows(self, guild_id: int | None) -> bool:
        """``discord.allowed_guild_ids``, checked on every event: leaving a server can fail, and a user-installed
        command reaches Docent from servers it was never added to. Direct messages have their own setting."""
        allowed = self.settings.discord.allowed_guild_ids
        return not allowed or guild_id is None or guild_id in allowed

    async def refuse_unless_allowed(self, interaction: discord.Interaction) -> bool:
        """True (and the user told, privately) when this interaction comes from a server Docent must not serve."""
        if self.allows(interaction.guild_id):
            return False
        logger.warning("refused an interaction from server %s: not in discord.allowed_guild_ids", interaction.guild_id)
        if not interaction.response.is_done():
            await interaction.response.send_message(NOT_ALLOWED, ephemeral=True, allowed_mentions=NO_PINGS)
        return True

    async def channel_policy(self, channel: Any) -> ChannelPolicy:
        """The channel's policy: its own entry, else its parent's (a forum or the thread's channel), else its
        category's."""
        parent = getattr(channel, "parent", None)
        category = getattr(parent or channel, "category_id", None)
        return await self.services.channels.policy("discord", channel.id, getattr(parent, "id", None), category)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str, finish_on_close: bool = False) -> asyncio.Task[None]:
        """Discord-only work (command sync, notices) is cancelled with the bot; shared work goes to the services."""
        if finish_on_close:
            return self.services.spawn(coro, name=name, finish_on_close=True)
        return self.tasks.spawn(coro, name=name)
