"""Answer mentions in Slack: a threaded "Searching the docs…" reply at once, the answer streamed into it with
``chat.update`` at most every ``bot.edit_interval_s``, then the final blocks with sources and vote buttons."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import OrderedDict
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.render import SECTION_LIMIT, answer_blocks, mrkdwn
from rag.errors import DocentError, describe, new_error_id
from rag.pipeline import AnswerPipeline
from rag.settings import Settings

logger = logging.getLogger(__name__)
SEARCHING = "🔎 Searching the docs…"
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SEEN_EVENTS = 2048


def question_text(text: str) -> str:
    """The question in a mention: the bot's mention dropped and Slack's three escapes undone."""
    text = _USER_MENTION.sub(" ", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


class SlackAsker:
    """One answering path for mentions; an event Slack delivers twice (a retry after a lost ack) is answered once."""

    def __init__(self, settings: Settings, pipeline: AnswerPipeline) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _first_time(self, event_id: str) -> bool:
        if not event_id:
            return True
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > _SEEN_EVENTS:
            self._seen.popitem(last=False)
        return True

    async def on_mention(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        event = body.get("event") or {}
        if not self._first_time(str(body.get("event_id") or "")):
            logger.info("slack event %s delivered again; already answered", body.get("event_id"))
            return
        channel = str(event.get("channel"))
        thread = str(event.get("thread_ts") or event.get("ts"))
        placeholder = await client.chat_postMessage(channel=channel, thread_ts=thread, text=SEARCHING)
        await self.answer_into(client, channel, str(placeholder["ts"]), question_text(str(event.get("text") or "")))

    async def answer_into(self, client: AsyncWebClient, channel: str, ts: str, question: str) -> None:
        """Stream the answer into message ``ts``; any failure ends as a worded message in its place."""
        request_id = uuid.uuid4().hex[:12]
        interval = self._settings.bot.edit_interval_s
        last_edit, shown = time.monotonic(), ""
        try:
            async for update in self._pipeline.stream(question, request_id=request_id):
                if update.answer is not None:
                    # No vote buttons until their clicks are recorded (issue 11): a dead button errors in Slack.
                    text, blocks = answer_blocks(update.answer)
                    await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                    return
                if update.raw and time.monotonic() - last_edit >= interval:
                    partial = mrkdwn(update.text)[: SECTION_LIMIT - 2] + " …"
                    if partial != shown:
                        await client.chat_update(channel=channel, ts=ts, text=partial)
                        last_edit, shown = time.monotonic(), partial
        except Exception as exc:  # one bad question never takes the bot down; the user gets a worded reason
            error_id = new_error_id()
            if not isinstance(exc, DocentError):
                logger.exception("slack request %s failed (error id %s)", request_id, error_id)
            else:
                logger.warning("slack request %s: %s (error id %s)", request_id, type(exc).__name__, error_id)
            await client.chat_update(channel=channel, ts=ts, text=mrkdwn(describe(exc, error_id)))
