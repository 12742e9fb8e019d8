"""The fake Slack behaves like Slack where it matters, checked with the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import (
    AsyncAck,
    AsyncApp,
    AsyncAssistant,
    AsyncRespond,
    AsyncSay,
    AsyncSayStream,
    AsyncSetStatus,
    AsyncSetSuggestedPrompts,
    AsyncSetTitle,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from loopback.slack import TIERS, Ephemeral, FakeSlack

T = TypeVar("T")


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


async def test_chat_update_and_stream_stop_keep_to_their_tiers() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        slack.tiers["chat.update"] = 3  # Tier 3 is 50 a minute; three keep the test short
        posted = await client.chat_postMessage(channel="C1", text="first")
        for n in range(3):
            await client.chat_update(channel="C1", ts=posted["ts"], text=f"edit {n}")
        with pytest.raises(SlackApiError, match="ratelimited") as refused:
            await client.chat_update(channel="C1", ts=posted["ts"], text="one too many")
        assert 0 < int(refused.value.response.headers["Retry-After"]) <= 60
        slack.advance(60)
        await client.chat_update(channel="C1", ts=posted["ts"], text="a minute later")
        assert slack.throttled == ["chat.update"] and TIERS["chat.stopStream"] == 20


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
            envelope = await slack.mention("C1", "U1", "<@UBOT> hi", paired=False)
            await slack.wait_acked(envelope)  # only after Slack sent it again
            assert seen == [("events_api", 0), ("events_api", 1)] and envelope.deliveries == 2
            command = await slack.slash("/ask", "how?", user="U1")
            await slack.wait_acked(command)
            assert command.deliveries == 1
        finally:
            await socket.close()


def _app(slack: FakeSlack) -> AsyncApp:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
    return AsyncApp(client=client)


@asynccontextmanager
async def _connected(slack: FakeSlack, app: AsyncApp) -> AsyncIterator[None]:
    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=app.client)
    await handler.connect_async()
    try:
        yield
        for envelope in list(slack.envelopes.values()):  # bolt's last acks go out before the socket closes
            await slack.wait_acked(envelope)
    finally:
        await handler.close_async()


async def _next(queue: asyncio.Queue[T]) -> T:
    return await asyncio.wait_for(queue.get(), 10)


async def test_message_events_reach_bolt_as_slack_sends_them() -> None:
    async with FakeSlack() as slack:
        app, seen = _app(slack), asyncio.Queue[dict[str, Any]]()

        @app.event("message")
        async def on_message(event: dict[str, Any]) -> None:
            await seen.put(event)

        async with _connected(slack, app):
            envelope = await slack.message("C1", "U1", "how do I index?", thread_ts="1700000000.000200")
            event = await _next(seen)
            direct = await slack.message("D1", "U1", "hi", channel_type="im")
            im = await _next(seen)
    assert envelope.payload["type"] == "event_callback" and envelope.payload["team_id"] == slack.team_id
    assert event == envelope.payload["event"] and event["ts"] and event["thread_ts"] == "1700000000.000200"
    assert (event["type"], event["channel"], event["user"], event["channel_type"]) == ("message", "C1", "U1", "channel")
    assert im["ts"] == direct.payload["event"]["ts"] and im["channel_type"] == "im" and "thread_ts" not in im
    assert slack.echoes == [], "no echoes unless asked for"


async def test_the_bots_own_posts_come_back_as_message_events_that_bolt_ignores() -> None:
    async with FakeSlack(echo_bot_messages=True) as slack:
        app, seen = _app(slack), asyncio.Queue[dict[str, Any]]()

        @app.event("message")
        async def on_message(event: dict[str, Any]) -> None:
            await seen.put(event)

        async with _connected(slack, app):
            posted = await app.client.chat_postMessage(channel="C1", text="an answer", thread_ts="1700000000.000200")
            [echo] = slack.echoes
            await slack.wait_acked(echo)
            user = await slack.message("C1", "U1", "thanks")
            after = await _next(seen)
    event = echo.payload["event"]
    assert (event["type"], event["ts"], event["thread_ts"]) == ("message", posted["ts"], "1700000000.000200")
    assert event["bot_id"] == slack.bot_id and event["user"] == slack.bot_user_id and event["text"] == "an answer"
    assert after["ts"] == user.payload["event"]["ts"], "bolt dropped the echo of its own post (auth.test ids match)"


async def test_a_response_url_takes_five_messages_within_slacks_limits() -> None:
    async with FakeSlack() as slack:
        app, answered = _app(slack), asyncio.Queue[list[tuple[int, str | None]]]()

        @app.command("/ask")
        async def ask(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
            await ack("on it")
            if command["text"] == "six":
                sent = [await respond(f"answer {n} <@U2>") for n in range(6)]
                await answered.put([(r.status_code, json.loads(r.body).get("error")) for r in sent])

        async with _connected(slack, app):
            busy = await slack.slash("/ask", "six", user="U1")
            codes = await _next(answered)
            quiet = await slack.slash("/ask", "how?", user="U1")
            await slack.wait_acked(quiet)
            webhook = AsyncWebhookClient(url=quiet.payload["response_url"])
            too_long = await webhook.send(text="x" * 40_001)
            section = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
            bad_blocks = await webhook.send(text="t", blocks=[section])
            shown = await webhook.send(text="for all <!here>", response_type="in_channel")
    assert busy.response == {"text": "on it"}, "the ack payload is the immediate ephemeral answer"
    assert codes == [(200, None)] * 5 + [(404, "used_too_many_times")]
    assert [r["text"] for r in slack.responses_to(busy)] == [f"answer {n} <@U2>" for n in range(5)]
    assert {r["response_type"] for r in slack.responses_to(busy)} == {"ephemeral"}
    assert (too_long.status_code, json.loads(too_long.body)["error"]) == (400, "msg_too_long")
    assert (bad_blocks.status_code, json.loads(bad_blocks.body)["error"]) == (400, "invalid_blocks")
    [record] = slack.responses_to(quiet)
    assert shown.status_code == 200 and record["response_type"] == "in_channel" and not record["replace_original"]
    assert [n for _, n in slack.notifications] == ["<@U2>"] * 5 + ["<!here>"]
    assert slack.messages == {}, "responses are not the bot's posts"


async def test_ephemeral_messages_follow_postmessage_rules() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        with pytest.raises(SlackApiError, match="not_in_channel"):
            await client.chat_postEphemeral(channel="C2", user="U1", text="hello")
        with pytest.raises(SlackApiError, match="msg_too_long"):
            await client.chat_postEphemeral(channel="C1", user="U1", text="x" * 40_001)
        with pytest.raises(SlackApiError, match="invalid_blocks"):
            await client.chat_postEphemeral(channel="C1", user="U1", text="t", blocks=[{"type": "divider"}] * 51)
        woken = asyncio.create_task(slack.changed())
        sent = await client.chat_postEphemeral(channel="C1", user="U1", text="only you <!here>", thread_ts="1.2")
        await asyncio.wait_for(woken, 10)
        direct = await client.chat_postEphemeral(channel="D7", user="U1", text="in a DM")
    assert slack.ephemeral == [
        Ephemeral("C1", "U1", sent["message_ts"], "only you <!here>", [], "1.2"),
        Ephemeral("D7", "U1", direct["message_ts"], "in a DM", [], None),
    ]
    assert slack.notifications == [(sent["message_ts"], "<!here>")] and slack.messages == {}


async def test_clicks_carry_slacks_block_actions_payload_and_answer_through_their_response_url() -> None:
    button = {"type": "button", "action_id": "helpful", "text": {"type": "plain_text", "text": "Helpful"}}
    async with FakeSlack() as slack:
        slack.add_user("U1", "ada")
        app, clicks = _app(slack), asyncio.Queue[dict[str, Any]]()

        @app.action("helpful")
        async def helpful(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            await respond(text="Thanks for the feedback", replace_original=True)
            await clicks.put(body)

        @app.action("source")
        async def source(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            await respond(delete_original=True)
            await clicks.put(body)

        async with _connected(slack, app):
            blocks: list[dict[str, Any]] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": "HNSW is a graph."}},
                {"type": "actions", "block_id": "feedback", "elements": [{**button, "value": "yes"}]},
            ]
            posted = await app.client.chat_postMessage(channel="C1", text="HNSW", blocks=blocks, thread_ts="1.2")
            envelope = await slack.click(posted["ts"], "helpful", user="U1")
            body = await _next(clicks)
            with pytest.raises(AssertionError, match="no button 'helpful'"):
                await slack.click(posted["ts"], "helpful", user="U1")  # the answer replaced the message
            accessory = {**button, "action_id": "source"}
            more = await app.client.chat_postMessage(
                channel="C1",
                text="more",
                blocks=[{"type": "section", "text": blocks[0]["text"], "accessory": accessory}],
            )
            deleting = await slack.click(more["ts"], "source", user="U2", value="override")
            overridden = await _next(clicks)
            with pytest.raises(AssertionError, match="no message"):
                await slack.click(more["ts"], "source", user="U2")  # the click deleted it
    assert body == envelope.payload and body["type"] == "block_actions" and body["team"]["id"] == slack.team_id
    assert body["user"] == {"id": "U1", "username": "ada", "name": "ada", "team_id": slack.team_id}
    assert body["channel"]["id"] == "C1" and body["trigger_id"]
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    assert (body["message"]["ts"], body["message"]["thread_ts"], body["message"]["blocks"]) == (
        posted["ts"],
        "1.2",
        blocks,
    )
    [action] = body["actions"]
    assert (action["type"], action["action_id"], action["block_id"], action["value"]) == (
        "button",
        "helpful",
        "feedback",
        "yes",
    )
    assert action["action_ts"]
    [response] = slack.responses_to(envelope)
    assert response["replace_original"] and response["ts"] == posted["ts"]
    replaced = slack.messages[posted["ts"]]
    assert (replaced.text, replaced.blocks, replaced.versions) == ("Thanks for the feedback", [], 2)
    assert overridden["actions"][0]["value"] == "override" and overridden["actions"][0]["block_id"]
    assert slack.responses_to(deleting)[0]["delete_original"] and more["ts"] not in slack.messages
    assert overridden["response_url"] != body["response_url"]


async def test_an_assistant_thread_through_bolts_assistant_middleware() -> None:
    async with FakeSlack(streaming=True) as slack:
        app, done, assistant = _app(slack), asyncio.Queue[str](), AsyncAssistant()

        @assistant.thread_started
        async def started(say: AsyncSay, set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
            await say("Ask me about the docs")
            await set_suggested_prompts(prompts=[{"title": "Indexing", "message": "How do I index?"}], title="Try")
            await done.put("started")

        @assistant.user_message
        async def answer(
            payload: dict[str, Any],
            say: AsyncSay,
            set_status: AsyncSetStatus,
            set_title: AsyncSetTitle,
            say_stream: AsyncSayStream,
        ) -> None:
            await set_title(payload["text"])
            await set_status("is searching the docs…")
            await say("Searching…")  # bolt reads the thread context through conversations.replies first
            stream = await say_stream(buffer_size=8)
            await stream.append(markdown_text="HNSW is ")
            await stream.append(markdown_text="a graph index.")
            await stream.stop(blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": "1 source"}]}])
            await done.put("answered")

        app.assistant(assistant)
        async with _connected(slack, app):
            envelope = await slack.assistant_thread_started("U1")
            assert await _next(done) == "started"
            thread = envelope.payload["event"]["assistant_thread"]["thread_ts"]
            question = await slack.message("D1", "U1", "what is HNSW?", thread_ts=thread, channel_type="im")
            assert await _next(done) == "answered"
            history = await app.client.conversations_replies(channel="D1", ts=thread)
    event = envelope.payload["event"]
    assert event["type"] == "assistant_thread_started" and event["event_ts"]
    assert event["assistant_thread"] == {"user_id": "U1", "context": {}, "channel_id": "D1", "thread_ts": thread}
    prompts = [{"title": "Indexing", "message": "How do I index?"}]
    [suggested], [title], [status] = slack.suggested, slack.titles, slack.statuses  # bolt adds team_id
    assert suggested.items() >= {"channel_id": "D1", "thread_ts": thread, "title": "Try", "prompts": prompts}.items()
    assert title.items() >= {"channel_id": "D1", "thread_ts": thread, "title": "what is HNSW?"}.items()
    assert status.items() >= {"channel_id": "D1", "thread_ts": thread, "status": "is searching the docs…"}.items()
    greeting, searching, streamed = slack.messages.values()
    assert (greeting.channel, greeting.thread_ts, greeting.text) == ("D1", thread, "Ask me about the docs")
    assert (searching.thread_ts, streamed.thread_ts) == (thread, thread)
    assert (streamed.text, streamed.streaming, streamed.versions) == ("HNSW is a graph index.", False, 3)
    assert streamed.blocks[0]["type"] == "context"
    assert history["messages"][0]["subtype"] == "assistant_app_thread"
    assert [m["ts"] for m in history["messages"][1:]] == [
        greeting.ts,
        question.payload["event"]["ts"],
        searching.ts,
        streamed.ts,
    ]


async def test_assistant_methods_validate_like_slack() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        prompt = {"title": "Indexing", "message": "How do I index?"}
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            await client.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts="1.2", prompts=[prompt] * 5)
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            await client.assistant_threads_setSuggestedPrompts(
                channel_id="D1", thread_ts="1.2", prompts=[{"title": "no message"}]
            )
        with pytest.raises(SlackApiError, match="invalid_arguments"):
            await client.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts="", prompts=[prompt])
        await client.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts="1.2", prompts=[prompt] * 4)
        await client.assistant_threads_setStatus(
            channel_id="D1", thread_ts="1.2", status="is thinking…", loading_messages=["Reading the docs…"]
        )
    assert len(slack.suggested) == 1 and len(slack.suggested[0]["prompts"]) == 4
    assert slack.statuses == [
        {"channel_id": "D1", "thread_ts": "1.2", "status": "is thinking…", "loading_messages": ["Reading the docs…"]}
    ]


async def test_chat_streaming_is_off_unless_enabled_and_keeps_slacks_rules() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        with pytest.raises(SlackApiError, match="unknown_method"):
            await client.chat_startStream(channel="C1", thread_ts="1.2", markdown_text="hi")
    recipient: dict[str, Any] = {"recipient_team_id": "T0FAKE", "recipient_user_id": "U1"}
    async with FakeSlack(streaming=True) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        with pytest.raises(SlackApiError, match="missing_recipient_team_id"):
            await client.chat_startStream(channel="C1", thread_ts="1.2", markdown_text="hi")
        with pytest.raises(SlackApiError, match="not_in_channel"):
            await client.chat_startStream(channel="C2", thread_ts="1.2", markdown_text="hi", **recipient)
        started = await client.chat_startStream(channel="C1", thread_ts="1.2", markdown_text="<!chan", **recipient)
        ts = started["ts"]
        assert slack.messages[ts].streaming and slack.messages[ts].thread_ts == "1.2"
        await client.chat_appendStream(channel="C1", ts=ts, markdown_text="nel> is split")
        with pytest.raises(SlackApiError, match="msg_too_long"):
            await client.chat_appendStream(channel="C1", ts=ts, markdown_text="x" * 12_001)
        with pytest.raises(SlackApiError, match="message_not_found"):
            await client.chat_appendStream(channel="C1", ts="1.1", markdown_text="lost")
        footer = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "sources"}]}]
        await client.chat_stopStream(channel="C1", ts=ts, markdown_text=" <@U9>", blocks=footer)
        with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
            await client.chat_appendStream(channel="C1", ts=ts, markdown_text="late")
        with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
            await client.chat_stopStream(channel="C1", ts=ts)
    message = slack.messages[ts]
    assert (message.text, message.blocks, message.streaming, message.versions) == (
        "<!channel> is split <@U9>",
        footer,
        False,
        3,
    )
    assert slack.notifications == [(ts, "<!channel>"), (ts, "<@U9>")]


async def test_a_mention_comes_with_its_message_event_and_an_edit_mentions_again() -> None:
    async with FakeSlack() as slack:
        app, seen = _app(slack), asyncio.Queue[dict[str, Any]]()

        @app.event("app_mention")
        async def on_mention(body: dict[str, Any]) -> None:
            await seen.put(body)

        @app.event("message")
        async def on_message(body: dict[str, Any]) -> None:
            await seen.put(body)

        async with _connected(slack, app):
            envelope = await slack.mention("C1", "U1", "<@UBOT> how do I index?")
            first = {(await _next(seen))["event"]["type"], (await _next(seen))["event"]["type"]}
            ts = envelope.payload["event"]["ts"]
            mentioned, changed = await slack.edit("C1", ts, "<@UBOT> how do I index a folder?")
            again = [await _next(seen), await _next(seen)]
            [quiet] = await slack.edit("C1", ts, "never mind")
            unmentioned = await _next(seen)
            history = await app.client.conversations_replies(channel="C1", ts=ts)
    assert first == {"app_mention", "message"}
    pair = [e for e in slack.envelopes.values() if e.payload["event"].get("ts") == ts][:2]
    assert pair[0].payload["event_id"] != pair[1].payload["event_id"], "two events, two ids"
    assert pair[1].payload["event"]["channel_type"] == "channel"
    bodies = {body["event"]["type"]: body for body in again}
    mention = bodies["app_mention"]["event"]
    assert mention["ts"] == ts and mention["text"] == "<@UBOT> how do I index a folder?" and mention["edited"]["ts"]
    assert bodies["app_mention"]["event_id"] not in (envelope.payload["event_id"], changed.payload["event_id"])
    assert mentioned.payload == bodies["app_mention"]
    event = bodies["message"]["event"]
    assert (event["subtype"], event["message"]["ts"], event["previous_message"]["text"]) == (
        "message_changed",
        ts,
        "<@UBOT> how do I index?",
    )
    assert unmentioned == quiet.payload and unmentioned["event"]["subtype"] == "message_changed"
    assert history["messages"][0]["text"] == "never mind", "history shows the message as edited"


async def test_messages_with_a_file_or_sent_to_the_channel_from_a_thread_reach_bolts_message_listener() -> None:
    async with FakeSlack() as slack:
        app, seen = _app(slack), asyncio.Queue[dict[str, Any]]()

        @app.message()
        async def on_message(message: dict[str, Any]) -> None:
            await seen.put(message)

        async with _connected(slack, app):
            root = await slack.message("C1", "U1", "how do I index?")
            await _next(seen)
            shared = await slack.message("C1", "U1", "this error?", subtype="file_share")
            with_file = await _next(seen)
            ts = root.payload["event"]["ts"]
            broadcast = await slack.message("C1", "U2", "try nlist", thread_ts=ts, subtype="thread_broadcast")
            sent_too = await _next(seen)
    assert with_file == shared.payload["event"] and with_file["files"][0]["id"].startswith("F")
    assert sent_too == broadcast.payload["event"] and sent_too["root"]["ts"] == ts and sent_too["thread_ts"] == ts


async def test_a_trigger_id_opens_one_modal_within_three_seconds_and_views_update_needs_none() -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Edit"}, "blocks": []}
    async with FakeSlack() as slack:
        slack.add_user("U1", "ada")
        app, triggers = _app(slack), asyncio.Queue[str]()

        @app.command("/ask")
        async def ask(ack: AsyncAck, command: dict[str, Any]) -> None:
            await ack()
            await triggers.put(command["trigger_id"])

        async with _connected(slack, app):
            client = app.client
            await slack.slash("/ask", "", user="U1")
            trigger = await _next(triggers)
            opened = await client.views_open(trigger_id=trigger, view=modal)
            with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
                await client.views_open(trigger_id=trigger, view=modal)
            await slack.slash("/ask", "", user="U1")
            late = await _next(triggers)
            slack.advance(3.1)
            with pytest.raises(SlackApiError, match="expired_trigger_id"):
                await client.views_open(trigger_id=late, view=modal)
            await slack.slash("/ask", "", user="U1")
            slow = await _next(triggers)
            slack.latency["users.info"] = 3.5
            await client.users_info(user="U1")
            with pytest.raises(SlackApiError, match="expired_trigger_id"):
                await client.views_open(trigger_id=slow, view=modal)
            with pytest.raises(SlackApiError, match="invalid_trigger_id"):
                await client.views_open(trigger_id="made-up", view=modal)
            updated = {**modal, "title": {"type": "plain_text", "text": "Edited"}}
            await client.views_update(view_id=opened["view"]["id"], view=updated)
            with pytest.raises(SlackApiError, match="not_found"):
                await client.views_update(view_id="V0", view=updated)
    [shown] = slack.views
    assert shown["id"] == opened["view"]["id"] and shown["title"]["text"] == "Edited"


async def test_a_response_url_expires_after_thirty_minutes() -> None:
    async with FakeSlack() as slack:
        app = _app(slack)

        @app.command("/ask")
        async def ask(ack: AsyncAck) -> None:
            await ack()

        async with _connected(slack, app):
            command = await slack.slash("/ask", "how?", user="U1")
            await slack.wait_acked(command)
            webhook = AsyncWebhookClient(url=command.payload["response_url"])
            assert (await webhook.send(text="in time")).status_code == 200
            slack.advance(30 * 60 + 1)
            late = await webhook.send(text="too late")
    assert (late.status_code, json.loads(late.body)["error"]) == (404, "expired_url")
    assert [r["text"] for r in slack.responses_to(command)] == ["in time"]


async def test_the_socket_mode_client_reconnects_after_a_disconnect_message_and_a_dropped_socket() -> None:
    async with FakeSlack() as slack:
        app, seen = _app(slack), asyncio.Queue[str]()

        @app.event("app_mention")
        async def on_mention(event: dict[str, Any]) -> None:
            await seen.put(event["text"])

        handler = AsyncSocketModeHandler(app, slack.app_token, web_client=app.client)
        await handler.connect_async()
        try:
            await slack.wait_connected()
            await slack.disconnect()
            await slack.wait_connected(5, connections=2)  # a new connection before the old one is closed
            await slack.mention("C1", "U1", "<@UBOT> after a refresh", paired=False)
            assert await _next(seen) == "<@UBOT> after a refresh"
            slack.drop()
            await asyncio.sleep(0.2)
            assert not await handler.client.is_connected(), "the client saw its socket cut"
            await slack.wait_connected(30, connections=3)
            assert await handler.client.is_connected()
            await slack.mention("C1", "U1", "<@UBOT> after a drop", paired=False)
            assert await _next(seen) == "<@UBOT> after a drop"
        finally:
            await handler.close_async()
