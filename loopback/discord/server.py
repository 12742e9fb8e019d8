"""``FakeDiscord``: one fake guild, served over loopback HTTP and websocket. The class composes the package's parts,
each a mixin over ``core.Core`` (the state they share) that builds on the parts it uses:

- ``gateway``: the websocket gateway (identify, heartbeats, resume, dispatching events);
- ``permissions``: guild and channel permissions, overwrites, the README's invite list;
- ``rest_messages``, ``rest_threads``, ``rest_commands``, ``rest_interactions``: messages, threads and forums,
  application commands, interactions and their webhooks, each with its REST routes;
- ``faults``: injected delays and errors; ``rest``: routing and recording every REST call;
- ``guild``: setting the guild up; ``members``: what members do.

Here: the constructor, starting and stopping, running a bot against the fake, waiting, and queries over the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from loopback.discord.faults import _Fault
from loopback.discord.gateway import _Session
from loopback.discord.guild import GuildSetup
from loopback.discord.members import MemberActions
from loopback.discord.permissions import DEFAULT_BOT_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS
from loopback.discord.rest import Rest
from loopback.discord.rest_interactions import TOKEN_LIFETIME_S
from loopback.discord.state import ChannelEdit, GatewayFrame, InteractionRecord, MessageRecord, Recorded

T = TypeVar("T")
ClientT = TypeVar("ClientT", bound=discord.Client)


class FakeDiscord(MemberActions, GuildSetup, Rest):
    """One fake guild with one text channel, served over loopback HTTP + websocket. See ``loopback.discord``."""

    def __init__(
        self,
        *,
        guild_id: int = 111111111111111111,
        channel_id: int = 222222222222222222,
        bot_user_id: int = 333333333333333333,
        application_id: int | None = None,
        owner_id: int = 555555555555555555,
        bot_name: str = "Docent",
        guild_name: str = "Fake Guild",
        channel_name: str = "general",
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        interaction_deadline: float | None = 3.0,
        token_lifetime: float | None = TOKEN_LIFETIME_S,
        heartbeat_interval: float = 41.25,
        echo_bot_messages: bool = True,
        message_content_enabled: bool = True,
    ) -> None:
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.bot_user_id = bot_user_id
        self.application_id = application_id if application_id is not None else bot_user_id
        self.owner_id = owner_id
        self.guild_name = guild_name
        self.interaction_deadline = interaction_deadline
        self.token_lifetime = token_lifetime  # an interaction token's followups and edits work this long
        self._skew = 0.0  # what ``advance`` added to the clock
        self.heartbeat_interval = heartbeat_interval
        self.echo_bot_messages = echo_bot_messages  # Discord sends the bot its own MESSAGE_CREATEs
        self.message_content_enabled = message_content_enabled  # the Developer Portal's switch, in the app's flags

        self.requests: list[Recorded] = []
        self.unhandled: list[Recorded] = []  # calls to routes the fake does not implement (answered 404)
        self.messages: dict[int, MessageRecord] = {}  # created by the bot (incl. interaction responses)
        self.user_messages: dict[int, MessageRecord] = {}  # injected with user_says
        self._messages: dict[int, MessageRecord] = {}  # both
        self.interactions: dict[str, InteractionRecord] = {}  # by token
        self.gateway_log: list[GatewayFrame] = []
        self.identify: dict[str, Any] | None = None  # the bot's last IDENTIFY payload
        self.presence: dict[str, Any] | None = None

        self.users: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self._commands: dict[int | None, dict[tuple[str, int], dict[str, Any]]] = {}
        self.other_guilds: dict[int, dict[str, Any]] = {}  # servers the bot joined later (join_guild); no traffic
        self.left_guilds: list[int] = []  # servers the bot left (DELETE /users/@me/guilds/{id}), in order
        self.channel_edits: list[ChannelEdit] = []  # the bot's accepted channel/thread edits, in order

        self._last_id = 0
        self._faults: list[_Fault] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bot_tasks: list[asyncio.Task[None]] = []
        self.errors: list[BaseException] = []  # bugs in the fake itself (answered 400 so discord.py does not retry)
        self._sessions: list[_Session] = []
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

        self.roles[guild_id] = self._role_payload(guild_id, "@everyone", everyone_permissions, position=0)
        self.bot_role_id = self._next_id()
        self.roles[self.bot_role_id] = self._role_payload(
            self.bot_role_id, bot_name, bot_permissions, position=1, managed=True, tags={"bot_id": str(bot_user_id)}
        )
        self._put_member(bot_user_id, bot_name, roles=[self.bot_role_id], bot=True)
        self._put_member(owner_id, "owner", roles=[])
        self.channels[channel_id] = self._text_channel_payload(channel_id, channel_name, position=0)
        self._routes = self._build_routes()

    # ---------------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_route("*", "/api/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close the bot's sockets and the server. Close the bot first, or it will try to reconnect."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def point_discordpy_here(self) -> Iterator[FakeDiscord]:
        """discord.py reads these class attributes on every request/connect; restore them so tests stay isolated.

        They are process-wide, so only one bot-and-fake pair can run at a time.
        """
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def run_bot(
        self,
        client: ClientT,
        *,
        token: str = "fake-token",
        timeout: float = 10,
    ) -> AsyncIterator[ClientT]:
        """Start ``client`` against the fake, wait until it is ready, and on exit close it and await its task.

        If the bot's task dies (say discord.py chokes on a payload), the fake's waits raise its error at once
        instead of timing out, and exiting re-raises it.
        """
        with self.point_discordpy_here():
            task = asyncio.create_task(client.start(token), name="fake-discord-bot")
            task.add_done_callback(lambda _: self._bump())
            self._bot_tasks.append(task)
            ready = asyncio.create_task(client.wait_until_ready())
            try:
                done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    task.result()  # raises the startup error
                    raise RuntimeError("the bot stopped before it became ready")
                if ready not in done:
                    raise TimeoutError(f"the bot was not ready after {timeout} s; last calls: {self.requests[-5:]}")
                yield client
            finally:
                ready.cancel()
                await client.close()
                try:
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait_for(task, timeout)
                finally:
                    self._bot_tasks.remove(task)

    # ------------------------------------------------------------------------------------------------------- waiting

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10,
        *,
        what: str = "",
        poll: float = 0.02,
    ) -> T:
        """Return the predicate's first truthy value.

        Re-checked after every REST call and gateway frame, and every ``poll`` seconds for predicates over the bot's
        own state (which changes without any traffic reaching the fake).
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            changed = self._changed  # take it before checking: no await between check and wait
            self._raise_if_bot_died()
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for {what or predicate}; last calls: {self.requests[-8:]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, poll))

    async def wait_for_message(
        self,
        predicate: Callable[[MessageRecord], bool] | None = None,
        *,
        channel_id: int | None = None,
        after: int | None = None,
        timeout: float = 10,
    ) -> MessageRecord:
        """The first bot message (in creation order) matching; ``after`` skips messages with ids up to that one."""

        def find() -> MessageRecord | None:
            for rec in self.messages.values():
                if channel_id is not None and rec.channel_id != channel_id:
                    continue
                if after is not None and rec.id <= after:
                    continue
                if predicate is None or predicate(rec):
                    return rec
            return None

        found = await self.wait_for(find, timeout, what="a bot message")
        assert found is not None
        return found

    def _raise_if_bot_died(self) -> None:
        for task in self._bot_tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError("the bot's task died (see the cause)") from task.exception()

    # --------------------------------------------------------------------------------------------------- queries

    def calls(self, method: str = "*", pattern: str = "*") -> list[Recorded]:
        """REST calls filtered by method and fnmatch path pattern, e.g. ``calls("POST", "/channels/*/messages")``."""
        return [r for r in self.requests if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, pattern)]

    def channel_messages(self, channel_id: int | None = None, *, include_deleted: bool = False) -> list[MessageRecord]:
        """The bot's messages in a channel (default: the main one), oldest first."""
        cid = self.channel_id if channel_id is None else channel_id
        return [m for m in self.messages.values() if m.channel_id == cid and (include_deleted or not m.deleted)]

    def any_pings(self) -> list[MessageRecord]:
        """Bot messages that let anyone be notified (``allowed_pings``); assert this is empty for a bot that must
        never ping."""
        return [m for m in self.messages.values() if m.allowed_pings]


def pending_discordpy_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running discord.py code, e.g. a View's timeout; check after closing a bot to avoid
    "Task was destroyed but it is pending" at the end of a session-scoped event loop."""
    pending = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and f"{os.sep}discord{os.sep}" in code.co_filename:
            pending.append(task)
    return pending
