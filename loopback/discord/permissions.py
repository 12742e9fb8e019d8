"""Permissions as Discord computes them: the bits the fake checks, guild-level permissions from roles, a channel's
overwrites (a thread has its parent's), and the README's invite list, which is what the fake's bot has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord

from loopback.discord.errors import DiscordError, _missing_permissions
from loopback.discord.gateway import Gateway
from loopback.discord.state import _THREAD_TYPES, GUILD_CATEGORY, GUILD_FORUM, GUILDS

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

MANAGE_THREADS = P(manage_threads=True).value
VIEW_CHANNEL = P(view_channel=True).value
SEND_MESSAGES = P(send_messages=True).value
MENTION_EVERYONE = P(mention_everyone=True).value
NEEDS_SEND = P(mention_everyone=True, send_tts_messages=True, attach_files=True, embed_links=True).value


class Permissions(Gateway):
    """What a member and the bot may do, in the guild and in a channel; changing roles and overwrites."""

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
