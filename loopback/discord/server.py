"""A loopback fake of Discord's gateway and REST API, so end-to-end tests can drive the real discord.py client.

Why a fake server instead of mocking discord.py: the bot's real code paths (gateway parsing, the HTTP client,
rate-limit handling, interaction callbacks, view dispatch) all run unchanged; only the far end of the socket is fake.
The fake keeps one guild and records every REST call, message version and interaction response, so tests can assert
on behaviour ("replied within 3 s", "never pings", "edited the deferred answer") rather than on mocks.

The ``timeout`` keywords on the waiting helpers are deliberate (hence ruff's ASYNC109 is off for ``loopback/``): on
expiry they raise with the last REST calls in the message, which ``asyncio.timeout`` around the call could not.

Typical use::

    async with FakeDiscord() as fake:
        fake.add_member(USER, "alice")
        bot = make_bot(guild_ready_timeout=0.1)
        async with fake.run_bot(bot):
            mid = await fake.user_says(USER, "how do I index?", mention_bot=True)
            reply = await fake.wait_for_message(lambda m: m.reply_to == mid)

Realism that tests can rely on (each is what Discord does, and each has bitten real bots):

- Without the MESSAGE_CONTENT intent, guild messages arrive with empty content unless they mention the bot; read
  over REST (channel history, one message), they are blank unless the app's Message Content switch is on.
- With ``message_content_enabled=False`` (the Developer Portal switch off) the application's flags say so, and
  identifying with MESSAGE_CONTENT closes the gateway with 4014, as Discord does.
- Message content over 2000 characters and empty messages are rejected with Discord's 400 errors.
- Application commands are validated when synced as Discord does (400 50035 naming the field): slash command and
  option names lowercase, 1-32 letters, numbers, ``-``, ``_`` or ``'``; descriptions 1-100 characters (none on
  context-menu commands, whose names may have capitals and spaces); at most 25 options and 25 choices; required
  options before optional ones; no repeated names.
- Interaction callbacks later than ``interaction_deadline`` (3 s) fail with 10062 "Unknown interaction"; a second
  callback fails with 40060; followups before any callback fail with 10015. Followups and edits of the original
  response more than ``token_lifetime`` (15 minutes) after the interaction fail with 401 50027 "Invalid Webhook
  Token". Both deadlines run on the fake's clock, which tests move on with ``advance`` instead of sleeping.
- The first followup after a "thinking" defer replaces the loading message, as on Discord.
- The bot's permissions in the channel (guild-level, then the channel's overwrites, ``set_overwrite``; a thread
  has its parent's) are enforced for sending, reacting, deleting, creating and editing threads (403 50013), and
  interactions carry the member's and the app's permissions in their channel, as Discord computes them.
- A role mention notifies its members only if the role is ``mentionable`` or the author has Mention Everyone in
  the channel (``MessageRecord.pings``); ``allowed_pings`` is what ``allowed_mentions`` let through.
- Forum channels (``add_forum``) take no messages of their own (400 50008); a post (``user_posts``, or the bot's
  ``ForumChannel.create_thread``) is a public thread whose id is its starter message's id, with ``applied_tags``
  checked against the forum's tags (at most 5; REQUIRE_TAG forums refuse untagged posts with 40067).
- Editing a thread (``PATCH /channels/{id}``) takes MANAGE_THREADS unless the bot owns it and only renames, archives
  or retags it with unmoderated tags; an archived thread must be unarchived first (400 50083), and only sending a
  message unarchives one implicitly (reactions, edits and deletes there fail with 50083). Locked threads take
  MANAGE_THREADS to post in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

__all__ = [
    "CallbackRecord",
    "ChannelEdit",
    "DiscordError",
    "FakeDiscord",
    "InteractionRecord",
    "MessageRecord",
    "MessageVersion",
    "Pings",
    "Recorded",
    "invite_permissions",
    "pending_discordpy_tasks",
]

T = TypeVar("T")
ClientT = TypeVar("ClientT", bound=discord.Client)

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
CONTENT_LIMIT = 2000

# Gateway intents the fake honours (the subset a docs bot can observe).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15

# Permission bits checked on the bot's REST calls.
P = discord.Permissions
ALL_PERMISSIONS = P.all().value
ADMINISTRATOR = P(administrator=True).value
README = Path(__file__).resolve().parents[2] / "README.md"
_PERMISSION_ALIASES = {"view_channels": "view_channel", "manage_server": "manage_guild"}


def invite_permissions(readme: Path = README) -> int:
    """The permissions the README's invite step asks for ("… and the permissions A, B (why) and C. Nothing else"),
    as Discord's bits: the fake's bot has exactly these, so a feature that needs more fails here as it would for
    someone who followed the README."""
    found = re.search(r"and the permissions\s+(.+?)\.\s+Nothing else", readme.read_text(), re.S)
    if found is None:
        raise ValueError(f"{readme} has no invite permission list")
    listed = " ".join(re.sub(r"\([^)]*\)", "", found.group(1)).split())
    value = 0
    for name in filter(None, (n.strip() for n in re.split(r",|\band\b", listed))):
        flag = name.lower().replace(" ", "_")
        flag = _PERMISSION_ALIASES.get(flag, flag)
        if flag not in P.VALID_FLAGS:
            raise ValueError(f"the README's invite names an unknown permission: {name!r}")
        value |= P(**{flag: True}).value
    return value


# What the bot has in a new fake server: the README's invite, and an @everyone that adds nothing to it (members may
# read and talk; the fake does not check what members themselves may do, beyond a locked thread).
DEFAULT_BOT_PERMISSIONS = invite_permissions()
DEFAULT_EVERYONE_PERMISSIONS = P(
    view_channel=True, send_messages=True, send_messages_in_threads=True, read_message_history=True
).value

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_THREAD_TYPES = (10, 11, 12)
GUILD_TEXT, GUILD_CATEGORY, GUILD_FORUM = 0, 4, 15
REQUIRE_TAG = 1 << 4  # channel flag: a forum's posts need at least one tag
MAX_APPLIED_TAGS = 5
MAX_FORUM_TAGS = 20
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
MANAGE_THREADS = P(manage_threads=True).value
VIEW_CHANNEL = P(view_channel=True).value
SEND_MESSAGES = P(send_messages=True).value
MENTION_EVERYONE = P(mention_everyone=True).value
NEEDS_SEND = P(mention_everyone=True, send_tts_messages=True, attach_files=True, embed_links=True).value
# Application commands, as Discord validates them when they are synced.
COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097f\u0e00-\u0e7f]{1,32}$")  # letters, numbers, Deva, Thai; no spaces
MAX_OPTIONS = 25
MAX_CHOICES = 25
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
TOKEN_LIFETIME_S = 15 * 60.0  # an interaction token's followups and edits work this long after the interaction


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py parses a body as JSON only if Content-Type is exactly ``application/json`` (no charset)."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class DiscordError(Exception):
    """Raised inside a route to answer with Discord's error body (``{"code", "message"}``)."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _unknown(what: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


def _too_long(field_name: str, limit: int) -> DiscordError:
    err = {"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}
    return DiscordError(400, 50035, "Invalid Form Body", {field_name: {"_errors": [err]}})


def _missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def _form_error(field_name: str, code: str, message: str) -> DiscordError:
    return DiscordError(
        400, 50035, "Invalid Form Body", {field_name: {"_errors": [{"code": code, "message": message}]}}
    )


def _thread_archived() -> DiscordError:
    return DiscordError(400, 50083, "Thread is archived")


# --------------------------------------------------------------------------------------------------------------------
# Records: what tests assert on.


@dataclass(frozen=True)
class Pings:
    """Who a message version would notify, given its content and ``allowed_mentions`` (Discord's rules)."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone)

    def __or__(self, other: Pings) -> Pings:
        return Pings(self.users | other.users, self.roles | other.roles, self.everyone or other.everyone)


@dataclass(frozen=True)
class Recorded:
    """One REST call as the bot made it; ``path`` is relative to the API base and URL-decoded."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    time: float
    status: int = 0
    files: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass(frozen=True)
class MessageVersion:
    time: float
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    flags: int
    allowed_mentions: dict[str, Any] | None  # as sent; None when the call had no allowed_mentions key
    pings: Pings  # who Discord notifies: a role only if it is mentionable or the author has Mention Everyone
    allowed_pings: Pings  # what the content and allowed_mentions let through, whatever the roles and permissions


@dataclass(eq=False)
class MessageRecord:
    """A message with its full history: one ``MessageVersion`` per create/edit, oldest first."""

    id: int
    channel_id: int
    author_id: int
    by_bot: bool
    payload: dict[str, Any] = field(repr=False)  # the current Discord message object
    versions: list[MessageVersion] = field(default_factory=list, repr=False)
    reply_to: int | None = None
    interaction_token: str | None = None
    thread_id: int | None = None  # a thread started from this message
    deleted_at: float | None = None
    reactions: list[tuple[str, int]] = field(default_factory=list)  # (emoji, user id), in order
    files: tuple[str, ...] = ()

    @property
    def content(self) -> str:
        return self.versions[-1].content

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.versions[-1].embeds

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.versions[-1].components

    @property
    def flags(self) -> int:
        return self.versions[-1].flags

    @property
    def created_at(self) -> float:
        return self.versions[0].time

    @property
    def edited_at(self) -> float | None:
        return self.versions[-1].time if len(self.versions) > 1 else None

    @property
    def history(self) -> list[tuple[float, str]]:
        return [(v.time, v.content) for v in self.versions]

    @property
    def contents(self) -> list[str]:
        return [v.content for v in self.versions]

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.versions[-1].allowed_mentions

    @property
    def pings(self) -> Pings:
        """Who was notified, union over all versions."""
        out = Pings()
        for v in self.versions:
            out |= v.pings
        return out

    @property
    def allowed_pings(self) -> Pings:
        """Who the bot let be notified (a role ping is allowed even if that role can't be pinged today), union over
        all versions: conservative for "never pings" assertions."""
        out = Pings()
        for v in self.versions:
            out |= v.allowed_pings
        return out

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True)
class CallbackRecord:
    """The interaction's initial response (``POST /interactions/{id}/{token}/callback``)."""

    type: int  # 4 message, 5 deferred message, 6 deferred update, 7 update, 8 autocomplete, 9 modal
    time: float
    data: dict[str, Any]
    ephemeral: bool

    @property
    def deferred(self) -> bool:
        return self.type in (5, 6)


