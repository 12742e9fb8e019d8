"""Discord's part of starting the bot: ``check`` before any model loads, then ``async with running(...)`` for the
connection's lifetime. ``bot.__main__`` runs each platform the same way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import discord

from bot.discord.client import DocentBot, point_at
from bot.services import Services
from rag.settings import Settings, secret_text

logger = logging.getLogger(__name__)


async def check(settings: Settings) -> str | None:
    """Point discord.py at the configured API, then ask Discord whether the token is valid before spending a
    minute loading models; None means fine."""
    point_at(settings)
    api_base, token = settings.discord.api_base, secret_text(settings.discord.token)
    url = api_base.rstrip("/") + "/users/@me"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
            session.get(url, headers={"Authorization": f"Bot {token}"}) as response,
        ):
            if response.status == 401:
                return (
                    "Discord rejected the bot token (DOCENT_DISCORD__TOKEN). Copy it again from the Developer Portal."
                )
            if response.status >= 400:
                return f"Discord answered {response.status} when checking the bot token."
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"cannot reach Discord at {api_base}: {exc or type(exc).__name__}"
    return None


async def message_content_enabled(token: str) -> bool:
    """Whether the Developer Portal lets this bot have the privileged Message Content intent (the application's
    flags, as ``application_info()`` reads them at login); asking for it otherwise makes Discord close the
    connection (4014). A bare client on the configured API (``point_at``), no gateway connection."""
    client = discord.Client(intents=discord.Intents.none())
    try:
        async with client:
            await client.login(token)
            flags = client.application_flags  # login read them from application_info()
            return flags.gateway_message_content or flags.gateway_message_content_limited
    except (discord.DiscordException, aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("could not read the application's flags (%s); assuming Message Content is off", exc)
        return False


async def support_channels_on(services: Services, token: str) -> bool:
    """Whether Discord channels may answer new questions unasked: some are set to, and the intent that shows
    their text is available. Without it each such channel gets one warning and answers mentions only."""
    wanted = await services.channels.unasked("discord")
    if not wanted:
        return False
    if await message_content_enabled(token):
        return True
    for channel in wanted:
        logger.warning(
            "Discord channel %s is set to answer new questions, but the Message Content intent is off in the "
            "Developer Portal: it answers mentions only until the intent is on and the bot restarts",
            channel,
        )
    return False


@contextlib.asynccontextmanager
async def running(services: Services, token: str) -> AsyncIterator[DocentBot]:
    """The Discord bot, connected for the duration of the block; if it closes by itself it stops the process
    (``services.stop``), and what made it close (a rejected token) is raised on leaving. A stop during the login
    or the connection cuts them short: that is not a failure."""
    bot = DocentBot(services, support_channels=await support_channels_on(services, token))
    async with bot:
        task = None if services.stop.is_set() else asyncio.create_task(bot.start(token), name="discord")
        if task is not None:
            task.add_done_callback(lambda _: services.stop.set())
        try:
            yield bot
        finally:
            if task is not None and task.done():
                task.result()  # it ended by itself: its reason (LoginFailure, …) is the process's
            await bot.close()
            if task is not None:
                try:
                    await task
                except (aiohttp.ClientError, OSError, discord.ConnectionClosed):
                    logger.info("the Discord connection was cut short by the stop")
