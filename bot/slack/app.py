"""The Slack app: slack-bolt's ``AsyncApp`` over a Web API client pointed at ``slack.api_base``, so tests and
Slack-compatible servers can stand in; ``ratelimited`` answers are retried after Retry-After by slack_sdk."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.ask import SlackAsker
from rag.errors import ConfigError
from rag.pipeline import AnswerPipeline
from rag.settings import Settings, secret_text


def web_client(settings: Settings) -> AsyncWebClient:
    token = secret_text(settings.slack.bot_token)
    if not token:
        raise ConfigError("no Slack bot token: set DOCENT_SLACK__BOT_TOKEN (xoxb-…)")
    client = AsyncWebClient(token=token, base_url=settings.slack.api_base)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def build_app(settings: Settings, pipeline: AnswerPipeline) -> AsyncApp:
    """Mentions are acknowledged at once (bolt acks before the listener runs) and answered after."""
    client = web_client(settings)
    app = AsyncApp(client=client, request_verification_enabled=False)
    asker = SlackAsker(settings, pipeline)

    @app.event("app_mention")
    async def mention(body: dict[str, Any], client: AsyncWebClient) -> None:
        await asker.on_mention(body, client)

    return app
