"""A loopback fake of Slack's Web API (HTTP), its response_url webhooks and Socket Mode (a websocket handed out by
``apps.connections.open``), so tests drive the real slack_sdk and slack-bolt clients; only the far end is fake.

Typical use::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)
        ...
        envelope = await slack.mention("C1", "U1", "<@UBOT> how do I index?")
        await slack.wait_acked(envelope)

Realism that tests can rely on (each is what Slack does):

- Every Socket Mode envelope must be acknowledged within ``ack_timeout`` (3 s); otherwise it is delivered again
  with ``retry_attempt`` + 1 and ``retry_reason`` "timeout", up to three retries, like the Events API. Each
  delivery goes to one connection (the newest); while the app has none, an attempt is lost like any other.
- Socket Mode connections end as Slack ends them: ``disconnect()`` sends the ``disconnect`` message (the app is
  to open a new connection; the old one is closed once it has, or after a grace period) and ``drop()`` cuts
  every socket without a close frame, as a network failure does. ``connections`` counts the sockets opened;
  ``wait_connected(connections=n)`` waits for the n-th.
- Users act through envelopes shaped as Slack sends them: ``mention`` (``app_mention``, and the same message as
  a ``message`` event with its own ``event_id``, as Slack sends both to an app that reads the channel),
  ``message`` (a ``message`` event, as with channels:history / im:history; ``subtype`` "file_share" or
  "thread_broadcast" for a message with a file or a thread reply also sent to the channel), ``edit`` (a
  ``message_changed`` event and, when the edited text mentions the bot, ``app_mention`` again for the same
  ``ts`` with an ``edited`` field and a new ``event_id``), ``slash`` (a slash command), ``click`` (a
  ``block_actions`` payload for a button that must exist in the stored message) and ``assistant_thread_started``.
- Expiries run on the fake's clock, ``now()``: real time plus whatever ``advance(seconds)`` added, so a test can
  let minutes pass without sleeping; ``latency[method] = seconds`` makes every call of a method take that long
  on it (a slow Slack answer, without the wait).
- A ``trigger_id`` (in slash commands, clicks, shortcuts and view submissions) opens one modal with ``views.open``
  within 3 seconds: ``expired_trigger_id`` after that, ``exchanged_trigger_id`` the second time,
  ``invalid_trigger_id`` for one the fake never issued. ``views.update`` (by ``view_id`` or ``external_id``)
  replaces an open modal in ``views`` without a trigger; an unknown view is ``not_found``.
- With ``echo_bot_messages=True`` each ``chat.postMessage`` also comes back as a ``message`` event carrying the
  bot's ``bot_id`` and ``user`` (collected in ``echoes``), as Slack echoes a bot's own posts; bolt's self-event
  filter recognises them because ``auth.test`` answers the same ids. (Edits and streams are not echoed.)
- ``chat.postMessage`` / ``chat.update`` / ``chat.postEphemeral`` fail with ``msg_too_long`` over 40,000
  characters of text, with ``invalid_blocks`` over 50 blocks or a section text over 3,000 characters, with
  ``not_in_channel`` in a channel the bot has not joined (direct-message channels, ids starting with "D", always
  count as joined), and with ``invalid_auth`` for a wrong token.
- A ``response_url`` (in slash commands and clicks) takes JSON ``{text, blocks, response_type, replace_original,
  delete_original}`` with the same text and block limits (400 ``{"ok": false, "error": …}``) and answers 404
  ``used_too_many_times`` from its 6th use on, and 404 ``expired_url`` 30 minutes after it was issued: Slack allows
  5 uses in 30 minutes. Every POST counts, refused ones too (the stricter reading); a url the fake never issued
  answers 404 ``no_service``. On a click's url ``replace_original`` edits the clicked message and
  ``delete_original`` deletes it. What was posted is in ``responses`` (``responses_to(envelope)``).
- ``assistant.threads.setStatus`` / ``setSuggestedPrompts`` / ``setTitle`` are recorded; each needs ``channel_id`` and
  ``thread_ts``, and suggested prompts must be at most 4, each with a ``title`` and a ``message``, else
  ``invalid_arguments``.
- Chat streaming (``chat.startStream`` / ``appendStream`` / ``stopStream``) exists only with ``streaming=True``;
  otherwise the methods answer ``unknown_method``, as in a workspace without the feature, so a bot's fallback can
  be tested. Each call's ``markdown_text`` (and each ``markdown_text`` chunk) is limited to 12,000 characters
  (``msg_too_long``); ``chat.startStream`` needs ``thread_ts`` and both ``recipient_team_id`` and
  ``recipient_user_id`` (``missing_recipient_team_id`` / ``missing_recipient_user_id``, as Slack answers bot
  tokens even in DMs); a stopped stream answers ``message_not_in_streaming_state``, an unknown ts
  ``message_not_found``. The 5-minute stream lifetime is not emulated.
- ``conversations.replies`` answers a thread from what the fake has seen (the bot's posts and the user messages
  it delivered), parent first, as bolt's assistant thread-context store reads it.
- ``reactions.add`` is recorded in ``reactions`` (``already_reacted`` the second time, as Slack answers).
- Rate-limit tiers, per method and workspace, on the fake's clock: ``chat.update`` is Tier 3 (50 a minute) and
  ``chat.stopStream`` Tier 2 (20 a minute); the call over the budget answers 429 ``ratelimited`` with the
  Retry-After until the oldest call leaves the minute (``tiers`` holds the budgets; tests may change them).
- ``rate_limit(method, retry_after)`` makes the next call of a method answer 429 ``ratelimited`` with Retry-After;
  ``refuse(method, error)`` makes it answer that error.
- ``notifications`` records every mention or broadcast the bot's messages would trigger: ``<!channel>``,
  ``<!here>``, ``<!everyone>``, ``<!subteam^…>`` and ``<@U…>``, in text and in blocks, of posts, edits, ephemeral
  messages, response_url messages and streamed text (also when a sequence is split across appends).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

TEXT_LIMIT, MAX_BLOCKS, SECTION_LIMIT = 40_000, 50, 3000
STREAM_TEXT_LIMIT, RESPONSE_URL_USES, MAX_PROMPTS = 12_000, 5, 4
RESPONSE_URL_LIFETIME, TRIGGER_LIFETIME = 30 * 60, 3.0  # seconds, as Slack documents them
_NOTIFY = re.compile(r"<(!channel|!here|!everyone|!subteam\^[^>|]+|@[UW][A-Z0-9]+)[^>]*>")
TIERS = {"chat.update": 50, "chat.stopStream": 20}  # Slack's Tier 3 and Tier 2, calls a minute per workspace
_STREAM_METHODS = {"chat.startStream", "chat.appendStream", "chat.stopStream"}
_JSON_ARGS = ("blocks", "attachments", "chunks", "prompts", "loading_messages", "metadata")


@dataclass
class Posted:
    """One message as the bot last left it; ``versions`` counts its writes (post, edits, stream appends)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    versions: int = 1
    streaming: bool = False


