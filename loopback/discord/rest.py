"""The REST API's front door: every call is read (JSON or multipart), matched to its route, slowed down or failed
by an injected fault, answered with Discord's error body when its route raises ``DiscordError``, and recorded. The
routes of the gateway URL, users, the guild and the application are here; the others are in the ``rest_*``
modules."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from loopback.discord.errors import DiscordError, _json, _unknown
from loopback.discord.faults import Faults, _fault_response
from loopback.discord.rest_interactions import Interactions
from loopback.discord.rest_threads import Threads
from loopback.discord.state import _THREAD_TYPES, GUILDS, Handler, Recorded, _Request


class Rest(Threads, Interactions, Faults):
    """Routing and recording every REST call, and the routes of users, the guild and the application."""

    requests: list[Recorded]
    unhandled: list[Recorded]
    errors: list[BaseException]
    _routes: list[tuple[str, re.Pattern[str], Handler]]

    async def _http(self, request: web.Request) -> web.StreamResponse:
        raw_path = re.sub(r"^/api/v\d+", "", request.rel_url.raw_path) or "/"
        path = unquote(raw_path)
        method = request.method
        query = dict(request.query)
        started = self.now()
        body: Any = None
        files: tuple[str, ...] = ()
        route = None
        status, response = 200, None
        try:
            body, files = await _read_body(request)
            route = self._match(method, raw_path)
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    if fault.status is not None:
                        status, response = fault.status, _fault_response(fault)
                    break
            if response is None:
                if route is None:
                    status, response = 404, _json({"message": "404: Not Found", "code": 0}, 404)
                else:
                    handler, params = route
                    try:
                        result = await handler(_Request(method, path, params, query, body, files))
                    except DiscordError as exc:
                        status, response = exc.status, _json(exc.body(), exc.status)
                    except Exception as exc:  # a bug in the fake: a 5xx would make discord.py retry for seconds
                        self.errors.append(exc)
                        status, response = 400, _json({"message": f"FakeDiscord bug: {exc!r}", "code": 0}, 400)
                    else:
                        status = 204 if result is None else 200
                        response = web.Response(status=204) if result is None else _json(result)
        finally:
            rec = Recorded(method, path, query, body, started, status, files)
            self.requests.append(rec)
            if route is None and status == 404:
                self.unhandled.append(rec)
            if status >= 400:
                token = _token_in(path)
                if token and token in self.interactions:
                    self.interactions[token].rejected.append(rec)
            self._bump()
        return response

    def _match(self, method: str, raw_path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, regex, handler in self._routes:
            if route_method != method:
                continue
            m = regex.fullmatch(raw_path)
            if m:
                return handler, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        return None

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        c, m = r"/channels/(?P<channel_id>\d+)", r"/messages/(?P<message_id>\d+)"
        wh = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        wm = wh + r"/messages/(?P<message_id>@original|\d+)"
        cmds = r"/applications/(?P<app_id>\d+)(?:/guilds/(?P<guild_id>\d+))?/commands"
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/gateway", self._r_gateway),
            ("GET", r"/gateway/bot", self._r_gateway_bot),
            ("GET", r"/users/@me", self._r_me),
            ("GET", r"/users/(?P<user_id>\d+)", self._r_user),
            ("POST", r"/users/@me/channels", self._r_open_dm),
            ("DELETE", r"/users/@me/guilds/(?P<guild_id>\d+)", self._r_leave_guild),
            ("GET", r"/oauth2/applications/@me", self._r_app_info),
            ("GET", r"/applications/@me", self._r_app_info),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._r_guild),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._r_guild_channels),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._r_member),
            ("GET", c, self._r_channel),
            ("PATCH", c, self._r_edit_channel),
            ("GET", c + r"/messages", self._r_history),
            ("POST", c + r"/messages", self._r_send),
            ("GET", c + m, self._r_get_message),
            ("PATCH", c + m, self._r_edit),
            ("DELETE", c + m, self._r_delete),
            ("PUT", c + m + r"/reactions/(?P<emoji>[^/]+)/@me", self._r_react),
            ("DELETE", c + m + r"/reactions/(?P<emoji>[^/]+)/@me", self._r_unreact),
            ("POST", c + r"/typing", self._r_typing),
            ("POST", c + m + r"/threads", self._r_thread_from_message),
            ("POST", c + r"/threads", self._r_thread),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", self._r_callback),
            ("POST", wh, self._r_followup),
            ("GET", wm, self._r_webhook_get),
            ("PATCH", wm, self._r_webhook_edit),
            ("DELETE", wm, self._r_webhook_delete),
            ("GET", cmds, self._r_get_commands),
            ("PUT", cmds, self._r_put_commands),
            ("POST", cmds, self._r_upsert_command),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # ---------------------------------------------------------------------------------------------------- routes

    async def _r_gateway(self, req: _Request) -> Any:
        return {"url": self.gateway_url.rstrip("/")}

    async def _r_gateway_bot(self, req: _Request) -> Any:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url.rstrip("/"), "shards": 1, "session_start_limit": limit}

    async def _r_me(self, req: _Request) -> Any:
        return self._bot_user()

    async def _r_user(self, req: _Request) -> Any:
        user = self.users.get(int(req.params["user_id"]))
        if user is None:
            raise _unknown("User", 10013)
        return user

    async def _r_open_dm(self, req: _Request) -> Any:
        user_id = int(req.json["recipient_id"])
        if user_id not in self.users:
            raise _unknown("User", 10013)
        return self._dm_channel(user_id)

    async def _r_leave_guild(self, req: _Request) -> Any:
        guild_id = int(req.params["guild_id"])
        if guild_id in self.left_guilds or (guild_id != self.guild_id and guild_id not in self.other_guilds):
            raise _unknown("Guild", 10004)
        await self.dispatch("GUILD_DELETE", {"id": str(guild_id)}, intent=GUILDS)  # no "unavailable": removed
        self.left_guilds.append(guild_id)

    async def _r_app_info(self, req: _Request) -> Any:
        return {
            "id": str(self.application_id),
            "name": self.users[self.bot_user_id]["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": (1 << 18) if self.message_content_enabled else 0,  # GATEWAY_MESSAGE_CONTENT
            "owner": self.users[self.owner_id],
            "team": None,
            "bot": self.users[self.bot_user_id],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
        }

    def _check_guild(self, req: _Request) -> None:
        if int(req.params["guild_id"]) != self.guild_id:
            raise _unknown("Guild", 10004)

    async def _r_guild(self, req: _Request) -> Any:
        self._check_guild(req)
        payload = self.guild_payload()
        for key in ("channels", "threads", "members", "voice_states", "presences", "joined_at", "large", "lazy"):
            payload.pop(key, None)
        return payload

    async def _r_guild_channels(self, req: _Request) -> Any:
        self._check_guild(req)
        return [ch for ch in self.channels.values() if ch["type"] not in (1, *_THREAD_TYPES)]

    async def _r_member(self, req: _Request) -> Any:
        self._check_guild(req)
        member = self.members.get(int(req.params["user_id"]))
        if member is None:
            raise _unknown("Member", 10007)
        return member

    async def _r_channel(self, req: _Request) -> Any:
        return self._channel(int(req.params["channel_id"]))


async def _read_body(request: web.Request) -> tuple[Any, tuple[str, ...]]:
    """JSON body, or a multipart upload's ``payload_json`` plus its file names."""
    if request.content_type == "application/json":
        raw = await request.read()
        return (json.loads(raw) if raw else None), ()
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: list[str] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):  # nested multipart: Discord's uploads have none
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            else:
                await part.read()
                files.append(part.filename or part.name or "file")
        return payload, tuple(files)
    return None, ()


def _token_in(path: str) -> str | None:
    m = re.match(r"^/(?:interactions/\d+|webhooks/\d+)/([^/]+)", path)
    return m.group(1) if m else None
