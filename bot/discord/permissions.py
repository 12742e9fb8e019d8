"""Who may do what: members judged by their permissions where they act, and what Docent itself may do.

Docent is invited with the README's short list of permissions; features that need more (Manage Threads to tag a
member's forum post solved, a mentionable role or Mention Everyone for a hand-off's role ping) are checked when a
server becomes available, and each gap is logged once.

A member's permissions come from the interaction (``Interaction.permissions``: Discord's own computation for that
channel, overwrites included, as ``app_commands.checks.has_permissions`` reads them), never from the server-wide
``Member.guild_permissions``, which ignores channel overwrites: a helper given Manage Threads only in the help
forum is a moderator there, and a moderator denied it there is not.
"""

from __future__ import annotations

import logging

import discord

from bot.discord.replies import NO_PINGS
from bot.discord.state import DiscordState

logger = logging.getLogger(__name__)
UNASKED = ("auto", "always")  # modes whose answers carry "This solved it"


def is_admin(who: discord.Interaction | discord.abc.User, admin_role_ids: list[int]) -> bool:
    """Manage Server or Administrator, or one of ``discord.admin_role_ids``. Checked in the handlers too: server
    admins can override a command's default permissions. An interaction is judged by its channel's permissions;
    a bare member (a reaction) by the server's."""
    user = who.user if isinstance(who, discord.Interaction) else who
    if not isinstance(user, discord.Member):
        return False
    permissions = who.permissions if isinstance(who, discord.Interaction) else user.guild_permissions
    if permissions.manage_guild or permissions.administrator:
        return True
    return any(role.id in admin_role_ids for role in user.roles)


def is_moderator(interaction: discord.Interaction, admin_role_ids: list[int], **permission: bool) -> bool:
    """An admin, or a member with ``permission`` (e.g. ``manage_threads=True``) in the interaction's channel."""
    if is_admin(interaction, admin_role_ids):
        return True
    if not isinstance(interaction.user, discord.Member):
        return False
    return interaction.permissions >= discord.Permissions(**permission)


async def refused_unless_admin(interaction: discord.Interaction, admin_role_ids: list[int], action: str) -> bool:
    """Tell a non-admin, privately, that ``action`` is for admins; True if they were refused."""
    if is_admin(interaction, admin_role_ids):
        return False
    await interaction.response.send_message(
        f"Only members with Manage Server (or a Docent admin role) can {action}.",
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )
    return True


def is_private(channel: object) -> bool:
    """Whether ``channel`` is hidden from the server's @everyone (a staff-only channel, a private thread, or a
    thread of such a channel): answers learned there stay in this server whatever ``learned.shared_spaces`` says.
    A channel whose visibility cannot be told (not cached, a DM) counts as private."""
    if isinstance(channel, discord.Thread):
        if channel.type == discord.ChannelType.private_thread:
            return True
        channel = channel.parent
    if not isinstance(channel, discord.abc.GuildChannel):
        return True
    return not channel.permissions_for(channel.guild.default_role).view_channel


def solved_tag(forum: discord.ForumChannel, name: str) -> discord.ForumTag | None:
    """The forum's tag called ``name`` (any case), which "This solved it" applies."""
    return next((t for t in forum.available_tags if t.name.lower() == name.lower()), None)


class PermissionCheck:
    """What Docent needs beyond the README's invite, per server, when it becomes available (at start, on joining);
    each gap is logged once per process, however often Discord says the server is available again."""

    def __init__(self, bot: DiscordState) -> None:
        self.bot = bot
        self._warned: set[tuple[str, int]] = set()

    async def check(self, guild: discord.Guild) -> None:
        me = guild.me
        if me is None:
            return
        tag_name = self.bot.settings.discord.solved_tag
        for forum in guild.forums:
            policy = await self.bot.services.channels.policy("discord", forum.id, forum.category_id)
            if policy.mode not in UNASKED or solved_tag(forum, tag_name) is None:
                continue
            if not forum.permissions_for(me).manage_threads:
                self._warn(
                    ("solved-tag", forum.id),
                    "Docent can't tag posts %r in forum #%s (%d) of %r: it needs Manage Threads there (give it to "
                    "Docent's role in the forum's permissions); 'This solved it' records posts as solved untagged",
                    tag_name,
                    forum.name,
                    forum.id,
                    guild.name,
                )
        for key, policy in self.bot.settings.channels.items():
            if key.isdigit() and policy.handoff == "message" and policy.helper_role.isdigit():
                self._check_helper_role(guild, me, int(key), int(policy.helper_role))
        logger.debug("checked Docent's permissions in %r (%d)", guild.name, guild.id)

    def _check_helper_role(self, guild: discord.Guild, me: discord.Member, channel_id: int, role_id: int) -> None:
        """A hand-off line's role ping notifies the role only if it is mentionable or Docent has Mention Everyone
        where it posts; otherwise the line is posted and nobody hears of it."""
        channel = guild.get_channel(channel_id)
        if channel is None:
            return  # configured for another server
        role = guild.get_role(role_id)
        if role is None:
            self._warn(
                ("helper-role", channel_id),
                "the hand-off in #%s (%d) pings role %d, which %r doesn't have: nobody is notified",
                channel.name,
                channel_id,
                role_id,
                guild.name,
            )
        elif not role.mentionable and not channel.permissions_for(me).mention_everyone:
            self._warn(
                ("helper-role", channel_id),
                "the hand-off in #%s (%d) pings @%s, which notifies nobody: the role isn't mentionable and Docent "
                "lacks Mention Everyone there (allow anyone to @mention the role, or give Docent's role Mention "
                "Everyone in that channel's permissions)",
                channel.name,
                channel_id,
                role.name,
            )

    def _warn(self, key: tuple[str, int], message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)