@dataclass(eq=False)
class InteractionRecord:
    """An interaction the fake dispatched and everything the bot did with its token."""

    id: int
    token: str
    type: int  # 2 command, 3 component, 4 autocomplete
    user_id: int
    channel_id: int
    guild_id: int | None
    payload: dict[str, Any] = field(repr=False)
    created_at: float  # the fake's clock (``FakeDiscord.now``) when INTERACTION_CREATE was sent
    name: str | None = None
    custom_id: str | None = None
    message_id: int | None = None  # the message a component sits on
    callback: CallbackRecord | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    rejected: list[Recorded] = field(default_factory=list, repr=False)  # calls the fake refused for this token
    _fake: FakeDiscord | None = field(default=None, repr=False)

    @property
    def responded(self) -> bool:
        return self.callback is not None

    @property
    def responded_at(self) -> float | None:
        return self.callback.time if self.callback else None

    @property
    def response_latency(self) -> float | None:
        """Seconds from dispatch to the callback: Discord allows 3."""
        return self.callback.time - self.created_at if self.callback else None

    @property
    def deferred(self) -> bool:
        return bool(self.callback and self.callback.deferred)

    @property
    def deferred_at(self) -> float | None:
        return self.callback.time if self.deferred and self.callback else None

    @property
    def ephemeral(self) -> bool:
        return bool(self.callback and self.callback.ephemeral)

    @property
    def original(self) -> MessageRecord | None:
        if self.original_message_id is None or self._fake is None:
            return None
        return self._fake._messages.get(self.original_message_id)

    @property
    def followups(self) -> list[MessageRecord]:
        assert self._fake is not None
        return [self._fake._messages[mid] for mid in self.followup_ids]

    @property
    def final_content(self) -> str | None:
        """The original response's current text (after all edits); None if there is no original message."""
        original = self.original
        return original.content if original else None

    @property
    def all_contents(self) -> list[str]:
        """What the user ends up seeing: the original response, then followups (a followup may have replaced it)."""
        seen: list[int] = []
        for mid in [self.original_message_id, *self.followup_ids]:
            if mid is not None and mid not in seen:
                seen.append(mid)
        assert self._fake is not None
        return [self._fake._messages[m].content for m in seen if not self._fake._messages[m].deleted]

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        return self.callback.data.get("choices") if self.callback and self.callback.type == 8 else None

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.callback.data if self.callback and self.callback.type == 9 else None


@dataclass(frozen=True)
class ChannelEdit:
    """One accepted ``PATCH /channels/{id}`` by the bot: the fields it set, with their old and new values.

    Keys and values are as in Discord's channel object (``applied_tags`` is a list of tag id strings; ``archived``,
    ``locked`` and ``auto_archive_duration`` are lifted out of ``thread_metadata``).
    """

    channel_id: int
    time: float
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class GatewayFrame:
    time: float
    direction: str  # "sent" (fake -> bot) or "received"
    payload: dict[str, Any]


@dataclass
class _Fault:
    method: str
    pattern: str
    status: int | None
    retry_after: float
    delay: float
    remaining: int
    is_global: bool
    body: dict[str, Any] | None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in (method, "*") and fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class _Session:
    ws: web.WebSocketResponse
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    intents: int = 0
    identified: bool = False
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class _Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: tuple[str, ...]


Handler = Callable[[_Request], Any]


# --------------------------------------------------------------------------------------------------------------------


