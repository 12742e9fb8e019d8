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
- Message content over 2000 characters, an embed description over 4096 and empty messages are rejected with
  Discord's 400 errors.
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

Layout: ``server`` has ``FakeDiscord``, composed of the other modules' parts (see there); ``state`` the records
tests assert on.
"""

from loopback.discord.errors import DiscordError
from loopback.discord.permissions import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MANAGE_THREADS,
    README,
    invite_permissions,
)
from loopback.discord.server import FakeDiscord, pending_discordpy_tasks
from loopback.discord.state import (
    DIRECT_MESSAGE_REACTIONS,
    DIRECT_MESSAGES,
    GUILD_MEMBERS,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    CallbackRecord,
    ChannelEdit,
    GatewayFrame,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    Pings,
    Recorded,
)

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DIRECT_MESSAGES",
    "DIRECT_MESSAGE_REACTIONS",
    "GUILDS",
    "GUILD_MEMBERS",
    "GUILD_MESSAGES",
    "GUILD_MESSAGE_REACTIONS",
    "MANAGE_THREADS",
    "MESSAGE_CONTENT",
    "README",
    "CallbackRecord",
    "ChannelEdit",
    "DiscordError",
    "FakeDiscord",
    "GatewayFrame",
    "InteractionRecord",
    "MessageRecord",
    "MessageVersion",
    "Pings",
    "Recorded",
    "invite_permissions",
    "pending_discordpy_tasks",
]