@dataclass
class Ephemeral:
    """One ``chat.postEphemeral`` message, visible only to ``user``."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict[str, Any]
    deliveries: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    response: dict[str, Any] | None = None


@dataclass
class _ResponseUrl:
    channel: str
    message_ts: str | None  # the clicked message, which replace_original / delete_original act on
    issued: float  # on the fake's clock
    uses: int = 0


@dataclass
class _Trigger:
    issued: float  # on the fake's clock
    used: bool = False


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
        echo_bot_messages: bool = False,
        streaming: bool = False,
    ) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id = team_id, bot_user_id
        self.ack_timeout, self.max_retries = ack_timeout, max_retries
        self.echo_bot_messages, self.streaming = echo_bot_messages, streaming
        self.joined: set[str] = {"C1"}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, Posted] = {}  # ts -> message
        self.ephemeral: list[Ephemeral] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}  # response_url -> what was posted to it
        self.statuses: list[dict[str, Any]] = []  # assistant.threads.setStatus arguments
        self.suggested: list[dict[str, Any]] = []  # assistant.threads.setSuggestedPrompts arguments
        self.titles: list[dict[str, Any]] = []  # assistant.threads.setTitle arguments
        self.views: list[dict[str, Any]] = []  # modals opened by views.open
        self.reactions: list[tuple[str, str, str]] = []  # (channel, message ts, emoji name) the bot added
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.notifications: list[tuple[str, str]] = []  # (ts, the control sequence)
        self.envelopes: dict[str, Envelope] = {}
        self.echoes: list[Envelope] = []  # the message events echoing the bot's own posts
        self._said: dict[str, dict[str, Any]] = {}  # ts -> user message event the fake delivered
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._skew = 0.0  # what advance() added to the real clock
        self.latency: dict[str, float] = {}  # method -> seconds each call takes, on the fake's clock
        self._limits: dict[str, float] = {}
        self._refusals: dict[str, str] = {}
        self.tiers: dict[str, int] = dict(TIERS)  # method -> calls a minute
        self.throttled: list[str] = []  # methods whose call went over their tier
        self._recent: dict[str, collections.deque[float]] = {}  # method -> when its calls of the last minute came
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self.connections = 0  # sockets the app has opened, reconnections included
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads some methods (conversations.replies) by GET
        app.router.add_post("/response/{n}", self._response)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def bot_id(self) -> str:
        """The bot's ``bot_id``, as ``auth.test`` answers it and as the bot's own message events carry it."""
        return "B" + self.bot_user_id

    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False) -> None:
        self.users[user_id] = {"id": user_id, "name": name, "is_admin": admin, "is_owner": owner}

    def rate_limit(self, method: str, retry_after: float = 1) -> None:
        self._limits[method] = retry_after

    def _over_tier(self, method: str) -> float | None:
        """Seconds until ``method`` may be called again, if this call is over its tier's budget; else None (and
        the call is counted)."""
        budget = self.tiers.get(method)
        if budget is None:
            return None
        now = self.now()
        recent = self._recent.setdefault(method, collections.deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= budget:
            self.throttled.append(method)
            return 60 - (now - recent[0])
        recent.append(now)
        return None

    def refuse(self, method: str, error: str) -> None:
        """The next call of ``method`` answers ``{"ok": false, "error": error}`` (``not_in_channel``, …)."""
        self._refusals[method] = error

    def now(self) -> float:
        """The fake's clock, which expiries (trigger ids, response URLs) are measured on: real time plus
        ``advance``, so a test can let minutes pass without sleeping."""
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        self._skew += seconds

    def _trigger(self) -> str:
        """A fresh ``trigger_id``: it opens one modal, within 3 seconds."""
        trigger = f"{next(self._ids)}.{self.team_id}.fake"
        self._triggers[trigger] = _Trigger(self.now())
        return trigger

    def _ts(self, suffix: str = "000100") -> str:
        return f"{1700000000 + next(self._ids)}.{suffix}"

    def _is_joined(self, channel: str) -> bool:
        return channel in self.joined or channel.startswith("D")

    # -- Web API -----------------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)  # slack_sdk sends some methods' arguments in the query string
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(parse_qsl(await request.text()))
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        self.calls.append((method, args))
        self.advance(self.latency.get(method, 0.0))  # the call takes that long, as far as expiries go
        if method in self._limits:
            retry_after = self._limits.pop(method)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(int(retry_after))}
            )
        if method in self._refusals:
            return web.json_response({"ok": False, "error": self._refusals.pop(method)})
        wait = self._over_tier(method)
        if wait is not None:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(math.ceil(wait))}
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or args.get("token", "")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None or (method in _STREAM_METHODS and not self.streaming):
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(args)
        return web.json_response(result)

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": self.bot_user_id, "team_id": self.team_id, "bot_id": self.bot_id}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    @staticmethod
    def _check_content(text: str, blocks: list[dict[str, Any]]) -> str | None:
        if len(text) > TEXT_LIMIT:
            return "msg_too_long"
        if _bad_blocks(blocks):
            return "invalid_blocks"
        if not text and not blocks:
            return "no_text"
        return None

    def _check_message(self, args: dict[str, Any]) -> str | None:
        if not self._is_joined(str(args.get("channel"))):
            return "not_in_channel"
        return self._check_content(str(args.get("text") or ""), args.get("blocks") or [])

    async def changed(self) -> None:
        """Return once any message is posted or edited (posts, edits, ephemeral messages, responses, streams)."""
        await self._change.wait()

    def _wake(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def _written(self, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """A message was posted or edited: record what it would notify, and wake ``changed()`` waiters."""
        self._wake()
        for match in _NOTIFY.finditer(text + "\n" + json.dumps(blocks)):
            self.notifications.append((ts, match.group(0)))

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._check_message(args)
        if error:
            return {"ok": False, "error": error}
        ts = self._ts()
        message = Posted(
            str(args["channel"]), ts, str(args.get("text") or ""), args.get("blocks") or [], args.get("thread_ts")
        )
        self.messages[ts] = message
        self._written(ts, message.text, message.blocks)
        if self.echo_bot_messages:
            self._echo(message)
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

    @staticmethod
    def _view_arg(args: dict[str, Any]) -> dict[str, Any] | None:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if (
            not isinstance(view, dict)
            or view.get("type") != "modal"
            or not view.get("title")
            or _bad_blocks(view.get("blocks") or [])
        ):
            return None
        return view

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._triggers.get(str(args.get("trigger_id") or ""))
        if trigger is None:
            return {"ok": False, "error": "invalid_trigger_id"}
        if trigger.used:
            return {"ok": False, "error": "exchanged_trigger_id"}
        if self.now() - trigger.issued > TRIGGER_LIFETIME:
            return {"ok": False, "error": "expired_trigger_id"}
        view = self._view_arg(args)
        if view is None:
            return {"ok": False, "error": "invalid_arguments"}
        trigger.used = True
        opened = {**view, "id": f"V{next(self._ids)}"}
        self.views.append(opened)
        self._wake()
        return {"ok": True, "view": opened}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Replace an open modal (by ``view_id`` or ``external_id``); no trigger needed, so it has no 3 s limit."""
        index = next(
            (
                i
                for i, v in enumerate(self.views)
                if v["id"] == args.get("view_id")
                or (args.get("external_id") and v.get("external_id") == args.get("external_id"))
            ),
            None,
        )
        if index is None:
            return {"ok": False, "error": "not_found"}
        view = self._view_arg(args)
        if view is None:
            return {"ok": False, "error": "invalid_arguments"}
        updated = {**view, "id": self.views[index]["id"]}
        self.views[index] = updated
        self._wake()
        return {"ok": True, "view": updated}

    async def submit_view(self, view: dict[str, Any], values: dict[str, str], *, user: str) -> Envelope:
        """``user`` submits an opened modal; ``values`` maps each input block id to the text typed in it."""
        state: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") == "input" and block.get("block_id") in values:
                action_id = block["element"]["action_id"]
                state[block["block_id"]] = {
                    action_id: {"type": block["element"]["type"], "value": values[block["block_id"]]}
                }
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "fake"},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "AFAKE",
            "trigger_id": self._trigger(),
            "view": {**view, "state": {"values": state}, "team_id": self.team_id},
        }
        return await self.deliver("interactive", payload)

    async def click_in(self, response: dict[str, Any], action_id: str, *, user: str, channel: str = "C1") -> Envelope:
        """``user`` clicks a button in an ephemeral message the bot sent through a response URL."""
        found = _button(response.get("blocks") or [], action_id)
        assert found is not None, f"no button {action_id!r} in {response.get('blocks')}"
        block_id, button = found
        action = {"type": "button", "action_id": action_id, "block_id": block_id, "action_ts": self._ts("000300")}
        if "value" in button:
            action["value"] = button["value"]
        payload = {
            "type": "block_actions",
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "AFAKE",
            "container": {"type": "message", "channel_id": channel, "is_ephemeral": True},
            "trigger_id": self._trigger(),
            "team": {"id": self.team_id, "domain": "fake"},
            "channel": {"id": channel},
            "response_url": self._response_url(channel),
            "actions": [action],
        }
        return await self.deliver("interactive", payload)

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel") or ""), str(args.get("message_ts") or "")
        if not channel or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._check_message(args)
        if error:
            return {"ok": False, "error": error}
        ts = self._ts()
        message = Ephemeral(
            str(args["channel"]),
            str(args.get("user")),
            ts,
            str(args.get("text") or ""),
            args.get("blocks") or [],
            args.get("thread_ts"),
        )
        self.ephemeral.append(message)
        self._written(ts, message.text, message.blocks)
        return {"ok": True, "message_ts": ts}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, parent = str(args.get("channel")), str(args.get("ts"))
        seen = [event for event in self._said.values() if event["channel"] == channel]
        seen += [self._as_event(m) for m in self.messages.values() if m.channel == channel]
        thread = sorted(
            (e for e in seen if parent in (e["ts"], e.get("thread_ts"))), key=lambda e: (e["ts"] != parent, e["ts"])
        )
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        oldest = float(args.get("oldest") or 0)
        thread = [e for e in thread if float(e["ts"]) >= oldest][: int(args.get("limit") or 1000)]
        return {"ok": True, "messages": thread, "has_more": False}

    # -- Assistant (Agents & AI apps) --------------------------------------------------------------------------

    @staticmethod
    def _thread_args(args: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in args.items() if key != "token"}

    def _assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel_id") or not args.get("thread_ts") or "status" not in args:
            return {"ok": False, "error": "invalid_arguments"}
        self.statuses.append(self._thread_args(args))
        return {"ok": True}

    def _assistant_threads_setSuggestedPrompts(self, args: dict[str, Any]) -> dict[str, Any]:
        prompts = args.get("prompts")
        if (
            not args.get("channel_id")
            or not args.get("thread_ts")
            or not isinstance(prompts, list)
            or not 0 < len(prompts) <= MAX_PROMPTS
            or not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)
        ):
            return {"ok": False, "error": "invalid_arguments"}
        self.suggested.append(self._thread_args(args))
        return {"ok": True}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts, name = str(args.get("channel")), str(args.get("timestamp")), str(args.get("name") or "")
        if not self._is_joined(channel):
            return {"ok": False, "error": "not_in_channel"}
        if not name or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        if (channel, ts, name) in self.reactions:
            return {"ok": False, "error": "already_reacted"}
        self.reactions.append((channel, ts, name))
        self._wake()
        return {"ok": True}

    def _assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel_id") or not args.get("thread_ts") or not args.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        self.titles.append(self._thread_args(args))
        return {"ok": True}

    # -- Chat streaming ----------------------------------------------------------------------------------------

    def appended(self, ts: str | None = None) -> list[str]:
        """The text of each ``chat.appendStream`` call (of the stream ``ts``, if given), in order."""
        return [
            self._stream_text(args)[0]
            for method, args in self.calls
            if method == "chat.appendStream" and (ts is None or args.get("ts") == ts)
        ]

    @staticmethod
    def _stream_text(args: dict[str, Any]) -> tuple[str, str | None]:
        """The markdown a stream call appends (``markdown_text`` and ``markdown_text`` chunks), or an error."""
        parts = [str(args["markdown_text"])] if args.get("markdown_text") else []
        chunks = args.get("chunks") or []
        if not isinstance(chunks, list) or not all(isinstance(c, dict) and c.get("type") for c in chunks):
            return "", "invalid_chunks"
        parts += [str(c.get("text") or "") for c in chunks if c["type"] == "markdown_text"]
        if any(len(part) > STREAM_TEXT_LIMIT for part in parts):
            return "", "msg_too_long"
        return "".join(parts), None

    def _streamed(self, message: Posted) -> None:
        """Record the notifications a stream write adds (a sequence may be split across appends)."""
        self._wake()
        known = sum(1 for ts, _ in self.notifications if ts == message.ts)
        matches = [m.group(0) for m in _NOTIFY.finditer(message.text + "\n" + json.dumps(message.blocks))]
        self.notifications += [(message.ts, match) for match in matches[known:]]

    def _chat_startStream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        if not self._is_joined(channel):
            return {"ok": False, "error": "not_in_channel"}
        if not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        for recipient in ("recipient_team_id", "recipient_user_id"):
            if not args.get(recipient):
                return {"ok": False, "error": "missing_" + recipient}
        text, error = self._stream_text(args)
        if error:
            return {"ok": False, "error": error}
        ts = self._ts()
        message = Posted(channel, ts, text, [], str(args["thread_ts"]), streaming=True)
        self.messages[ts] = message
        self._streamed(message)
        return {"ok": True, "channel": channel, "ts": ts}

    def _stream_message(self, args: dict[str, Any]) -> tuple[Posted | None, str | None]:
        message = self.messages.get(str(args.get("ts")))
        if message is None or message.channel != args.get("channel"):
            return None, "message_not_found"
        if not message.streaming:
            return None, "message_not_in_streaming_state"
        return message, None

    def _chat_appendStream(self, args: dict[str, Any]) -> dict[str, Any]:
        message, error = self._stream_message(args)
        if message is None:
            return {"ok": False, "error": error}
        text, error = self._stream_text(args)
        if error:
            return {"ok": False, "error": error}
        message.text += text
        message.versions += 1
        self._streamed(message)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_stopStream(self, args: dict[str, Any]) -> dict[str, Any]:
        message, error = self._stream_message(args)
        if message is None:
            return {"ok": False, "error": error}
        text, error = self._stream_text(args)
        blocks = args.get("blocks") or []
        if error or _bad_blocks(blocks):
            return {"ok": False, "error": error or "invalid_blocks"}
        message.text += text
        message.blocks = blocks or message.blocks
        message.streaming = False
        message.versions += 1
        self._streamed(message)
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": self._as_event(message)}

    # -- response_url ------------------------------------------------------------------------------------------

    def _response_url(self, channel: str, message_ts: str | None = None) -> str:
        url = f"http://127.0.0.1:{self.port}/response/{next(self._ids)}"
        self._response_urls[url] = _ResponseUrl(channel, message_ts, self.now())
        return url

    async def _response(self, request: web.Request) -> web.Response:
        url = f"http://127.0.0.1:{self.port}/response/{request.match_info['n']}"
        target = self._response_urls.get(url)
        if target is None:
            return web.json_response({"ok": False, "error": "no_service"}, status=404)
        target.uses += 1
        if self.now() - target.issued > RESPONSE_URL_LIFETIME:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if target.uses > RESPONSE_URL_USES:
            return web.json_response({"ok": False, "error": "used_too_many_times"}, status=404)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        blocks = json.loads(body["blocks"]) if isinstance(body.get("blocks"), str) else body.get("blocks") or []
        record = {
            **body,
            "text": str(body.get("text") or ""),
            "blocks": blocks,
            "response_type": body.get("response_type") or "ephemeral",
            "replace_original": bool(body.get("replace_original")),
            "delete_original": bool(body.get("delete_original")),
        }
        original = self.messages.get(target.message_ts or "")
        if record["delete_original"]:
            if original is not None:
                del self.messages[original.ts]
            record["ts"] = target.message_ts
            self._wake()
        else:
            error = self._check_content(record["text"], blocks)
            if error:
                return web.json_response({"ok": False, "error": error}, status=400)
            if record["replace_original"] and original is not None:
                original.text, original.blocks = record["text"], blocks
                original.versions += 1
                record["ts"] = original.ts
            else:
                record["ts"] = self._ts()
            self._written(record["ts"], record["text"], blocks)
        self.responses.setdefault(url, []).append(record)
        return web.json_response({"ok": True})

    def responses_to(self, envelope: Envelope) -> list[dict[str, Any]]:
        """What the app posted to the ``response_url`` of a slash command or click, oldest first."""
        return self.responses.get(str(envelope.payload.get("response_url")), [])

    # -- Socket Mode -------------------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections += 1
        await ws.send_json({"type": "hello", "num_connections": len(self._sockets), "connection_info": {}})
        self._connected.set()
        self._wake()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                ack = json.loads(message.data)
                envelope = self.envelopes.get(str(ack.get("envelope_id")))
                if envelope is not None and not envelope.acked.is_set():
                    envelope.response = ack.get("payload")
                    envelope.acked.set()
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._connected.clear()
        return ws

    async def wait_connected(self, timeout: float = 10, *, connections: int = 1) -> None:
        """Return once the app is connected, and has opened at least ``connections`` sockets in all."""

        async def connected() -> None:
            while not (self._sockets and self.connections >= connections):
                await self.changed()

        await asyncio.wait_for(connected(), timeout)

    async def disconnect(self, reason: str = "refresh_requested", *, grace: float = 10) -> None:
        """Slack's ``disconnect`` message on every open socket (it refreshes connections every few hours): the app
        is to open a new connection; the old sockets are closed once it has, or after ``grace`` seconds."""
        old = list(self._sockets)
        opened = self.connections
        for ws in old:
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})

        async def close_old() -> None:
            with contextlib.suppress(TimeoutError):
                await self.wait_connected(grace, connections=opened + 1)
            for ws in old:
                await ws.close()

        task = asyncio.create_task(close_old())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def drop(self) -> None:
        """Every socket is cut as a network failure cuts it: no close frame, the TCP connection just ends."""
        for ws in list(self._sockets):
            transport = ws._req.transport if ws._req is not None else None  # aiohttp keeps the request
            if transport is not None:
                transport.abort()

    async def deliver(self, kind: str, payload: dict[str, Any]) -> Envelope:
        """Send an envelope over the live socket; redeliver it until acknowledged (as Slack retries)."""
        await self.wait_connected()
        return self._enqueue(kind, payload)

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> Envelope:
        """Deliver an envelope once the app is connected (Slack keeps events for an app that is not)."""
        envelope = Envelope(f"env-{next(self._ids)}", kind, payload)
        self.envelopes[envelope.envelope_id] = envelope
        task = asyncio.create_task(self._send_until_acked(envelope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return envelope

    async def _send_until_acked(self, envelope: Envelope) -> None:
        await self._connected.wait()
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
            if self._sockets:  # one connection gets it: the newest (none while the app is away: a failed attempt)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._sockets[-1].send_json(body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(envelope.acked.wait(), self.ack_timeout)
                return

    async def wait_acked(self, envelope: Envelope, timeout: float = 10) -> None:
        await asyncio.wait_for(envelope.acked.wait(), timeout)

    # -- what users do -----------------------------------------------------------------------------------------

    def _event_callback(self, event: dict[str, Any]) -> dict[str, Any]:
        """Every event has its own ``event_id`` (a retry keeps it; an edit's re-delivery gets a new one)."""
        event_id = f"Ev{next(self._ids):08d}"
        return {"type": "event_callback", "team_id": self.team_id, "event": event, "event_id": event_id}

    @staticmethod
    def _channel_type(channel: str) -> str:
        return {"D": "im", "G": "group"}.get(channel[:1], "channel")

    def _mentions_bot(self, text: str) -> bool:
        return f"<@{self.bot_user_id}" in text

    async def mention(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None, paired: bool = True
    ) -> Envelope:
        """``user`` posts ``text`` mentioning the bot in a channel: an ``app_mention`` event (returned), and — as
        Slack sends both to an app subscribed to the channel's messages — the same message as a ``message``
        event with its own ``event_id`` (``paired=False`` leaves it out)."""
        ts = self._ts("000200")
        event = {"type": "app_mention", "user": user, "text": text, "channel": channel, "ts": ts, "team": self.team_id}
        event["event_ts"] = ts
        if thread_ts:
            event["thread_ts"] = thread_ts
        message = {**event, "type": "message", "channel_type": self._channel_type(channel)}
        self._said[ts] = message
        envelope = await self.deliver("events_api", self._event_callback(event))
        if paired and self._channel_type(channel) != "im":  # Slack sends no app_mention in a DM
            await self.deliver("events_api", self._event_callback(dict(message)))
        return envelope

    async def message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        channel_type: str = "channel",
        bot_id: str | None = None,
        subtype: str | None = None,
    ) -> Envelope:
        """A ``message`` event, as Slack sends it to apps with channels:history (``channel_type`` "channel") or
        im:history ("im"); ``envelope.payload["event"]["ts"]`` is the message's ts. ``subtype`` "file_share" is a
        message with a file attached, "thread_broadcast" a thread reply also sent to the channel."""
        ts = self._ts("000200")
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "team": self.team_id,
            "channel_type": channel_type,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if bot_id:
            event["bot_id"] = bot_id
        if subtype == "file_share":
            name = f"F{next(self._ids):08d}"
            event.update(subtype=subtype, upload=False, display_as_bot=False)
            event["files"] = [{"id": name, "name": "screenshot.png", "mimetype": "image/png", "user": user}]
        elif subtype == "thread_broadcast":
            assert thread_ts, "a thread_broadcast is a reply in a thread"
            root = self._said.get(thread_ts) or {"ts": thread_ts}
            event.update(subtype=subtype, root={k: v for k, v in root.items() if k != "channel_type"})
        elif subtype is not None:
            event["subtype"] = subtype
        self._said[ts] = event
        return await self.deliver("events_api", self._event_callback(event))

    async def edit(self, channel: str, ts: str, text: str) -> list[Envelope]:
        """The author edits their message ``ts`` to ``text``: a ``message_changed`` event, and when the new text
        mentions the bot, ``app_mention`` again for the same message (same ``ts``, an ``edited`` field, a new
        ``event_id``), as Slack sends it. Returns the envelopes, ``app_mention`` first."""
        said = self._said.get(ts)
        assert said is not None and said["channel"] == channel, f"no member message {ts} in {channel}"
        edited_at = self._ts("000600")
        edited = {"user": said["user"], "ts": edited_at}
        previous = dict(said)
        said.update(text=text, edited=edited)
        envelopes = []
        if self._mentions_bot(text) and self._channel_type(channel) != "im":
            mention = {
                "type": "app_mention",
                "user": said["user"],
                "text": text,
                "channel": channel,
                "ts": ts,
                "team": self.team_id,
                "edited": edited,
                "event_ts": edited_at,
            }
            if said.get("thread_ts"):
                mention["thread_ts"] = said["thread_ts"]
            envelopes.append(await self.deliver("events_api", self._event_callback(mention)))
        strip = ("channel", "channel_type", "event_ts")
        changed = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "ts": edited_at,
            "event_ts": edited_at,
            "message": {k: v for k, v in said.items() if k not in strip},
            "previous_message": {k: v for k, v in previous.items() if k not in strip},
        }
        envelopes.append(await self.deliver("events_api", self._event_callback(changed)))
        return envelopes

    def _as_event(self, message: Posted) -> dict[str, Any]:
        """The bot's message as Slack shows it in events, payloads and history."""
        event: dict[str, Any] = {
            "type": "message",
            "channel": message.channel,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": message.text,
            "blocks": message.blocks,
            "ts": message.ts,
            "team": self.team_id,
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
        return event

    def _echo(self, message: Posted) -> None:
        event = {
            **self._as_event(message),
            "event_ts": message.ts,
            "channel_type": "im" if message.channel.startswith("D") else "channel",
        }
        self.echoes.append(self._enqueue("events_api", self._event_callback(event)))

    async def slash(self, command: str, text: str, *, user: str, channel: str = "C1") -> Envelope:
        payload = {
            "command": command,
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": self.team_id,
            "response_url": self._response_url(channel),
            "trigger_id": self._trigger(),
        }
        return await self.deliver("slash_commands", payload)

    async def click(self, message_ts: str, action_id: str, *, user: str, value: str | None = None) -> Envelope:
        """``user`` clicks the button ``action_id`` of the bot's message ``message_ts``: a ``block_actions``
        payload as Slack sends it, with a fresh ``response_url``. ``value`` defaults to the button's own."""
        message = self.messages.get(message_ts)
        assert message is not None, f"no message {message_ts} to click in (the bot posted {list(self.messages)})"
        found = _button(message.blocks, action_id)
        assert found is not None, f"message {message_ts} has no button {action_id!r}: {message.blocks}"
        block_id, button = found
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "text": button.get("text", {}),
            "action_ts": self._ts("000300"),
        }
        if value is not None or "value" in button:
            action["value"] = value if value is not None else button["value"]
        name = str(self.users.get(user, {}).get("name") or user.lower())
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": "AFAKE",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger(),
            "team": {"id": self.team_id, "domain": "fake"},
            "channel": {"id": message.channel, "name": message.channel.lower()},
            "message": self._as_event(message),
            "state": {"values": {}},
            "response_url": self._response_url(message.channel, message.ts),
            "actions": [action],
        }
        return await self.deliver("interactive", payload)

    async def shortcut(self, callback_id: str, message_ts: str, *, user: str) -> Envelope:
        """``user`` runs a message shortcut (the message's ⋯ menu) on a message a member wrote."""
        said = self._said.get(message_ts)
        assert said is not None, f"no member message {message_ts}"
        name = str(self.users.get(user, {}).get("name") or user.lower())
        payload = {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
            "action_ts": self._ts("000500"),
            "team": {"id": self.team_id, "domain": "fake"},
            "user": {"id": user, "name": name, "team_id": self.team_id},
            "channel": {"id": said["channel"], "name": str(said["channel"]).lower()},
            "message": {k: v for k, v in said.items() if k in ("type", "user", "text", "ts", "thread_ts")},
            "response_url": self._response_url(str(said["channel"])),
        }
        return await self.deliver("interactive", payload)

    async def react(self, channel: str, ts: str, name: str, *, user: str) -> Envelope:
        """``user`` adds the reaction ``name`` to a message: a ``reaction_added`` event (needs reactions:read)."""
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": name,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": self._ts("000400"),
        }
        return await self.deliver("events_api", self._event_callback(event))

    async def assistant_thread_started(self, user: str, *, channel: str = "D1") -> Envelope:
        """``user`` opens a new thread with the app in the assistant container (Agents & AI apps)."""
        thread_ts, event_ts = self._ts("000200"), self._ts("000300")
        event = {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": user, "context": {}, "channel_id": channel, "thread_ts": thread_ts},
            "event_ts": event_ts,
        }
        # Slack roots the thread in a message of its own, which history shows and bolt's context store skips
        root = {"type": "message", "subtype": "assistant_app_thread", "channel": channel, "user": user, "text": ""}
        self._said[thread_ts] = {**root, "ts": thread_ts}
        return await self.deliver("events_api", self._event_callback(event))


def _bad_blocks(blocks: list[dict[str, Any]]) -> bool:
    return len(blocks) > MAX_BLOCKS or any(
        b.get("type") == "section" and len(b.get("text", {}).get("text", "")) > SECTION_LIMIT for b in blocks
    )


def _button(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]] | None:
    """The (block_id, element) of the button ``action_id`` in an actions block or a section accessory."""
    for index, block in enumerate(blocks):
        elements = [*block.get("elements", []), block["accessory"]] if "accessory" in block else block.get("elements")
        for element in elements or []:
            if isinstance(element, dict) and element.get("type") == "button" and element.get("action_id") == action_id:
                return str(block.get("block_id") or f"b{index}"), element
    return None
