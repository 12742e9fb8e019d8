"""The fake Slack behaves like Slack where it matters, checked with the real slack_sdk clients."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.bot.slack.fake_slack import FakeSlack


async def test_web_api_checks_tokens_and_slack_limits() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        assert (await client.auth_test())["user_id"] == slack.bot_user_id
        with pytest.raises(SlackApiError, match="invalid_auth"):
            await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_base).auth_test()
        with pytest.raises(SlackApiError, match="msg_too_long"):
            await client.chat_postMessage(channel="C1", text="x" * 40_001)
        with pytest.raises(SlackApiError, match="invalid_blocks"):
            await client.chat_postMessage(channel="C1", text="t", blocks=[{"type": "divider"}] * 51)
        with pytest.raises(SlackApiError, match="invalid_blocks"):
            section = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
            await client.chat_postMessage(channel="C1", text="t", blocks=[section])
        with pytest.raises(SlackApiError, match="not_in_channel"):
            await client.chat_postMessage(channel="C2", text="hello")
        posted = await client.chat_postMessage(channel="C1", text="first")
        await client.chat_update(channel="C1", ts=posted["ts"], text="second <!here> <@U123>")
        assert slack.messages[posted["ts"]].text.startswith("second") and slack.messages[posted["ts"]].versions == 2
        assert [n for _, n in slack.notifications] == ["<!here>", "<@U123>"]


async def test_ratelimited_calls_are_retried_by_slack_sdks_handler() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        slack.rate_limit("chat.postMessage", retry_after=0)
        with pytest.raises(SlackApiError, match="ratelimited"):
            await client.chat_postMessage(channel="C1", text="no retry handler")
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
        slack.rate_limit("chat.postMessage", retry_after=0)
        assert (await client.chat_postMessage(channel="C1", text="retried"))["ok"]
        assert [m for m, _ in slack.calls].count("chat.postMessage") == 3


async def test_socket_mode_envelopes_are_redelivered_until_acknowledged() -> None:
    async with FakeSlack(ack_timeout=0.2) as slack:
        web = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        socket = SocketModeClient(app_token=slack.app_token, web_client=web, auto_reconnect_enabled=False)
        seen: list[tuple[str, int]] = []

        async def on_request(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
            seen.append((request.type, request.retry_attempt or 0))
            if request.type != "events_api" or request.retry_attempt:  # the first event delivery goes unanswered
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

        socket.socket_mode_request_listeners.append(on_request)
        await socket.connect()
        try:
            envelope = await slack.mention("C1", "U1", "<@UBOT> hi")
            await slack.wait_acked(envelope)  # only after Slack sent it again
            assert seen == [("events_api", 0), ("events_api", 1)] and envelope.deliveries == 2
            command = await slack.slash("/ask", "how?", user="U1")
            await slack.wait_acked(command)
            assert command.deliveries == 1
        finally:
            await socket.close()
