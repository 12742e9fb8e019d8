"""Setting up the guild: roles, members, text channels, categories and forums (a connected bot is told as Discord
tells it), and the bot joining another server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loopback.discord.gateway import Gateway
from loopback.discord.permissions import DEFAULT_EVERYONE_PERMISSIONS
from loopback.discord.state import (
    GUILD_CATEGORY,
    GUILD_FORUM,
    GUILD_MEMBERS,
    GUILDS,
    MAX_FORUM_TAGS,
    REQUIRE_TAG,
    _now_iso,
)


class GuildSetup(Gateway):
    """Adding roles, members and channels, before or while the bot is connected."""

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

    def _put_channel(self, channel: dict[str, Any]) -> dict[str, Any]:
        """Store a new guild channel and tell a connected bot (CHANNEL_CREATE); before connecting, GUILD_CREATE does."""
        parent_id = channel.get("parent_id")
        if parent_id is not None and self.channels.get(int(parent_id), {}).get("type") != GUILD_CATEGORY:
            raise ValueError(f"{parent_id} is not a category: create it with add_category")
        self.channels[int(channel["id"])] = channel
        self._spawn_dispatch("CHANNEL_CREATE", channel, GUILDS)
        return channel

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
