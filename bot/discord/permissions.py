"""Who may do what: members judged by their permissions where they act, and what Docent itself may do.

A member's permissions come from the interaction (``Interaction.permissions``: Discord's own computation for that
channel, overwrites included, as ``app_commands.checks.has_permissions`` reads them), never from the server-wide
``Member.guild_permissions``, which ignores channel overwrites: a helper given Manage Threads only in the help
forum is a moderator there, and a moderator denied it there is not.
"""

from __future__ import annotations

import logging

import discord

from bot.discord.replies import NO_PINGS

logger = logging.getLogger(__name__)


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