class FakeDiscord:
    """One fake guild with one text channel, served over loopback HTTP + websocket. See the module docstring."""

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

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

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

    async def wait_ready(self, timeout: float = 10) -> None:
        """Until the bot has identified and been sent READY + GUILD_CREATE (``client.wait_until_ready`` is later)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # --------------------------------------------------------------------------------------------------------- clock

    def now(self) -> float:
        """The fake's clock: ``time.monotonic()`` plus whatever ``advance`` added. Every time the fake records, and
        the interaction deadlines (3 s to respond, 15 minutes for the token), are on it."""
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for Discord at once, without sleeping: e.g. past the 3 s an interaction waits for
        its response while the bot is stuck in a slow call, or past an interaction token's 15 minutes."""
        self._skew += seconds
        self._bump()

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

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

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

    def synced_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Application commands the bot registered globally (None) or for a guild."""
        return list(self._commands.get(guild_id, {}).values())

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions: @everyone | roles; owner and administrators get everything."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = int(self.roles[self.guild_id]["permissions"])
        for role_id in self.members[user_id]["roles"]:
            value |= int(self.roles[int(role_id)]["permissions"])
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    @property
    def bot_permissions(self) -> int:
        return self.permissions_of(self.bot_user_id)

    def permissions_in(self, user_id: int, channel_id: int) -> int:
        """In a channel, as Discord computes them (and sends them in interactions): the guild-level permissions, then
        the channel's overwrites for @everyone, for the member's roles (all denies, then all allows) and for the
        member. A thread has its parent's. Without View Channel nothing is left; without Send Messages neither are
        Mention Everyone, Send TTS, Attach Files nor Embed Links. Owners and administrators keep everything."""
        value = self.permissions_of(user_id)
        channel = self._channel(channel_id)
        if channel["type"] in _THREAD_TYPES:
            channel = self._channel(int(channel["parent_id"]))
        if channel.get("guild_id") is None or value == ALL_PERMISSIONS:
            return value
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites") or []}
        everyone = overwrites.get(self.guild_id)
        if everyone is not None:
            value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
        roles = [overwrites[int(r)] for r in self.members[user_id]["roles"] if int(r) in overwrites]
        deny = allow = 0
        for overwrite in roles:
            deny |= int(overwrite["deny"])
            allow |= int(overwrite["allow"])
        value = (value & ~deny) | allow
        member = overwrites.get(user_id)
        if member is not None and member["type"] == 1:
            value = (value & ~int(member["deny"])) | int(member["allow"])
        if not value & VIEW_CHANNEL:
            return 0
        if not value & SEND_MESSAGES:
            value &= ~NEEDS_SEND
        return value

    def bot_permissions_in(self, channel_id: int) -> int:
        return self.permissions_in(self.bot_user_id, channel_id)

    def tag_id(self, forum_id: int, name: str) -> int:
        """The id of the forum's tag called ``name`` (KeyError if it has none)."""
        for tag in self._channel(forum_id).get("available_tags") or []:
            if tag["name"] == name:
                return int(tag["id"])
        raise KeyError(f"forum {forum_id} has no tag {name!r}")

    def thread_tags(self, thread_id: int) -> list[str]:
        """The names of the tags applied to a forum post, in the order they were applied."""
        thread = self._channel(thread_id)
        names = {t["id"]: t["name"] for t in self._channel(int(thread["parent_id"])).get("available_tags") or []}
        return [names.get(tag, f"<deleted tag {tag}>") for tag in thread.get("applied_tags") or []]

    # --------------------------------------------------------------------------------------------- fault injection

    def inject(
        self,
        method: str,
        pattern: str,
        *,
        status: int | None = None,
        delay: float = 0.0,
        retry_after: float = 0.05,
        times: int = 1,
        is_global: bool = False,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Make the next ``times`` matching calls slow (``delay``) and/or fail with ``status``.

        ``pattern`` is an fnmatch pattern over the API path, e.g. ``"/channels/*/messages"``. A 429 carries
        ``retry_after`` and the ``Via`` header discord.py requires before it will treat it as a rate limit.
        """
        self._faults.append(_Fault(method.upper(), pattern, status, retry_after, delay, times, is_global, body))

    def rate_limit_once(self, method: str, pattern: str, *, retry_after: float = 0.05) -> None:
        self.inject(method, pattern, status=429, retry_after=retry_after)

    # ------------------------------------------------------------------------------------------------- guild setup

    def add_role(
        self, name: str, permissions: int = 0, *, role_id: int | None = None, mentionable: bool = False
    ) -> dict[str, Any]:
        """A role; ``mentionable`` is Discord's "Allow anyone to @mention this role" (off by default, as there): a
        ping of a role that isn't notifies nobody unless its author has Mention Everyone."""
        rid = role_id or self._next_id()
        role = self._role_payload(rid, name, permissions, position=len(self.roles), mentionable=mentionable)
        self.roles[rid] = role
        self._spawn_dispatch("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role}, GUILDS)
        return role

    def add_member(
        self,
        user_id: int,
        name: str,
        *,
        permissions: int = 0,
        roles: Iterable[int] = (),
        bot: bool = False,
        nick: str | None = None,
    ) -> dict[str, Any]:
        """Add a guild member; ``permissions`` (guild-level) are granted through a role made for them."""
        role_ids = list(roles)
        if permissions:
            role_ids.append(int(self.add_role(f"{name}-perms", permissions)["id"]))
        member = self._put_member(user_id, name, roles=role_ids, bot=bot, nick=nick)
        self._spawn_dispatch("GUILD_MEMBER_ADD", {**member, "guild_id": str(self.guild_id)}, GUILD_MEMBERS)
        return member

    def add_channel(
        self, name: str, *, channel_id: int | None = None, category_id: int | None = None
    ) -> dict[str, Any]:
        """A text channel, optionally inside a category (``add_category``)."""
        cid = channel_id or self._next_id()
        channel = self._text_channel_payload(cid, name, position=self._next_position(), parent_id=category_id)
        return self._put_channel(channel)

    def add_category(self, name: str, *, channel_id: int | None = None) -> dict[str, Any]:
        """A channel category (type 4); pass its id as ``category_id`` to the other ``add_*``."""
        cid = channel_id or self._next_id()
        channel = {
            "id": str(cid),
            "type": GUILD_CATEGORY,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": self._next_position(),
            "permission_overwrites": [],
            "parent_id": None,
            "nsfw": False,
            "flags": 0,
        }
        return self._put_channel(channel)

    def add_forum(
        self,
        name: str,
        *,
        channel_id: int | None = None,
        tags: Iterable[str] = ("Solved",),
        category_id: int | None = None,
        require_tag: bool = False,
    ) -> dict[str, Any]:
        """A forum channel (type 15) whose ``available_tags`` are ``tags`` (unmoderated, no emoji), in order.

        In GUILD_CREATE if added before the bot connects, else sent as CHANNEL_CREATE. ``require_tag`` sets the
        REQUIRE_TAG flag: posts without a tag are then refused (40067), as on Discord.
        """
        cid = channel_id or self._next_id()
        available = [
            {"id": str(self._next_id()), "name": tag, "moderated": False, "emoji_id": None, "emoji_name": None}
            for tag in tags
        ]
        if len(available) > MAX_FORUM_TAGS:
            raise ValueError(f"a forum has at most {MAX_FORUM_TAGS} tags")
        channel = {
            "id": str(cid),
            "type": GUILD_FORUM,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": self._next_position(),
            "permission_overwrites": [],
            "parent_id": str(category_id) if category_id is not None else None,
            "topic": None,  # the forum's guidelines
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,  # on a forum: the newest post's id
            "flags": REQUIRE_TAG if require_tag else 0,
            "available_tags": available,
            "default_reaction_emoji": None,
            "default_thread_rate_limit_per_user": 0,
            "default_auto_archive_duration": 4320,
            "default_sort_order": None,
            "default_forum_layout": 0,
            "template": "",
        }
        return self._put_channel(channel)

    def set_role_permissions(self, role_id: int, permissions: int) -> None:
        """Change a role (``guild_id`` is @everyone) and tell a connected bot (GUILD_ROLE_UPDATE)."""
        role = self.roles[role_id]
        role["permissions"] = str(permissions)
        self._spawn_dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(self.guild_id), "role": role}, GUILDS)

    def set_overwrite(self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0) -> None:
        """Set a channel's permission overwrite for a role (``guild_id`` is @everyone) or a member, replacing any it
        had; a thread takes its parent's. Tells a connected bot (CHANNEL_UPDATE)."""
        channel = self._channel(channel_id)
        if channel["type"] in _THREAD_TYPES or channel.get("guild_id") is None:
            raise ValueError(f"channel {channel_id} has no overwrites of its own")
        if target_id not in self.roles and target_id not in self.members:
            raise KeyError(f"unknown role or member {target_id}")
        kind = 0 if target_id in self.roles else 1
        overwrites = [o for o in channel["permission_overwrites"] if int(o["id"]) != target_id]
        overwrites.append({"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)})
        channel["permission_overwrites"] = overwrites
        self._spawn_dispatch("CHANNEL_UPDATE", channel, GUILDS)

    def set_bot_permissions(self, permissions: int, *, everyone: int | None = None) -> None:
        """Set the bot's role, e.g. to test a bot without Send Messages. The bot also gets whatever @everyone has,
        so take those away too (``everyone=0``) to really revoke something."""
        self.set_role_permissions(self.bot_role_id, permissions)
        if everyone is not None:
            self.set_role_permissions(self.guild_id, everyone)

    async def join_guild(self, guild_id: int, name: str) -> dict[str, Any]:
        """Someone adds the bot to another server: GUILD_CREATE with just @everyone, one channel and the bot.

        Only joining and leaving are modelled for these servers; messages and interactions stay in the main one.
        """
        await self._ensure_connected()
        channel_id = self._next_id()
        now = _now_iso()
        payload = {
            **self.guild_payload(),
            "id": str(guild_id),
            "name": name,
            "owner_id": str(self.owner_id),
            "roles": [self._role_payload(guild_id, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, position=0)],
            "channels": [{**self._text_channel_payload(channel_id, "general", position=0), "guild_id": str(guild_id)}],
            "threads": [],
            "members": [{**self.members[self.bot_user_id], "roles": [], "joined_at": now}],
            "member_count": 1,
            "joined_at": now,
        }
        payload.pop("unavailable")  # absent on a join; false means "available again after an outage"
        self.other_guilds[guild_id] = payload
        await self.dispatch("GUILD_CREATE", payload, intent=GUILDS)
        return payload

    # ------------------------------------------------------------------------------------------------ event inject

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

    async def user_says(
        self,
        author_id: int,
        content: str,
        *,
        mention_bot: bool = False,
        channel_id: int | None = None,
        reply_to: int | None = None,
        ping_reply: bool = True,
        dm: bool = False,
    ) -> int:
        """A member posts a message (MESSAGE_CREATE); returns its id.

        ``mention_bot`` prefixes ``<@BOT>`` like the Discord client does; ``reply_to`` makes it a reply (type 19)
        that, with ``ping_reply``, also mentions the replied-to author. ``dm`` posts in the author's DM with the bot.
        """
        await self._ensure_connected()
        if author_id not in self.users:
            raise KeyError(f"unknown user {author_id}: call add_member first")
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        cid = self._dm_channel(author_id)["id"] if dm else str(channel_id or self.channel_id)
        channel = self._channel(int(cid))
        if channel["type"] in (GUILD_CATEGORY, GUILD_FORUM):
            raise ValueError(f"channel {cid} takes no messages (for a forum, use user_posts)")
        reopen = self._check_can_post(channel, author_id)
        reference = None
        if reply_to is not None:
            reference = {"message_id": str(reply_to), "channel_id": cid, "fail_if_not_exists": True}
        rec = self._create_message(
            channel_id=int(cid),
            author_id=author_id,
            body={"content": content, "message_reference": reference} if reference else {"content": content},
            allowed_mentions=None if ping_reply else {"parse": ["users", "roles", "everyone"]},
        )
        if reopen:
            await self._reopen_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.id

    async def user_posts(
        self,
        author_id: int,
        forum_id: int,
        title: str,
        content: str,
        *,
        tags: Iterable[str] = (),
        mention_bot: bool = False,
    ) -> tuple[int, int]:
        """A member opens a post in a forum; returns ``(thread_id, message_id)``, which are equal, as on Discord.

        The bot gets THREAD_CREATE (``newly_created``) then the starter message's MESSAGE_CREATE in the thread (blank
        without MESSAGE_CONTENT unless it mentions the bot; the title, being the thread's name, is always visible).
        ``tags`` are tag names. The starter message lands in ``user_messages``; answer in the post with
        ``user_says(..., channel_id=thread_id)``.
        """
        await self._ensure_connected()
        if author_id not in self.users:
            raise KeyError(f"unknown user {author_id}: call add_member first")
        forum = self._channel(forum_id)
        if forum["type"] != GUILD_FORUM:
            raise ValueError(f"channel {forum_id} is not a forum")
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        applied = [str(self.tag_id(forum_id, name)) for name in tags]
        thread, rec = await self._open_post(
            forum, author_id=author_id, body={"name": title, "applied_tags": applied}, message={"content": content}
        )
        return int(thread["id"]), rec.id

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user_id: int,
        channel_id: int | None = None,
        guild: bool = True,
    ) -> InteractionRecord:
        """A member runs ``/name`` (``"group sub"`` for subcommands); returns the record to assert on.

        Option types come from the synced command when the bot synced it (users/channels/roles get ``resolved``
        data), else they are inferred from the Python values. Sync guild commands first: only then does the
        interaction carry the ``guild_id`` discord.py needs to find them.
        """
        return await self._command_interaction(2, name, options, user_id, channel_id, guild, focused=None)

    async def user_reacts(self, user_id: int, message_id: int, emoji: str) -> None:
        """A member adds a (unicode) reaction to a message: MESSAGE_REACTION_ADD, with their member object."""
        await self._ensure_connected()
        rec = self.user_messages.get(message_id) or self.messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        rec.reactions.append((emoji, user_id))
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(rec.channel_id),
            "message_id": str(rec.id),
            "message_author_id": str(rec.author_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "type": 0,
            "guild_id": str(self.guild_id),
            "member": self.members[user_id],
        }
        await self.dispatch("MESSAGE_REACTION_ADD", data, intent=GUILD_MESSAGE_REACTIONS)

    async def message_command(self, name: str, message_id: int, *, user_id: int) -> InteractionRecord:
        """A member runs the message context-menu command ``name`` (Apps → name) on a message."""
        await self._ensure_connected()
        rec = self.user_messages.get(message_id) or self.messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        command = self._find_command(name, True, ctype_wanted=3)
        if command is None:
            raise LookupError(f"no synced message command {name!r}")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): rec.payload}},
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        ix = self._new_interaction(2, user_id=user_id, channel_id=rec.channel_id, guild=True, data=data)
        ix.name = name
        await self._dispatch_interaction(ix)
        return ix

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        user_id: int,
        channel_id: int | None = None,
        guild: bool = True,
    ) -> InteractionRecord:
        """The user types into option ``focused``; the bot's choices end up in ``record.choices``."""
        return await self._command_interaction(4, name, options, user_id, channel_id, guild, focused=focused)

    async def click(
        self, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None = None
    ) -> InteractionRecord:
        """A member clicks a button (or picks ``values`` in a select) on one of the bot's messages."""
        await self._ensure_connected()
        rec = self._messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        component = _find_component(rec.components, custom_id)
        if component is None:
            raise LookupError(f"no component {custom_id!r} on message {message_id}: {_custom_ids(rec.components)}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = values
        guild = rec.payload.get("guild_id") is not None
        ix = self._new_interaction(3, user_id=user_id, channel_id=rec.channel_id, guild=guild, data=data)
        ix.payload["message"] = rec.payload
        ix.custom_id, ix.message_id = custom_id, message_id
        await self._dispatch_interaction(ix)
        return ix

    # ========================================================================================== internals: ids/data

    def _next_id(self) -> int:
        """Snowflakes that increase strictly and decode to the current time, like Discord's."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    @staticmethod
    def _role_payload(
        role_id: int,
        name: str,
        permissions: int,
        *,
        position: int,
        managed: bool = False,
        tags: dict[str, Any] | None = None,
        mentionable: bool = False,
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": mentionable,
            "flags": 0,
        }
        if tags is not None:
            role["tags"] = tags
        return role

    def _text_channel_payload(
        self, channel_id: int, name: str, *, position: int, parent_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": GUILD_TEXT,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": str(parent_id) if parent_id is not None else None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }

    def _next_position(self) -> int:
        return sum(1 for c in self.channels.values() if c["type"] not in (1, *_THREAD_TYPES))

    def _put_channel(self, channel: dict[str, Any]) -> dict[str, Any]:
        """Store a new guild channel and tell a connected bot (CHANNEL_CREATE); before connecting, GUILD_CREATE does."""
        parent_id = channel.get("parent_id")
        if parent_id is not None and self.channels.get(int(parent_id), {}).get("type") != GUILD_CATEGORY:
            raise ValueError(f"{parent_id} is not a category: create it with add_category")
        self.channels[int(channel["id"])] = channel
        self._spawn_dispatch("CHANNEL_CREATE", channel, GUILDS)
        return channel

    def _thread_payload(
        self,
        thread_id: int,
        parent: dict[str, Any],
        *,
        owner_id: int,
        name: str,
        thread_type: int,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        now = _now_iso()
        duration = int(body.get("auto_archive_duration") or parent.get("default_auto_archive_duration") or 4320)
        if duration not in ARCHIVE_DURATIONS:
            raise _form_error(
                "auto_archive_duration", "BASE_TYPE_CHOICES", f"Value must be one of {ARCHIVE_DURATIONS}."
            )
        thread: dict[str, Any] = {
            "id": str(thread_id),
            "guild_id": str(self.guild_id),
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "type": thread_type,
            "last_message_id": None,
            "rate_limit_per_user": int(body.get("rate_limit_per_user") or 0),
            "message_count": 0,  # Discord's count leaves out a forum post's starter message
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": duration,
                "archive_timestamp": now,
                "locked": False,
                "invitable": bool(body.get("invitable", True)),
                "create_timestamp": now,
            },
        }
        if parent["type"] == GUILD_FORUM:
            thread["applied_tags"] = [str(t) for t in body.get("applied_tags") or []]
        if owner_id == self.bot_user_id:  # the bot's thread member object: only in threads it is in
            thread["member"] = {"id": str(thread_id), "user_id": str(owner_id), "join_timestamp": now, "flags": 0}
        return thread

    @staticmethod
    def _thread_event(thread: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in thread.items() if k != "member"}

    def _put_member(
        self, user_id: int, name: str, *, roles: list[int], bot: bool = False, nick: str | None = None
    ) -> dict[str, Any]:
        user = {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": None if bot else name,
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
        }
        self.users[user_id] = user
        member = {
            "user": user,
            "nick": nick,
            "avatar": None,
            "roles": [str(r) for r in roles],
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        self.members[user_id] = member
        return member

    def _partial_member(self, user_id: int) -> dict[str, Any] | None:
        member = self.members.get(user_id)
        return None if member is None else {k: v for k, v in member.items() if k != "user"}

    def _bot_user(self) -> dict[str, Any]:
        return {**self.users[self.bot_user_id], "verified": True, "mfa_enabled": False, "flags": 0, "email": None}

    def _dm_channel(self, user_id: int) -> dict[str, Any]:
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id):
                return channel
        cid = self._next_id()
        channel = {"id": str(cid), "type": 1, "last_message_id": None, "flags": 0, "recipients": [self.users[user_id]]}
        self.channels[cid] = channel
        return channel

    def _channel(self, channel_id: int) -> dict[str, Any]:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise _unknown("Channel", 10003) from None

    def _message(self, channel_id: int, message_id: int) -> MessageRecord:
        rec = self._messages.get(message_id)
        if rec is None or rec.channel_id != channel_id or rec.deleted:
            raise _unknown("Message", 10008)
        return rec

    def guild_payload(self) -> dict[str, Any]:
        """The GUILD_CREATE body; members beyond the bot only with the GUILD_MEMBERS intent, as on Discord."""
        members_intent = bool(self.identify and self.identify.get("intents", 0) & GUILD_MEMBERS)
        members = list(self.members.values()) if members_intent else [self.members[self.bot_user_id]]
        channels = [c for c in self.channels.values() if c["type"] not in (1, *_THREAD_TYPES)]
        # Active threads only, as on Discord: archived ones are fetched on demand.
        threads = [
            c for c in self.channels.values() if c["type"] in _THREAD_TYPES and not c["thread_metadata"]["archived"]
        ]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "application_id": None,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": channels,
            "threads": threads,
            "members": members,
            "member_count": len(self.members),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "joined_at": _now_iso(),
        }

    # =========================================================================================== internals: gateway

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

    # ========================================================================================== internals: messages

    def _compute_pings(
        self, content: str, allowed: dict[str, Any] | None, replied_author: int | None, author_id: int, channel_id: int
    ) -> tuple[Pings, Pings]:
        """What ``allowed_mentions`` lets through (absent: parse everything and ping the replied-to author), and whom
        Discord then notifies: a role only if it is mentionable or the author has Mention Everyone in the channel,
        which @everyone and @here also take."""
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        user_ids = {int(u) for u in (allowed or {}).get("users", [])}
        role_ids = {int(r) for r in (allowed or {}).get("roles", [])}
        users = {int(u) for u in _USER_MENTION.findall(content) if "users" in parse or int(u) in user_ids}
        roles = {int(r) for r in _ROLE_MENTION.findall(content) if "roles" in parse or int(r) in role_ids}
        replied = True if allowed is None else bool(allowed.get("replied_user", False))
        if replied_author is not None and replied:
            users.add(replied_author)
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        allowed_pings = Pings(frozenset(users), frozenset(roles), everyone)
        channel = self._channel(channel_id)
        in_guild = channel.get("guild_id") is not None and author_id in self.members
        may_everyone = in_guild and bool(self.permissions_in(author_id, channel_id) & MENTION_EVERYONE)
        notified_roles = {
            r for r in roles if in_guild and r in self.roles and (self.roles[r]["mentionable"] or may_everyone)
        }
        return allowed_pings, Pings(frozenset(users), frozenset(notified_roles), everyone and may_everyone)

    def _mention_objects(self, content: str, extra: int | None, guild: bool) -> list[dict[str, Any]]:
        ids: list[int] = []
        for raw in _USER_MENTION.findall(content):
            if int(raw) not in ids and int(raw) in self.users:
                ids.append(int(raw))
        if extra is not None and extra not in ids:
            ids.append(extra)
        out = []
        for uid in ids:
            mention = dict(self.users[uid])
            member = self._partial_member(uid) if guild else None
            if member is not None:
                mention["member"] = member
            out.append(mention)
        return out

    def _check_body(self, content: str, body: dict[str, Any], *, creating: bool) -> None:
        if len(content) > CONTENT_LIMIT:
            raise _too_long("content", CONTENT_LIMIT)
        if len(body.get("embeds") or []) > 10:
            raise _too_long("embeds", 10)
        has_anything = content or body.get("embeds") or body.get("components") or body.get("attachments")
        if creating and not (has_anything or body.get("sticker_ids") or body.get("poll")):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def _create_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        allowed_mentions: dict[str, Any] | None = None,
        interaction: InteractionRecord | None = None,
        files: tuple[str, ...] = (),
        extra_flags: int = 0,
        validate: bool = True,
        message_id: int | None = None,
    ) -> MessageRecord:
        channel = self._channel(channel_id)
        guild = channel.get("guild_id") is not None
        content = body.get("content") or ""
        if validate:
            self._check_body(content, body, creating=True)
        by_bot = author_id == self.bot_user_id
        if by_bot:
            allowed_mentions = body.get("allowed_mentions")
        reference = body.get("message_reference")
        referenced: MessageRecord | None = None
        if reference and reference.get("message_id"):
            referenced = self._messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                err = {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}
                raise DiscordError(400, 50035, "Invalid Form Body", {"message_reference": {"_errors": [err]}})
        replied_author = referenced.author_id if referenced else None
        allowed_pings, pings = self._compute_pings(content, allowed_mentions, replied_author, author_id, channel_id)
        reply_ping = replied_author if replied_author in pings.users else None
        mid = message_id or self._next_id()
        flags = int(body.get("flags") or 0) | extra_flags
        attachments = [
            {
                "id": str(self._next_id()),
                "filename": name,
                "size": 0,
                "url": f"{self.api_base}/attachments/{name}",
                "proxy_url": f"{self.api_base}/attachments/{name}",
            }
            for name in files
        ]
        mtype = 0
        if referenced is not None:
            mtype = 19
        if interaction is not None and interaction.type in (2, 4):
            mtype = 20
        payload: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.users[author_id],
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": pings.everyone,
            "mentions": self._mention_objects(content, reply_ping, guild),
            "mention_roles": [str(r) for r in pings.roles],
            "mention_channels": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "reactions": [],
            "pinned": False,
            "type": mtype,
            "flags": flags,
            "components": body.get("components") or [],
        }
        if guild:
            payload["guild_id"] = channel["guild_id"]
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if referenced is not None:
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(referenced.id),
                "channel_id": str(referenced.channel_id),
                **({"guild_id": channel["guild_id"]} if guild else {}),
            }
            payload["referenced_message"] = {k: v for k, v in referenced.payload.items() if k != "referenced_message"}
        if interaction is not None:
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            }
            if interaction.name:
                metadata["name"] = interaction.name
            if interaction.message_id:
                metadata["interacted_message_id"] = str(interaction.message_id)
            if interaction.original_message_id:
                metadata["original_response_message_id"] = str(interaction.original_message_id)
            payload["interaction_metadata"] = metadata
        rec = MessageRecord(
            id=mid,
            channel_id=channel_id,
            author_id=author_id,
            by_bot=by_bot,
            payload=payload,
            reply_to=referenced.id if referenced else None,
            interaction_token=interaction.token if interaction else None,
            files=files,
        )
        rec.versions.append(
            MessageVersion(
                self.now(),
                content,
                payload["embeds"],
                payload["components"],
                flags,
                allowed_mentions,
                pings,
                allowed_pings,
            )
        )
        (self.messages if by_bot else self.user_messages)[mid] = rec
        self._messages[mid] = rec
        channel["last_message_id"] = str(mid)
        if channel["type"] in _THREAD_TYPES and mid != channel_id:  # a forum post's starter message is not counted
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        return rec

    def _edit_message(self, rec: MessageRecord, body: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        content = body["content"] if body.get("content") is not None else rec.content
        self._check_body(content or "", body, creating=False)
        payload = rec.payload
        payload["content"] = content or ""
        for key in ("embeds", "components"):
            if body.get(key) is not None:
                payload[key] = body[key]
        flags = rec.flags & ~LOADING
        if body.get("flags") is not None:
            flags = (int(body["flags"]) & ~EPHEMERAL) | (rec.flags & EPHEMERAL)
        payload["flags"] = flags
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or []}
            payload["attachments"] = [a for a in payload["attachments"] if a["id"] in keep]
        payload["edited_timestamp"] = _now_iso()
        allowed = body.get("allowed_mentions")
        # Discord notifies on create only, but a deferred answer's first edit does ping: judge every version.
        allowed_pings, pings = self._compute_pings(payload["content"], allowed, None, rec.author_id, rec.channel_id)
        rec.files = rec.files + files
        rec.versions.append(
            MessageVersion(
                self.now(),
                payload["content"],
                payload["embeds"],
                payload["components"],
                flags,
                allowed,
                pings,
                allowed_pings,
            )
        )

    async def _delete_message(self, rec: MessageRecord) -> None:
        rec.deleted_at = self.now()
        channel = self.channels.get(rec.channel_id, {})
        if channel.get("type") in _THREAD_TYPES and rec.id != rec.channel_id:
            channel["message_count"] = max(0, channel["message_count"] - 1)
        if not rec.ephemeral:
            data = {"id": str(rec.id), "channel_id": str(rec.channel_id)}
            if rec.payload.get("guild_id"):
                data["guild_id"] = rec.payload["guild_id"]
            intent = GUILD_MESSAGES if rec.payload.get("guild_id") else DIRECT_MESSAGES
            await self.dispatch("MESSAGE_DELETE", data, intent=intent)

    def _require(self, bits: int, channel: dict[str, Any]) -> None:
        """The bot's permissions in ``channel``, overwrites included (403 50013 without them)."""
        if self.bot_permissions_in(int(channel["id"])) & bits != bits:
            raise _missing_permissions()

    def _require_send(self, channel: dict[str, Any]) -> None:
        if channel["type"] in (GUILD_CATEGORY, GUILD_FORUM):
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        if channel.get("guild_id") is None:
            return
        send = P(send_messages_in_threads=True) if channel["type"] in _THREAD_TYPES else P(send_messages=True)
        self._require(P(view_channel=True).value | send.value, channel)

    def _check_can_post(self, channel: dict[str, Any], author_id: int) -> bool:
        """Whether posting in ``channel`` will unarchive it (Discord does so on a send); locked threads take
        MANAGE_THREADS to post in."""
        meta = channel.get("thread_metadata")
        if meta is None:
            return False
        if meta["locked"] and not self.permissions_in(author_id, int(channel["id"])) & MANAGE_THREADS:
            raise _thread_archived() if meta["archived"] else _missing_permissions()
        return bool(meta["archived"])

    async def _reopen_thread(self, thread: dict[str, Any]) -> None:
        thread["thread_metadata"].update(archived=False, archive_timestamp=_now_iso())
        await self.dispatch("THREAD_UPDATE", self._thread_event(thread), intent=GUILDS)

    def _check_not_archived(self, channel_id: int) -> None:
        """Reactions, edits and deletes in an archived thread fail: only a new message reopens it."""
        meta = self.channels.get(channel_id, {}).get("thread_metadata")
        if meta is not None and meta["archived"]:
            raise _thread_archived()

    # ========================================================================================= internals: forums

    def _check_tags(self, forum: dict[str, Any] | None, tags: list[str]) -> None:
        """At most 5, each one of the forum's ``available_tags`` (a thread outside a forum has none).

        Repeats are kept, as Discord keeps them. The per-item error code is the fake's own: assert on 400/50035.
        """
        if len(tags) > MAX_APPLIED_TAGS:
            raise _too_long("applied_tags", MAX_APPLIED_TAGS)
        available = {t["id"] for t in (forum or {}).get("available_tags") or []}
        unknown = {
            str(i): {"_errors": [{"code": "TAG_INVALID", "message": f"Tag {tag} is not available in this channel"}]}
            for i, tag in enumerate(tags)
            if tag not in available
        }
        if unknown:
            raise DiscordError(400, 50035, "Invalid Form Body", {"applied_tags": unknown})

    @staticmethod
    def _moderated(forum: dict[str, Any] | None, tags: Iterable[str]) -> bool:
        moderated = {t["id"] for t in (forum or {}).get("available_tags") or [] if t.get("moderated")}
        return any(tag in moderated for tag in tags)

    async def _open_post(
        self,
        forum: dict[str, Any],
        *,
        author_id: int,
        body: dict[str, Any],
        message: dict[str, Any],
        files: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], MessageRecord]:
        """A forum post: a public thread and its starter message, which share one id; THREAD_CREATE, then the
        message's MESSAGE_CREATE."""
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise _too_long("name", 100)
        tags = [str(t) for t in body.get("applied_tags") or []]
        self._check_tags(forum, tags)
        if forum["flags"] & REQUIRE_TAG and not tags:
            raise DiscordError(400, 40067, "A tag is required to create a forum post in this channel")
        self._check_body(message.get("content") or "", message, creating=True)
        tid = self._next_id()
        thread = self._thread_payload(tid, forum, owner_id=author_id, name=name, thread_type=11, body=body)
        self.channels[tid] = thread
        try:
            rec = self._create_message(channel_id=tid, author_id=author_id, body=message, files=files, message_id=tid)
        except DiscordError:
            del self.channels[tid]
            raise
        rec.thread_id = tid
        forum["last_message_id"] = str(tid)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, intent=GUILDS)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return thread, rec

    # ====================================================================================== internals: interactions

    def _new_interaction(
        self, itype: int, *, user_id: int, channel_id: int, guild: bool, data: dict[str, Any]
    ) -> InteractionRecord:
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}: call add_member first")
        iid = self._next_id()
        token = f"itoken-{iid}-{secrets.token_hex(6)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "app_permissions": str(self.bot_permissions_in(channel_id) if guild else self.bot_permissions),
        }
        if guild:
            channel = self._channel(channel_id)
            member = {**self.members[user_id], "permissions": str(self.permissions_in(user_id, channel_id))}
            payload.update(
                guild_id=str(self.guild_id),
                guild_locale="en-US",
                guild={"id": str(self.guild_id), "locale": "en-US", "features": []},
                member=member,
                channel={**channel, "permissions": member["permissions"]},
                channel_id=channel["id"],
                context=0,
                authorizing_integration_owners={"0": str(self.guild_id)},
            )
        else:
            channel = self._dm_channel(user_id)
            channel_id = int(channel["id"])
            payload.update(
                user=self.users[user_id],
                channel=channel,
                channel_id=channel["id"],
                context=1,
                authorizing_integration_owners={"0": str(self.guild_id)},
            )
        return InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            user_id=user_id,
            channel_id=channel_id,
            guild_id=self.guild_id if guild else None,
            payload=payload,
            created_at=self.now(),
            _fake=self,
        )

    def _find_command(self, name: str, guild: bool, ctype_wanted: int = 1) -> dict[str, Any] | None:
        scopes: list[int | None] = [self.guild_id, None] if guild else [None]
        for scope in scopes:
            for (cname, ctype), command in self._commands.get(scope, {}).items():
                if cname == name and ctype == ctype_wanted:
                    return command
        return None

    async def _command_interaction(
        self,
        itype: int,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        user_id: int,
        channel_id: int | None,
        guild: bool,
        *,
        focused: str | None,
    ) -> InteractionRecord:
        await self._ensure_connected()
        root, *subs = name.split()
        command = self._find_command(root, guild)
        resolved: dict[str, dict[str, Any]] = {}
        defs = command.get("options") if command else None
        if isinstance(options, list):
            leaf = options
        else:
            for sub in subs:  # descend to the leaf's option definitions
                sub_def = next((o for o in defs or [] if o["name"] == sub), None)
                defs = sub_def.get("options") if sub_def else None
            leaf = self._build_options(defs, options or {}, resolved, focused)
        for sub in reversed(subs):
            kind = 1 if sub == subs[-1] else 2
            leaf = [{"name": sub, "type": kind, "options": leaf}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._next_id()),
            "name": root,
            "type": 1,
            "options": leaf,
        }
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        ix = self._new_interaction(
            itype, user_id=user_id, channel_id=channel_id or self.channel_id, guild=guild, data=data
        )
        ix.name = name
        await self._dispatch_interaction(ix)
        return ix

    def _build_options(
        self,
        defs: list[dict[str, Any]] | None,
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        focused: str | None,
    ) -> list[dict[str, Any]]:
        out = []
        for name, value in values.items():
            definition = next((o for o in defs or [] if o["name"] == name), None)
            otype = definition["type"] if definition else _infer_option_type(value)
            if name == focused:
                out.append({"name": name, "type": otype, "value": str(value), "focused": True})
                continue
            if otype in (6, 7, 8, 9):
                value = self._resolve(otype, int(value), resolved)
            out.append({"name": name, "type": otype, "value": value})
        return out

    def _resolve(self, otype: int, entity_id: int, resolved: dict[str, dict[str, Any]]) -> str:
        key = str(entity_id)
        if otype in (6, 9) and entity_id in self.users:
            resolved.setdefault("users", {})[key] = self.users[entity_id]
            member = self._partial_member(entity_id)
            if member is not None:
                member["permissions"] = str(self.permissions_of(entity_id))
                resolved.setdefault("members", {})[key] = member
        elif otype == 7 and entity_id in self.channels:
            channel = self.channels[entity_id]
            resolved.setdefault("channels", {})[key] = {**channel, "permissions": str(self.bot_permissions)}
        elif otype in (8, 9) and entity_id in self.roles:
            resolved.setdefault("roles", {})[key] = self.roles[entity_id]
        else:
            raise KeyError(f"cannot resolve option value {entity_id} for option type {otype}")
        return key

    def _interaction_for(self, token: str, interaction_or_app_id: int, *, webhook: bool) -> InteractionRecord:
        ix = self.interactions.get(token)
        expected = (self.application_id if webhook else ix.id) if ix else None
        if ix is None or interaction_or_app_id != expected:
            raise _unknown("Webhook", 10015) if webhook else _unknown("interaction", 10062)
        if webhook and self.token_lifetime is not None and self.now() - ix.created_at > self.token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")  # followups and edits: the token expired
        return ix

    # ====================================================================================================== HTTP

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

    # ------------------------------------------------------------------------------------------------ REST routes

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

    async def _r_history(self, req: _Request) -> Any:
        cid = int(req.params["channel_id"])
        self._channel(cid)
        limit = int(req.query.get("limit", 50))
        before = int(req.query.get("before", 1 << 63))
        after = int(req.query.get("after", 0))
        found = [
            self._read_over_rest(r.payload)
            for r in self._messages.values()
            if r.channel_id == cid and not r.deleted and not r.ephemeral and after < r.id < before
        ]
        return list(reversed(found))[:limit]

    async def _r_send(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        self._require_send(channel)
        reopen = self._check_can_post(channel, self.bot_user_id)
        rec = self._create_message(
            channel_id=int(channel["id"]), author_id=self.bot_user_id, body=req.json or {}, files=req.files
        )
        if reopen:
            await self._reopen_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.payload

    async def _r_get_message(self, req: _Request) -> Any:
        return self._read_over_rest(self._message(int(req.params["channel_id"]), int(req.params["message_id"])).payload)

    def _read_over_rest(self, message: dict[str, Any]) -> dict[str, Any]:
        """REST blanks content as the gateway does, by the app's switch rather than a session's intents."""
        if self.message_content_enabled:
            return message
        bot = str(self.bot_user_id)
        if message.get("guild_id") is None or message["author"]["id"] == bot:
            return message
        if any(u["id"] == bot for u in message.get("mentions", [])):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    async def _r_edit(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if not rec.by_bot:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._check_not_archived(rec.channel_id)
        self._edit_message(rec, req.json or {}, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", rec)
        return rec.payload

    async def _r_delete(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if not rec.by_bot:
            self._require(P(manage_messages=True).value, self._channel(rec.channel_id))
        self._check_not_archived(rec.channel_id)
        await self._delete_message(rec)

    async def _r_react(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if self._channel(rec.channel_id).get("guild_id") is not None:
            self._require(P(add_reactions=True, read_message_history=True).value, self._channel(rec.channel_id))
        self._check_not_archived(rec.channel_id)
        emoji = req.params["emoji"]
        if (emoji, self.bot_user_id) not in rec.reactions:
            rec.reactions.append((emoji, self.bot_user_id))
            custom = re.fullmatch(r"(?:a?:)?([^:]+):(\d+)", emoji)  # "name:id", as discord.py sends custom emoji
            name, emoji_id = custom.groups() if custom else (emoji, None)
            data: dict[str, Any] = {
                "user_id": str(self.bot_user_id),
                "channel_id": str(rec.channel_id),
                "message_id": str(rec.id),
                "message_author_id": str(rec.author_id),
                "emoji": {"id": emoji_id, "name": name},
                "burst": False,
                "burst_colors": [],
                "type": 0,
            }
            in_guild = rec.payload.get("guild_id") is not None
            if in_guild:
                data["guild_id"] = rec.payload["guild_id"]
                data["member"] = self.members[self.bot_user_id]
            await self.dispatch(
                "MESSAGE_REACTION_ADD", data, intent=GUILD_MESSAGE_REACTIONS if in_guild else DIRECT_MESSAGE_REACTIONS
            )

    async def _r_unreact(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        with contextlib.suppress(ValueError):
            rec.reactions.remove((req.params["emoji"], self.bot_user_id))

    async def _r_typing(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        self._require_send(channel)

    async def _r_thread_from_message(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if rec.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = await self._create_thread(rec.channel_id, req.json or {}, thread_id=rec.id, thread_type=11)
        rec.thread_id = rec.id
        rec.payload["thread"] = thread
        return thread

    async def _r_thread(self, req: _Request) -> Any:
        body = req.json or {}
        parent = self._channel(int(req.params["channel_id"]))
        if parent["type"] == GUILD_FORUM:
            return await self._bot_opens_post(parent, body, req.files)
        return await self._create_thread(int(parent["id"]), body, None, int(body.get("type", 12)))

    async def _bot_opens_post(self, forum: dict[str, Any], body: dict[str, Any], files: tuple[str, ...]) -> Any:
        """``ForumChannel.create_thread``: the channel fields plus the starter message under ``message``; the answer
        is the thread with the message nested the same way."""
        self._require(P(view_channel=True, send_messages=True).value, forum)  # Discord: a post takes Send Messages
        message = body.get("message")
        if not isinstance(message, dict):
            raise _form_error("message", "BASE_TYPE_REQUIRED", "This field is required")
        if self._moderated(forum, [str(t) for t in body.get("applied_tags") or []]):
            self._require(MANAGE_THREADS, forum)
        thread, rec = await self._open_post(forum, author_id=self.bot_user_id, body=body, message=message, files=files)
        return {**thread, "message": rec.payload}

    async def _create_thread(
        self, parent_id: int, body: dict[str, Any], thread_id: int | None, thread_type: int
    ) -> dict[str, Any]:
        parent = self._channel(parent_id)
        if parent.get("guild_id") is None or parent["type"] not in (GUILD_TEXT, 5):  # text and announcement
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        bit = P(create_public_threads=True) if thread_type != 12 else P(create_private_threads=True)
        self._require(P(view_channel=True).value | bit.value, parent)
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise _too_long("name", 100)
        tid = thread_id or self._next_id()
        thread = self._thread_payload(
            tid, parent, owner_id=self.bot_user_id, name=name, thread_type=thread_type, body=body
        )
        self.channels[tid] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, intent=GUILDS)
        return thread

    async def _r_edit_channel(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        if channel.get("guild_id") is None:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        body = req.json or {}
        if channel["type"] in _THREAD_TYPES:
            await self._edit_thread(channel, body)
        else:
            await self._edit_guild_channel(channel, body)
        return channel

    async def _edit_thread(self, thread: dict[str, Any], body: dict[str, Any]) -> None:
        meta = thread["thread_metadata"]
        parent = self.channels.get(int(thread["parent_id"]))
        self._require(P(view_channel=True).value, thread)
        if meta["archived"] and body.get("archived") is not False:
            raise _thread_archived()  # even to lock it: unarchive in the same call
        if "name" in body and not 1 <= len(body["name"] or "") <= 100:
            raise _too_long("name", 100)
        if "auto_archive_duration" in body and body["auto_archive_duration"] not in ARCHIVE_DURATIONS:
            raise _form_error(
                "auto_archive_duration", "BASE_TYPE_CHOICES", f"Value must be one of {ARCHIVE_DURATIONS}."
            )
        tags: list[str] | None = None
        if "applied_tags" in body:
            tags = [str(t) for t in body["applied_tags"] or []]
            self._check_tags(parent, tags)
        managed = self.bot_permissions_in(int(thread["id"])) & MANAGE_THREADS
        if not managed and not self._may_edit_unmanaged(thread, body, parent, tags):
            raise _missing_permissions()
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for key in ("name", "rate_limit_per_user", "flags", "applied_tags"):
            if key in body:
                before[key] = thread.get(key)
                after[key] = thread[key] = tags if key == "applied_tags" else body[key]
        for key in ("archived", "locked", "auto_archive_duration", "invitable"):
            if key in body and not (key == "invitable" and thread["type"] != 12):
                before[key] = meta[key]
                after[key] = meta[key] = body[key]
        if before.get("archived", meta["archived"]) != meta["archived"]:
            meta["archive_timestamp"] = _now_iso()
        self.channel_edits.append(ChannelEdit(int(thread["id"]), self.now(), before, after))
        await self.dispatch("THREAD_UPDATE", self._thread_event(thread), intent=GUILDS)

    def _may_edit_unmanaged(
        self, thread: dict[str, Any], body: dict[str, Any], parent: dict[str, Any] | None, tags: list[str] | None
    ) -> bool:
        """Without MANAGE_THREADS: anyone who may post can reopen an unlocked thread; its owner can also rename,
        archive and retag it (tags marked ``moderated`` excepted)."""
        if thread["thread_metadata"]["locked"]:
            return False
        if body == {"archived": False}:
            self._require(P(send_messages=True).value, thread)
            return True
        if int(thread["owner_id"]) != self.bot_user_id:
            return False
        if set(body) - {"name", "archived", "auto_archive_duration", "applied_tags"}:
            return False
        return tags is None or not self._moderated(parent, set(tags) ^ set(thread.get("applied_tags") or []))

    async def _edit_guild_channel(self, channel: dict[str, Any], body: dict[str, Any]) -> None:
        """Channel settings (MANAGE_CHANNELS): the keys the channel object has; a forum's ``available_tags`` keep
        the ids they are sent with and get new ones otherwise (``ForumChannel.create_tag``)."""
        self._require(P(view_channel=True, manage_channels=True).value, channel)
        if "name" in body and not 1 <= len(body["name"] or "") <= 100:
            raise _too_long("name", 100)
        changes = {k: v for k, v in body.items() if k in channel and k not in ("id", "type", "guild_id")}
        if "parent_id" in changes and changes["parent_id"] is not None:
            changes["parent_id"] = str(changes["parent_id"])
        if "available_tags" in changes:
            sent = changes["available_tags"] or []
            if len(sent) > MAX_FORUM_TAGS:
                raise _too_long("available_tags", MAX_FORUM_TAGS)
            known = {t["id"] for t in channel["available_tags"]}
            changes["available_tags"] = [
                {
                    "id": str(tag["id"]) if str(tag.get("id")) in known else str(self._next_id()),
                    "name": tag["name"],
                    "moderated": bool(tag.get("moderated", False)),
                    "emoji_id": tag.get("emoji_id"),
                    "emoji_name": tag.get("emoji_name"),
                }
                for tag in sent
            ]
        before = {k: channel[k] for k in changes}
        channel.update(changes)
        self.channel_edits.append(ChannelEdit(int(channel["id"]), self.now(), before, dict(changes)))
        await self.dispatch("CHANNEL_UPDATE", channel, intent=GUILDS)

    # ------------------------------------------------------------------------------------------- interaction routes

    async def _r_callback(self, req: _Request) -> Any:
        ix = self._interaction_for(req.params["token"], int(req.params["interaction_id"]), webhook=False)
        now = self.now()
        if self.interaction_deadline is not None and now - ix.created_at > self.interaction_deadline:
            raise _unknown("interaction", 10062)
        if ix.callback is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = req.json or {}
        cb_type, data = int(body["type"]), body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        rec: MessageRecord | None = None
        if cb_type in (4, 5):
            rec = self._create_message(
                channel_id=ix.channel_id,
                author_id=self.bot_user_id,
                body=data if cb_type == 4 else {"flags": data.get("flags", 0)},
                interaction=ix,
                files=req.files,
                extra_flags=LOADING if cb_type == 5 else 0,
                validate=cb_type == 4,
            )
            ix.original_message_id = rec.id
        elif cb_type in (6, 7):
            if ix.message_id is None:
                raise DiscordError(400, 40004, "Interaction response type is only valid for component interactions")
            rec = self._messages[ix.message_id]
            ix.original_message_id = rec.id
            if cb_type == 7:
                self._edit_message(rec, data, req.files)
        elif (cb_type == 8 and ix.type != 4) or cb_type not in (1, 8, 9):
            raise DiscordError(400, 50035, "Invalid Form Body")
        ix.callback = CallbackRecord(cb_type, now, data, ephemeral)
        if rec is not None:
            await self._dispatch_message("MESSAGE_CREATE" if cb_type in (4, 5) else "MESSAGE_UPDATE", rec)
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return None
        result: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": cb_type == 5,
                "response_message_ephemeral": bool(rec.ephemeral) if rec else ephemeral,
            }
        }
        if rec is not None:
            result["interaction"]["response_message_id"] = str(rec.id)
            result["resource"] = {"type": cb_type, "message": rec.payload}
        return result

    async def _r_followup(self, req: _Request) -> Any:
        ix = self._interaction_for(req.params["token"], int(req.params["app_id"]), webhook=True)
        if ix.callback is None:
            raise _unknown("Webhook", 10015)
        body = req.json or {}
        original = ix.original
        if ix.callback.type == 5 and original is not None and original.loading:
            # Discord: the first followup after a "thinking" defer replaces the loading message.
            self._edit_message(original, {**body, "flags": None}, req.files)
            ix.followup_ids.append(original.id)
            await self._dispatch_message("MESSAGE_UPDATE", original)
            rec = original
        else:
            rec = self._create_message(
                channel_id=ix.channel_id, author_id=self.bot_user_id, body=body, interaction=ix, files=req.files
            )
            ix.followup_ids.append(rec.id)
            await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.payload if req.query.get("wait", "").lower() in ("1", "true") else None

    def _webhook_message(self, req: _Request) -> tuple[InteractionRecord, MessageRecord]:
        ix = self._interaction_for(req.params["token"], int(req.params["app_id"]), webhook=True)
        target = req.params["message_id"]
        mid = ix.original_message_id if target == "@original" else int(target)
        if mid is None or (mid != ix.original_message_id and mid not in ix.followup_ids):
            raise _unknown("Message", 10008)
        rec = self._messages[mid]
        if rec.deleted:
            raise _unknown("Message", 10008)
        return ix, rec

    async def _r_webhook_get(self, req: _Request) -> Any:
        return self._webhook_message(req)[1].payload

    async def _r_webhook_edit(self, req: _Request) -> Any:
        _, rec = self._webhook_message(req)
        self._edit_message(rec, req.json or {}, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", rec)
        return rec.payload

    async def _r_webhook_delete(self, req: _Request) -> Any:
        _, rec = self._webhook_message(req)
        await self._delete_message(rec)

    # -------------------------------------------------------------------------------------------- command routes

    def _command_scope(self, req: _Request) -> int | None:
        if int(req.params["app_id"]) != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = req.params.get("guild_id")
        if guild_id is not None and int(guild_id) != self.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return int(guild_id) if guild_id else None

    def _store_command(self, scope: int | None, body: dict[str, Any], old: dict[tuple[str, int], Any]) -> dict:
        key = (body["name"], int(body.get("type", 1)))
        previous = old.get(key)
        command = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **body,
            "id": previous["id"] if previous else str(self._next_id()),  # Discord keeps ids across re-syncs
            "application_id": str(self.application_id),
            "version": str(self._next_id()),
        }
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    async def _r_get_commands(self, req: _Request) -> Any:
        return self.synced_commands(self._command_scope(req))

    async def _r_put_commands(self, req: _Request) -> Any:
        scope = self._command_scope(req)
        bodies = req.json or []
        errors = {str(i): e for i, body in enumerate(bodies) if (e := _command_errors(body))}
        keys = [(body.get("name"), int(body.get("type", 1))) for body in bodies]
        errors.update(
            {
                str(i): {
                    "name": _field_error(
                        "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
                    )
                }
                for i, key in enumerate(keys)
                if key in keys[:i]
            }
        )
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        old = self._commands.get(scope, {})
        new: dict[tuple[str, int], dict[str, Any]] = {}
        for body in bodies:
            command = self._store_command(scope, body, old)
            new[(command["name"], int(command["type"]))] = command
        self._commands[scope] = new
        return list(new.values())

    async def _r_upsert_command(self, req: _Request) -> Any:
        scope = self._command_scope(req)
        errors = _command_errors(req.json or {})
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        store = self._commands.setdefault(scope, {})
        command = self._store_command(scope, req.json, store)
        store[(command["name"], int(command["type"]))] = command
        return command


# --------------------------------------------------------------------------------------------------------------------


def pending_discordpy_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running discord.py code, e.g. a View's timeout; check after closing a bot to avoid
    "Task was destroyed but it is pending" at the end of a session-scoped event loop."""
    pending = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and f"{os.sep}discord{os.sep}" in code.co_filename:
            pending.append(task)
    return pending


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


def _fault_response(fault: _Fault) -> web.Response:
    if fault.status == 429:
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": fault.is_global}
        body.update(fault.body or {})
        headers = {
            "Via": "1.1 google",  # discord.py treats a 429 without Via as a Cloudflare ban
            "Retry-After": str(fault.retry_after),
            "X-RateLimit-Scope": "global" if fault.is_global else "user",
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        return _json(body, 429, headers)
    assert fault.status is not None
    return _json(fault.body or {"message": f"injected {fault.status}", "code": 0}, fault.status)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _bad_name(name: Any, *, slash: bool) -> dict[str, Any] | None:
    """Slash commands and options: lowercase, 1-32 of letters, numbers, - _ '. Context menus: any 1-32 characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if slash and (not COMMAND_NAME.match(name) or name != name.lower()):
        return _field_error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    return None


def _bad_description(description: Any) -> dict[str, Any] | None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return None


def _command_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's checks of one command payload; ``{}`` when it is accepted, else the ``errors`` of a 50035."""
    slash = int(body.get("type", 1)) == 1
    errors: dict[str, Any] = {}
    if (bad := _bad_name(body.get("name"), slash=slash)) is not None:
        errors["name"] = bad
    if slash:
        if (bad := _bad_description(body.get("description"))) is not None:
            errors["description"] = bad
        if options := _options_errors(body.get("options") or []):
            errors["options"] = options
    else:
        if body.get("description"):
            errors["description"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 0 or fewer in length.")
        if body.get("options"):
            errors["options"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 0 or fewer in length.")
    return errors


def _options_errors(options: list[dict[str, Any]]) -> dict[str, Any]:
    if len(options) > MAX_OPTIONS:
        return _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    optional_seen = False
    for i, option in enumerate(options):
        own: dict[str, Any] = {}
        if (bad := _bad_name(option.get("name"), slash=True)) is not None:
            own["name"] = bad
        elif option["name"] in seen:
            own["name"] = _field_error("APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique")
        seen.add(str(option.get("name")))
        if (bad := _bad_description(option.get("description"))) is not None:
            own["description"] = bad
        if int(option.get("type", 3)) in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if nested := _options_errors(option.get("options") or []):
                own["options"] = nested
        elif option.get("required"):
            if optional_seen:
                own["required"] = _field_error(
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            own["choices"] = _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
        else:
            bad_choices = {
                str(j): {"name": _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")}
                for j, choice in enumerate(choices)
                if not 1 <= len(str(choice.get("name") or "")) <= 100
            }
            if bad_choices:
                own["choices"] = bad_choices
        if own:
            errors[str(i)] = own
    return errors


def _token_in(path: str) -> str | None:
    m = re.match(r"^/(?:interactions/\d+|webhooks/\d+)/([^/]+)", path)
    return m.group(1) if m else None


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        if isinstance(component.get("accessory"), dict):
            yield component["accessory"]
        if isinstance(component.get("component"), dict):
            yield from _walk_components([component["component"]])


def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    return next((c for c in _walk_components(components) if c.get("custom_id") == custom_id), None)


def _custom_ids(components: list[dict[str, Any]]) -> list[str]:
    return [c["custom_id"] for c in _walk_components(components) if "custom_id" in c]
