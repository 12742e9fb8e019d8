"""The Slack app: slack-bolt's ``AsyncApp`` over a Web API client pointed at ``slack.api_base`` (so tests and
Slack-compatible servers can stand in; ``ratelimited`` answers are retried after Retry-After by slack_sdk), with one
listener per feature. Events are acknowledged by bolt before the listener runs; commands and buttons ack first."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack.admin import SlackChannelModes, SlackReindexer
from bot.slack.ask import SlackAsker
from bot.slack.assistant import suggest_prompts
from bot.slack.feedback import SlackFollowUps, SlackSolved, SlackVotes
from bot.slack.learned import APPROVE, EDIT, EDIT_VIEW, REJECT, TEACH, SlackLearned
from bot.slack.render import SOLVED, VOTE_DOWN, VOTE_UP
from rag.errors import ConfigError
from rag.settings import Settings, secret_text

logger = logging.getLogger(__name__)
NOT_ALLOWED = "Docent is not enabled for this workspace."


def web_client(settings: Settings) -> AsyncWebClient:
    token = secret_text(settings.slack.bot_token)
    if not token:
        raise ConfigError("no Slack bot token: set DOCENT_SLACK__BOT_TOKEN (xoxb-…)")
    client = AsyncWebClient(token=token, base_url=settings.slack.api_base)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


async def check(settings: Settings) -> str | None:
    """Ask Slack (``auth.test``) whether the bot token is valid before loading models; None means fine."""
    try:
        await web_client(settings).auth_test()
    except SlackApiError as exc:
        if exc.response.get("error") in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
            return (
                "Slack rejected the bot token (DOCENT_SLACK__BOT_TOKEN). Copy the xoxb- token again from the app page."
            )
        return f"Slack answered {exc.response.get('error')} when checking the bot token."
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return f"cannot reach Slack at {settings.slack.api_base}: {exc or type(exc).__name__}"
    return None


def build_app(services: Services) -> AsyncApp:
    settings = services.settings
    # bolt's request verification stays on: Socket Mode requests skip it, and an HTTP request must be signed.
    app = AsyncApp(client=web_client(settings))
    asker = SlackAsker(services)
    reindexer = SlackReindexer(services)
    votes = SlackVotes(services, on_down=asker.needs_help)
    allowed = set(settings.slack.allowed_team_ids)

    @app.middleware
    async def only_allowed_workspaces(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """With ``slack.allowed_team_ids`` set, another workspace's events are acknowledged and dropped, and its
        commands told no."""
        if not allowed or context.team_id in allowed or context.enterprise_id in allowed:
            await next()
            return None
        logger.warning("ignoring a request from workspace %s: not in slack.allowed_team_ids", context.team_id)
        return BoltResponse(status=200, body=NOT_ALLOWED if body.get("command") else "")

    @app.event("app_mention")
    async def mention(body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await asker.on_mention(body, client, context.bot_user_id)

    # bolt's message listener takes what people write: plain messages, and those with a file (file_share) or sent
    # to the channel from a thread (thread_broadcast); with no words (a file alone) it doesn't run.
    @app.message()
    async def message(body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await asker.on_message(body, client, context.bot_user_id)

    @app.event("message")
    async def other_message() -> None:
        return None  # edits, deletions, joins: acknowledged (an unhandled event is redelivered), not answered

    @app.event("reaction_added")
    async def reaction(body: dict[str, Any], client: AsyncWebClient) -> None:
        await asker.on_reaction(body, client)

    @app.event("assistant_thread_started")
    async def thread_started(body: dict[str, Any], client: AsyncWebClient) -> None:
        await suggest_prompts(body, client, settings.slack)

    @app.event("assistant_thread_context_changed")
    async def context_changed() -> None:
        return None  # the panel moved to another channel; Docent's answers don't depend on it

    app.command(settings.slack.ask_command)(asker.on_ask)
    app.command(settings.slack.reindex_command)(reindexer.on_reindex)
    app.command(settings.slack.channel_command)(SlackChannelModes(services).on_channel)
    learned = SlackLearned(services)
    app.command(settings.slack.learned_command)(learned.on_command)
    for action in (APPROVE, EDIT, REJECT):
        app.action(action)(learned.on_decide)
    app.view(EDIT_VIEW)(learned.on_edit_submitted)

    @app.shortcut(TEACH)
    async def teach(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await learned.on_teach(ack, body, client, respond, lambda channel, thread: asker.support.get((channel, thread)))

    app.action(VOTE_UP)(votes.on_vote)
    app.action(VOTE_DOWN)(votes.on_vote)
    app.action(SOLVED)(SlackSolved(services, asker.asker_of).on_solved)
    services.followups.register("slack", SlackFollowUps(app.client))
    return app


@contextlib.asynccontextmanager
async def running(services: Services) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """The Slack app connected over Socket Mode for the duration of the block. slack_sdk's client reconnects by
    itself (after Slack's ``disconnect`` message, a closed socket or failing pings); what it yields is the client's
    own ``is_connected``, which health reports: a closed, stale or unanswered socket is down."""
    app = build_app(services)
    handler = AsyncSocketModeHandler(app, secret_text(services.settings.slack.app_token), web_client=app.client)
    await handler.connect_async()
    logger.info("connected to Slack (Socket Mode)")
    try:
        yield handler.client.is_connected
    finally:
        services.followups.unregister("slack")
        await handler.close_async()
