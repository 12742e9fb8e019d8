"""A loopback fake of Slack's Web API (HTTP) and Socket Mode (a websocket handed out by ``apps.connections.open``),
so tests drive the real slack_sdk and slack-bolt clients; only the far end of the socket is fake.

Typical use::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        ...
        envelope = await slack.mention("C1", "U1", "<@UBOT> how do I index?")
        await slack.wait_acked(envelope)

Realism that tests can rely on (each is what Slack does):

- Every Socket Mode envelope must be acknowledged within ``ack_timeout`` (3 s); otherwise it is delivered again
  with ``retry_attempt`` + 1 and ``retry_reason`` "timeout", up to three retries, like the Events API.
- ``chat.postMessage`` / ``chat.update`` fail with ``msg_too_long`` over 40,000 characters of text, with
  ``invalid_blocks`` over 50 blocks or a section text over 3,000 characters, with ``not_in_channel`` in a channel
  the bot has not joined, and with ``invalid_auth`` for a wrong token.
- ``rate_limit(method, retry_after)`` makes the next call of a method answer 429 ``ratelimited`` with Retry-After.
- ``notifications`` records every mention or broadcast the bot's messages would trigger: ``<!channel>``,
  ``<!here>``, ``<!everyone>``, ``<!subteam^…>`` and ``<@U…>``, in text and in blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

TEXT_LIMIT, MAX_BLOCKS, SECTION_LIMIT = 40_000, 50, 3000
_NOTIFY = re.compile(r"<(!channel|!here|!everyone|!subteam\^[^>|]+|@[UW][A-Z0-9]+)[^>]*>")


@dataclass
class Posted:
    """One message as the bot last left it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    versions: int = 1


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict[str, Any]
    deliveries: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    response: dict[str, Any] | None = None


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake",
        app_token: str = "xapp-fake",
        team_id: str = "T0FAKE",
        bot_user_id: str = "UBOT",
        ack_timeout: float = 3.0,
        max_retries: int = 3,
    ) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id = team_id, bot_user_id
        self.ack_timeout, self.max_retries = ack_timeout, max_retries
        self.joined: set[str] = {"C1"}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, Posted] = {}  # ts -> message
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.notifications: list[tuple[str, str]] = []  # (ts, the control sequence)
        self.envelopes: dict[str, Envelope] = {}
        self._limits: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False) -> None:
        self.users[user_id] = {"id": user_id, "name": name, "is_admin": admin, "is_owner": owner}

    def rate_limit(self, method: str, retry_after: float = 1) -> None:
        self._limits[method] = retry_after

    # -- Web API -----------------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(parse_qsl(await request.text()))
        for key in ("blocks", "attachments"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        self.calls.append((method, args))
        if method in self._limits:
            retry_after = self._limits.pop(method)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(int(retry_after))}
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or args.get("token", "")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(args)
        return web.json_response(result)

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": self.bot_user_id, "team_id": self.team_id, "bot_id": "B" + self.bot_user_id}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _check_message(self, args: dict[str, Any]) -> str | None:
        text, blocks = str(args.get("text") or ""), args.get("blocks") or []
        if str(args.get("channel")) not in self.joined:
            return "not_in_channel"
        if len(text) > TEXT_LIMIT:
            return "msg_too_long"
        if len(blocks) > MAX_BLOCKS or any(
            b.get("type") == "section" and len(b.get("text", {}).get("text", "")) > SECTION_LIMIT for b in blocks
        ):
            return "invalid_blocks"
        if not text and not blocks:
            return "no_text"
        return None

    async def changed(self) -> None:
        """Return once any message is posted or edited."""
        await self._change.wait()

    def _written(self, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """A message was posted or edited: record what it would notify, and wake ``changed()`` waiters."""
        self._change.set()
        self._change = asyncio.Event()
        for match in _NOTIFY.finditer(text + "\n" + json.dumps(blocks)):
            self.notifications.append((ts, match.group(0)))

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._check_message(args)
        if error:
            return {"ok": False, "error": error}
        ts = f"{1700000000 + next(self._ids)}.000100"
        message = Posted(
            str(args["channel"]), ts, str(args.get("text") or ""), args.get("blocks") or [], args.get("thread_ts")
        )
        self.messages[ts] = message
        self._written(ts, message.text, message.blocks)
        return {"ok": True, "channel": message.channel, "ts": ts, "message": {"text": message.text, "ts": ts}}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._check_message(args)
        if error:
            return {"ok": False, "error": error}
        message = self.messages.get(str(args.get("ts")))
        if message is None or message.channel != args.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        message.text, message.blocks = str(args.get("text") or ""), args.get("blocks") or []
        message.versions += 1
        self._written(message.ts, message.text, message.blocks)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    # -- Socket Mode -------------------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self._sockets), "connection_info": {}})
        self._connected.set()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            ack = json.loads(message.data)
            envelope = self.envelopes.get(str(ack.get("envelope_id")))
            if envelope is not None and not envelope.acked.is_set():
                envelope.response = ack.get("payload")
                envelope.acked.set()
        self._sockets.remove(ws)
        return ws

    async def wait_connected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def deliver(self, kind: str, payload: dict[str, Any]) -> Envelope:
        """Send an envelope over the live socket; redeliver it until acknowledged (as Slack retries)."""
        await self.wait_connected()
        envelope = Envelope(f"env-{next(self._ids)}", kind, payload)
        self.envelopes[envelope.envelope_id] = envelope
        task = asyncio.create_task(self._send_until_acked(envelope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return envelope

    async def _send_until_acked(self, envelope: Envelope) -> None:
        for attempt in range(self.max_retries + 1):
            envelope.deliveries += 1
            body = {
                "envelope_id": envelope.envelope_id,
                "type": envelope.type,
                "payload": envelope.payload,
                "accepts_response_payload": envelope.type != "events_api",
                "retry_attempt": attempt,
                "retry_reason": "timeout" if attempt else "",
            }
            for ws in list(self._sockets):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_json(body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(envelope.acked.wait(), self.ack_timeout)
                return

    async def wait_acked(self, envelope: Envelope, timeout: float = 10) -> None:
        await asyncio.wait_for(envelope.acked.wait(), timeout)

    async def mention(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> Envelope:
        ts = f"{1700000000 + next(self._ids)}.000200"
        event = {"type": "app_mention", "user": user, "text": text, "channel": channel, "ts": ts, "team": self.team_id}
        if thread_ts:
            event["thread_ts"] = thread_ts
        payload = {"type": "event_callback", "team_id": self.team_id, "event": event, "event_id": f"Ev{ts}"}
        return await self.deliver("events_api", payload)

    async def slash(self, command: str, text: str, *, user: str, channel: str = "C1") -> Envelope:
        payload = {
            "command": command,
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": self.team_id,
            "response_url": f"http://127.0.0.1:{self.port}/response/{next(self._ids)}",
            "trigger_id": f"trigger-{next(self._ids)}",
        }
        return await self.deliver("slash_commands", payload)
