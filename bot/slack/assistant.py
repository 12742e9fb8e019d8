"""Slack's assistant side panel (Agents & AI Apps): a new thread gets the suggested prompts from
``slack.assistant_prompts``; messages in it are answered like mentions (``SlackAsker.on_message``), under the
status "Searching the docs…"."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from rag.settings import SlackSettings

logger = logging.getLogger(__name__)
MAX_PROMPTS = 4  # Slack shows at most four


async def suggest_prompts(body: dict[str, Any], client: AsyncWebClient, settings: SlackSettings) -> None:
    thread = (body.get("event") or {}).get("assistant_thread") or {}
    prompts = [{"title": p.title, "message": p.message} for p in settings.assistant_prompts[:MAX_PROMPTS]]
    if not prompts or not thread.get("channel_id"):
        return
    try:
        await client.assistant_threads_setSuggestedPrompts(
            channel_id=str(thread["channel_id"]), thread_ts=str(thread.get("thread_ts")), prompts=prompts
        )
    except Exception as exc:
        logger.warning("slack suggested prompts failed: %s", exc)
