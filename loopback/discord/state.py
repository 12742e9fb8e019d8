"""What the fake keeps and tests assert on: the records of REST calls, messages (every version), interactions (and
everything the bot did with their tokens), channel edits and gateway frames; and Discord's constants the fake uses
(message flags, gateway intents, channel types and limits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopback.discord.core import Core

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096

# Gateway intents the fake honours (the subset a docs bot can observe).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15

_THREAD_TYPES = (10, 11, 12)
GUILD_TEXT, GUILD_CATEGORY, GUILD_FORUM = 0, 4, 15
REQUIRE_TAG = 1 << 4  # channel flag: a forum's posts need at least one tag
MAX_APPLIED_TAGS = 5
MAX_FORUM_TAGS = 20
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


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
    _fake: Core | None = field(default=None, repr=False)  # the fake, for its messages

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


# --------------------------------------------------------------------------------------------------------------------
# What a route gets: the call, its path parameters and its body.


@dataclass
class _Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: tuple[str, ...]


Handler = Callable[[_Request], Any]
