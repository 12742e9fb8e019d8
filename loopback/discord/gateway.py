"""The gateway: a websocket that says hello, takes IDENTIFY (closing with 4014 when the app may not have the
Message Content intent it asks for), answers heartbeats, resumes and member requests, and dispatches events to
every identified session with their intent, message content blanked as Discord blanks it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from loopback.discord.core import Core
from loopback.discord.state import (
    DIRECT_MESSAGES,
    GUILD_MESSAGES,
    MESSAGE_CONTENT,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
)


@dataclass
class _Session:
    ws: web.WebSocketResponse
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    intents: int = 0
    identified: bool = False
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))


class Gateway(Core):
    """The gateway's sessions, and dispatching events to them."""

    heartbeat_interval: float
    echo_bot_messages: bool
    gateway_log: list[GatewayFrame]
    presence: dict[str, Any] | None
    _sessions: list[_Session]
    _ready: asyncio.Event
    _tasks: set[asyncio.Task[None]]

    async def wait_ready(self, timeout: float = 10) -> None:
        """Until the bot has identified and been sent READY + GUILD_CREATE (``client.wait_until_ready`` is later)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        """Send a raw DISPATCH to every identified session (that has ``intent``, if given).

        Nothing from a server the bot has left reaches it any more, as on Discord.
        """
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        if guild_id is not None and int(guild_id) in self.left_guilds:
            return
        for session in list(self._sessions):
            if session.identified and (intent is None or session.intents & intent):
                payload = self._visible_to(session, data) if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") else data
                await self._send(session, {"op": 0, "t": event, "d": payload})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.append(session)
        try:
            await self._send(session, {"op": 10, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_log.append(GatewayFrame(self.now(), "received", frame))
                await self._on_op(session, frame)
                self._bump()
        finally:
            self._sessions.remove(session)
            self._bump()
        return ws

    async def _on_op(self, session: _Session, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == 1:  # heartbeat
            await self._send(session, {"op": 11})
        elif op == 2:  # identify
            if int(data.get("intents", 0)) & MESSAGE_CONTENT and not self.message_content_enabled:
                await session.ws.close(code=4014, message=b"Disallowed intent(s).")  # as Discord does
                return
            self.identify = data
            session.intents = int(data.get("intents", 0))
            session.identified = True
            ready = {
                "v": 10,
                "user": self._bot_user(),
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "session_type": "normal",
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "geo_ordered_rtc_regions": [],
                "guild_join_requests": [],
            }
            if "shard" in data:
                ready["shard"] = data["shard"]
            await self._send(session, {"op": 0, "t": "READY", "d": ready})
            await self._send(session, {"op": 0, "t": "GUILD_CREATE", "d": self.guild_payload()})
            self._ready.set()
        elif op == 6:  # resume: we keep no backlog, so just say it worked
            session.intents = session.intents or int((self.identify or {}).get("intents", 0))
            session.identified = True
            await self._send(session, {"op": 0, "t": "RESUMED", "d": {}})
        elif op == 3:
            self.presence = data
        elif op == 8:  # request guild members: answer with what we know in one chunk
            chunk = {
                "guild_id": str(self.guild_id),
                "members": list(self.members.values()),
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            await self._send(session, {"op": 0, "t": "GUILD_MEMBERS_CHUNK", "d": chunk})

    async def _send(self, session: _Session, frame: dict[str, Any]) -> None:
        async with session.lock:
            if frame.get("op") == 0:
                session.seq += 1
                frame["s"] = session.seq
            else:
                frame.setdefault("s", None)
            frame.setdefault("t", None)
            self.gateway_log.append(GatewayFrame(self.now(), "sent", frame))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(json.dumps(frame))

    def _spawn_dispatch(self, event: str, data: dict[str, Any], intent: int) -> None:
        """Setup helpers are sync; if a bot is connected, tell it about the change in the background."""
        if any(s.identified for s in self._sessions):
            task = asyncio.get_running_loop().create_task(self.dispatch(event, data, intent=intent))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ensure_connected(self) -> None:
        if not self._ready.is_set():
            await self.wait_ready()

    def _visible_to(self, session: _Session, message: dict[str, Any]) -> dict[str, Any]:
        """Blank what a bot without MESSAGE_CONTENT must not see: not its own, not a DM, not mentioning it."""
        if session.intents & MESSAGE_CONTENT:
            return message
        bot = str(self.bot_user_id)
        visible = (
            message.get("guild_id") is None
            or message["author"]["id"] == bot
            or any(u["id"] == bot for u in message.get("mentions", []))
        )
        out = dict(message)
        if not visible:
            out.update(content="", embeds=[], attachments=[], components=[])
            out.pop("poll", None)
        if out.get("referenced_message"):
            out["referenced_message"] = self._visible_to(session, out["referenced_message"])
        return out

    async def _dispatch_message(self, event: str, rec: MessageRecord) -> None:
        if rec.ephemeral or (rec.by_bot and not self.echo_bot_messages):
            return
        data = dict(rec.payload)
        in_guild = data.get("guild_id") is not None
        if in_guild and data.get("webhook_id") is None:
            data["member"] = self._partial_member(rec.author_id)
        await self.dispatch(event, data, intent=GUILD_MESSAGES if in_guild else DIRECT_MESSAGES)

    async def _dispatch_interaction(self, ix: InteractionRecord) -> None:
        self.interactions[ix.token] = ix
        ix.created_at = self.now()
        await self.dispatch("INTERACTION_CREATE", ix.payload)
