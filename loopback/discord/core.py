"""The base of every part of the fake: the state they share (``FakeDiscord.__init__`` sets it), the fake's clock,
snowflakes, and the guild's objects (roles, members, channels, threads, the guild itself) as Discord sends them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loopback.discord.errors import _form_error, _unknown
from loopback.discord.state import (
    _THREAD_TYPES,
    ARCHIVE_DURATIONS,
    DISCORD_EPOCH_MS,
    GUILD_FORUM,
    GUILD_MEMBERS,
    GUILD_TEXT,
    InteractionRecord,
    MessageRecord,
    _now_iso,
)


class Core:
    """The state every part reads and writes (a part declares what only it uses); ``FakeDiscord.__init__`` sets it."""

    guild_id: int
    channel_id: int
    bot_user_id: int
    application_id: int
    owner_id: int
    guild_name: str
    bot_role_id: int
    message_content_enabled: bool
    port: int
    messages: dict[int, MessageRecord]
    user_messages: dict[int, MessageRecord]
    _messages: dict[int, MessageRecord]
    interactions: dict[str, InteractionRecord]
    identify: dict[str, Any] | None
    users: dict[int, dict[str, Any]]
    members: dict[int, dict[str, Any]]
    roles: dict[int, dict[str, Any]]
    channels: dict[int, dict[str, Any]]
    other_guilds: dict[int, dict[str, Any]]
    left_guilds: list[int]
    _last_id: int
    _skew: float
    _changed: asyncio.Event

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

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

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------------------------------------ ids and data

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
