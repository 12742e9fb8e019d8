"""Reading a Slack thread Docent was mentioned in: its opening message and latest replies."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.threads import Said, transcript
from rag.settings import BotSettings

logger = logging.getLogger(__name__)


async def read_thread(
    client: AsyncWebClient, channel: str, root: str, asked: str, me: str, settings: BotSettings
) -> tuple[str, ...]:
    """What was said in the thread ``root`` before the message ``asked``, for the prompt (``bot.threads``).
    ``conversations.replies`` needs the history scope of the channel's kind; without it, nothing is read and
    Docent answers the message alone."""
    limit = settings.thread_context_messages
    if limit <= 0:
        return ()
    try:
        # The opening message and the replies just before the question (a long thread's middle matters least).
        response = await client.conversations_replies(channel=channel, ts=root, limit=200)
    except Exception as exc:  # no scope, not in the channel, rate limited: answer without the thread
        logger.info("slack thread %s/%s unreadable (%s); answering the message alone", channel, root, exc)
        return ()
    messages: list[dict[str, Any]] = list(response.get("messages") or [])
    asker = str(messages[0].get("user") or "") if messages else ""
    said = []
    for message in messages:
        if float(message.get("ts") or 0) >= float(asked):
            break
        user = str(message.get("user") or "")
        role = "docent" if user == me else "asker" if user == asker else "member"
        said.append(Said(role, str(message.get("text") or "")))
    return transcript("", said, max_messages=limit, max_chars=settings.thread_context_chars)
