"""A loopback Discord: its gateway and REST API, for the real discord.py client (see ``server``)."""

from loopback.discord.server import (
    DEFAULT_BOT_PERMISSIONS,
    GUILDS,
    MANAGE_THREADS,
    README,
    CallbackRecord,
    ChannelEdit,
    DiscordError,
    FakeDiscord,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    Pings,
    Recorded,
    invite_permissions,
    pending_discordpy_tasks,
)

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "GUILDS",
    "MANAGE_THREADS",
    "README",
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
