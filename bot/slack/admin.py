"""The reindex command in Slack: admins only (workspace admins and owners by ``users.info``, plus
``slack.admin_user_ids``), checked in the handler; progress edited into a channel message, then the summary. The run
itself is the shared ``Services.reindex``, single-flight with Discord's /reindex and the periodic run."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import MODES, describe
from bot.services import Place, Services
from bot.slack.render import escape

logger = logging.getLogger(__name__)
ADMINS_ONLY = "Only workspace admins and owners (or users in `slack.admin_user_ids`) can {action}."


async def is_admin(client: AsyncWebClient, user_id: str, admin_user_ids: list[str]) -> bool:
    """A workspace admin or owner, or a user the operator named; a failed lookup is a no."""
    if user_id in admin_user_ids:
        return True
    try:
        response = await client.users_info(user=user_id)
    except Exception as exc:
        logger.warning("slack users.info for %s failed: %s", user_id, exc)
        return False
    user = response.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


class SlackReindexer:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_reindex(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()  # at once: the admin check below is a Web API call
        user, channel = str(body.get("user_id")), str(body.get("channel_id"))
        source = str(body.get("text") or "").strip() or None
        if not await is_admin(client, user, self.services.settings.slack.admin_user_ids):
            await respond(text=ADMINS_ONLY.format(action="reindex"), response_type="ephemeral")
            return
        place = Place("slack", str(body.get("team_id") or ""))
        refusal = self.services.reindex_refusal(place, source)
        if refusal is not None:
            await respond(text=escape(refusal), response_type="ephemeral")
            return
        posted: dict[str, str] = {}

        async def on_start(text: str) -> None:
            try:
                response = await client.chat_postMessage(channel=channel, text=text)
                posted["ts"] = str(response["ts"])
            except Exception as exc:  # not in the channel: the asker alone hears how it went
                logger.info("slack reindex: cannot post in %s (%s); answering privately", channel, exc)
                await respond(text=text, response_type="ephemeral")

        async def progress(text: str) -> None:
            if "ts" in posted:
                try:
                    await client.chat_update(channel=channel, ts=posted["ts"], text=text)
                except Exception as exc:
                    logger.warning("slack reindex progress edit failed: %s", exc)

        summary = escape(await self.services.reindex(place, source, on_start=on_start, progress=progress))
        try:
            if "ts" in posted:
                await client.chat_update(channel=channel, ts=posted["ts"], text=summary)
                return
        except Exception as exc:
            logger.warning("slack reindex summary edit failed (%s); telling the admin privately", exc)
        await respond(text=summary, response_type="ephemeral")


class SlackChannelModes:
    """The channel command: shows this channel's mode, or sets it (admins; kept over ``config/channels.toml``)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def on_channel(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = str(body.get("user_id")), str(body.get("channel_id"))
        mode = str(body.get("text") or "").strip().lower()
        channels = self.services.channels
        if mode and not await is_admin(client, user, self.services.settings.slack.admin_user_ids):
            await respond(text=ADMINS_ONLY.format(action="change a channel's mode"), response_type="ephemeral")
            return
        if mode:
            if mode not in MODES:
                await respond(
                    text=f"Unknown mode `{escape(mode)}`. {describe(await channels.policy('slack', channel))}"
                )
                return
            await channels.set_mode("slack", channel, mode)
            logger.info("slack channel %s set to %s by %s", channel, mode, user)
        await respond(text=describe(await channels.policy("slack", channel)), response_type="ephemeral")
