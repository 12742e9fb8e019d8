"""The fake Discord must be real enough for the real discord.py: these tests drive a real ``discord.Client`` through it.

If one of these breaks after a discord.py upgrade, the e2e tests built on the fake can no longer be trusted.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands

from loopback.discord import (
    DEFAULT_BOT_PERMISSIONS,
    MANAGE_THREADS,
    README,
    DiscordError,
    FakeDiscord,
    invite_permissions,
    pending_discordpy_tasks,
)

ALICE = 600000000000000001
NO_PINGS = discord.AllowedMentions.none()


class Panel(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Confirm", custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Panel]) -> None:
        await interaction.response.edit_message(content=f"confirmed by {interaction.user.mention}", view=None)
        self.stop()  # also cancels the view's timeout task, so nothing is left pending


class EchoTree(app_commands.CommandTree[discord.Client]):
    def __init__(self, client: discord.Client, errors: list[BaseException]) -> None:
        super().__init__(client)
        self.errors = errors

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        self.errors.append(error)


class EchoBot(discord.Client):
    """A minimal bot shaped like Docent: mention -> quiet reply; slash commands that defer, edit and follow up."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.seen: list[str] = []
        self.errors: list[BaseException] = []
        self.guild_events: list[tuple[str, int]] = []
        self.tree = EchoTree(self, self.errors)
        self.gate = asyncio.Event()  # /wait and /stall hold until a test opens it

        @self.tree.command(name="wait", description="Defer, wait for the gate, then edit.")
        async def wait(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await self.gate.wait()
            await interaction.edit_original_response(content="done waiting", allowed_mentions=NO_PINGS)

        @self.tree.command(name="stall", description="Wait for the gate, then respond.")
        async def stall(interaction: discord.Interaction) -> None:
            await self.gate.wait()
            await interaction.response.send_message("too late?", allowed_mentions=NO_PINGS)

        @self.tree.command(name="ping", description="Defer, then edit, then follow up.")
        async def ping(interaction: discord.Interaction, text: str) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content=f"pong: {text}", allowed_mentions=NO_PINGS)
            await interaction.followup.send("and a followup", allowed_mentions=NO_PINGS)

        @self.tree.command(name="quick", description="Defer, then only a followup.")
        async def quick(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True, ephemeral=True)
            await interaction.followup.send("done", ephemeral=True)

        @self.tree.command(name="perms", description="Say the member's and the app's permissions here.")
        async def perms(interaction: discord.Interaction) -> None:
            said = f"{interaction.permissions.value} {interaction.app_permissions.value}"
            await interaction.response.send_message(said, allowed_mentions=NO_PINGS)

        @self.tree.command(name="panel", description="A message with a button.")
        async def panel(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("Pick one", view=Panel())

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.guild_events.append(("join", guild.id))

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.guild_events.append(("remove", guild.id))

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.seen.append(message.content)
        assert self.user is not None
        if self.user not in message.mentions:
            return
        await message.add_reaction("👀")
        await message.channel.typing()
        question = re.sub(r"<@!?\d+>", "", message.content).strip()
        reply = await message.reply(f"you asked: {question}", allowed_mentions=NO_PINGS)
        if "thread" in question:
            thread = await reply.create_thread(name="Follow-up")
            await thread.send("more in here", allowed_mentions=NO_PINGS)


class ForumBot(discord.Client):
    """Reads forum posts (with the message-content intent): 👀 on each new post, and an answer in its thread."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.threads: list[discord.Thread] = []
        self.posts: list[discord.Message] = []
        self.errors: list[BaseException] = []

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            self.errors.append(error)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads.append(thread)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.posts.append(message)
        if isinstance(message.channel, discord.Thread) and message.id == message.channel.id:  # a post's opener
            await message.add_reaction("👀")
            await message.channel.send(f"answer to: {message.channel.name}", allowed_mentions=NO_PINGS)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bot_permissions=DEFAULT_BOT_PERMISSIONS | MANAGE_THREADS) as fake:  # the forum tests
        fake.add_member(ALICE, "alice")
        yield fake
    assert not fake.errors, fake.errors
    assert not fake.unhandled, fake.unhandled


async def test_the_bot_has_exactly_the_permissions_the_readme_invites_it_with(tmp_path) -> None:
    """Features that need more than the README asks for fail in the tests, as they would for its readers."""
    readme = (
        "...the scopes `bot` and the permissions View Channels, Send Messages (for `bot.x`), Read Message History\n"
    )
    (tmp_path / "README.md").write_text(readme + "and Add Reactions (for 👀 hand-offs, below). Nothing else; never.")
    listed = discord.Permissions(invite_permissions(tmp_path / "README.md"))
    wanted = discord.Permissions(view_channel=True, send_messages=True, read_message_history=True, add_reactions=True)
    assert listed == wanted
    (tmp_path / "README.md").write_text(readme.replace("Send Messages", "Send Messagez") + ". Nothing else.")
    with pytest.raises(ValueError, match="Send Messagez"):
        invite_permissions(tmp_path / "README.md")

    async with FakeDiscord() as fake:
        assert fake.bot_permissions == invite_permissions(README) == DEFAULT_BOT_PERMISSIONS
        assert fake.bot_permissions_in(fake.channel_id) == fake.bot_permissions
        assert not fake.bot_permissions & (MANAGE_THREADS | discord.Permissions(administrator=True).value)


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[EchoBot]:
    bot = EchoBot()
    real_api = discord.http.Route.BASE
    async with fake.run_bot(bot):
        assert fake.api_base == discord.http.Route.BASE
        yield bot
    assert bot.is_closed() and not bot.errors
    assert not pending_discordpy_tasks()
    assert real_api == discord.http.Route.BASE


async def test_bot_connects_and_sees_the_guild(fake: FakeDiscord, bot: EchoBot) -> None:
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.name == "Fake Guild"
    assert guild.get_channel(fake.channel_id) is not None
    assert guild.me.guild_permissions.send_messages
    assert fake.identify is not None and fake.identify["intents"] == bot.intents.value
    assert [r.path for r in fake.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]


async def test_mention_gets_a_quiet_reply(fake: FakeDiscord, bot: EchoBot) -> None:
    unseen = await fake.user_says(ALICE, "chatter the bot may not read")
    asked = await fake.user_says(ALICE, "how do I index?", mention_bot=True)

    reply = await fake.wait_for_message(lambda m: m.reply_to == asked)

    assert reply.content == "you asked: how do I index?"
    assert reply.allowed_mentions == {"parse": []}
    assert not reply.pings and not fake.any_pings()
    assert reply.payload["type"] == 19 and reply.payload["message_reference"]["message_id"] == str(asked)
    assert fake.user_messages[asked].reactions == [("👀", fake.bot_user_id)]
    assert fake.calls("POST", f"/channels/{fake.channel_id}/typing")
    # Without the message-content intent Discord blanks messages that do not mention the bot.
    assert bot.seen == ["", f"<@{fake.bot_user_id}> how do I index?"]
    assert not any(m.reply_to == unseen for m in fake.messages.values())


async def test_replies_to_the_bot_are_readable_only_when_they_ping_it(fake: FakeDiscord, bot: EchoBot) -> None:
    asked = await fake.user_says(ALICE, "first question", mention_bot=True)
    answer = await fake.wait_for_message(lambda m: m.reply_to == asked)

    await fake.user_says(ALICE, "quiet reply", reply_to=answer.id, ping_reply=False)
    loud = await fake.user_says(ALICE, "loud reply", reply_to=answer.id)
    await fake.wait_for_message(lambda m: m.reply_to == loud)

    # A reply that pings puts the bot in `mentions`, which is what exempts it from the missing content intent.
    assert bot.seen[1:] == ["", "loud reply"]


async def test_reply_can_start_a_thread(fake: FakeDiscord, bot: EchoBot) -> None:
    await fake.user_says(ALICE, "open a thread please", mention_bot=True)

    in_thread = await fake.wait_for_message(lambda m: m.content == "more in here")

    reply = fake.channel_messages()[0]
    assert reply.thread_id == in_thread.channel_id == reply.id  # Discord: a message's thread shares its id
    assert fake.channels[in_thread.channel_id]["type"] == 11
    await fake.wait_for(lambda: bot.get_channel(in_thread.channel_id) is not None)
    assert isinstance(bot.get_channel(in_thread.channel_id), discord.Thread)


async def test_slash_defers_then_edits_then_follows_up(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    ix = await fake.slash("ping", {"text": "hi"}, user_id=ALICE)

    await fake.wait_for(lambda: ix.followups)

    assert ix.payload["data"]["id"] == next(c["id"] for c in fake.synced_commands() if c["name"] == "ping")
    assert ix.callback is not None and ix.callback.type == 5 and ix.deferred
    assert ix.response_latency is not None and ix.response_latency < 3
    original = ix.original
    assert original is not None
    assert original.contents == ["", "pong: hi"] and ix.final_content == "pong: hi"
    assert not original.loading and not original.ephemeral
    assert [m.content for m in ix.followups] == ["and a followup"]
    assert ix.all_contents == ["pong: hi", "and a followup"]
    assert ix.deferred_at is not None and original.edited_at is not None
    assert ix.deferred_at <= original.edited_at <= ix.followups[0].created_at
    assert all(m.allowed_mentions == {"parse": []} for m in [original, *ix.followups])


async def test_first_followup_after_defer_replaces_the_thinking_message(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    ix = await fake.slash("quick", {}, user_id=ALICE)

    await fake.wait_for(lambda: ix.followup_ids)

    assert ix.followup_ids == [ix.original_message_id]
    assert ix.final_content == "done" and ix.ephemeral
    assert ix.original is not None and ix.original.ephemeral


async def test_button_click_runs_the_view_callback(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    ix = await fake.slash("panel", user_id=ALICE)
    await fake.wait_for(lambda: ix.original)
    assert ix.original is not None and ix.callback is not None and ix.callback.type == 4

    click = await fake.click(ix.original.id, "confirm", user_id=ALICE)
    await fake.wait_for(lambda: click.responded)

    assert click.callback is not None and click.callback.type == 7
    assert click.original is ix.original
    assert ix.original.contents == ["Pick one", f"confirmed by <@{ALICE}>"]
    assert ix.original.components == []
    assert ix.original.pings.users == {ALICE}  # no allowed_mentions on that edit: the mention would ping


async def test_tree_sync_stores_commands_with_stable_ids(fake: FakeDiscord, bot: EchoBot) -> None:
    guild = discord.Object(id=fake.guild_id)
    bot.tree.copy_global_to(guild=guild)

    synced = await bot.tree.sync(guild=guild)
    again = await bot.tree.sync(guild=guild)

    assert sorted(c.name for c in synced) == ["panel", "perms", "ping", "quick", "stall", "wait"]
    assert {c.name: c.id for c in synced} == {c.name: c.id for c in again}
    assert all(c["guild_id"] == str(fake.guild_id) for c in fake.synced_commands(fake.guild_id))
    assert fake.synced_commands() == []
    fetched = await bot.tree.fetch_commands(guild=guild)
    assert {c.id for c in fetched} == {c.id for c in synced}
    ping = next(c for c in fake.synced_commands(fake.guild_id) if c["name"] == "ping")
    assert ping["options"][0]["name"] == "text" and ping["options"][0]["type"] == 3

    ix = await fake.slash("ping", {"text": "guild"}, user_id=ALICE)  # carries guild_id: found among guild commands
    await fake.wait_for(lambda: ix.followups)
    assert ix.final_content == "pong: guild"


def _option(name: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "description": f"The {name}.", "type": 3, "required": required}


@pytest.mark.parametrize(
    ("command", "where"),
    [
        ({"name": "Ask", "description": "Capitals are not allowed."}, ["0", "name"]),
        ({"name": "ask me", "description": "Nor spaces."}, ["0", "name"]),
        ({"name": "a" * 33, "description": "Too long a name."}, ["0", "name"]),
        ({"name": "ask", "description": ""}, ["0", "description"]),
        ({"name": "ask", "description": "x" * 101}, ["0", "description"]),
        ({"name": "ask", "description": "d", "options": [_option(f"o{i}") for i in range(26)]}, ["0", "options"]),
        (
            {"name": "ask", "description": "d", "options": [_option("later"), _option("first", required=True)]},
            ["0", "options", "1", "required"],
        ),
        ({"name": "ask", "description": "d", "options": [_option("Big")]}, ["0", "options", "0", "name"]),
        ({"name": "Teach Docent", "type": 3, "description": "Context menus have none."}, ["0", "description"]),
    ],
)
async def test_command_payloads_are_validated_as_discord_does(
    fake: FakeDiscord, bot: EchoBot, command: dict[str, Any], where: list[str]
) -> None:
    with pytest.raises(discord.HTTPException) as rejected:
        await bot.http.bulk_upsert_global_commands(fake.application_id, [command])
    assert (rejected.value.status, rejected.value.code) == (400, 50035)
    assert f"In {'.'.join(where)}: " in rejected.value.text, rejected.value.text
    assert fake.synced_commands() == []
    with pytest.raises(discord.HTTPException) as alone:
        await bot.http.upsert_global_command(fake.application_id, command)  # type: ignore[arg-type]
    assert alone.value.code == 50035


async def test_valid_command_payloads_are_taken(fake: FakeDiscord, bot: EchoBot) -> None:
    commands: list[dict[str, Any]] = [
        {"name": "ask-docs_v2", "description": "x" * 100, "options": [_option("q", required=True), _option("p")]},
        {"name": "Teach Docent", "type": 3},
        {"name": "Teach Docent", "type": 2},  # a user command may share a message command's name
    ]
    await bot.http.bulk_upsert_global_commands(fake.application_id, commands)
    assert sorted(c["name"] for c in fake.synced_commands()) == ["Teach Docent", "Teach Docent", "ask-docs_v2"]
    with pytest.raises(discord.HTTPException) as twice:
        await bot.http.bulk_upsert_global_commands(fake.application_id, [commands[0], commands[0]])
    assert twice.value.code == 50035


async def test_an_embed_description_over_4096_characters_is_rejected(fake: FakeDiscord, bot: EchoBot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as rejected:
        await channel.send(embed=discord.Embed(description="x" * 4097))
    assert rejected.value.code == 50035 and "embeds.0.description" in rejected.value.text, rejected.value.text
    sent = await channel.send(embed=discord.Embed(description="x" * 4096))
    assert fake.messages[sent.id].embeds[0]["description"] == "x" * 4096


async def test_rate_limited_send_is_retried(fake: FakeDiscord, bot: EchoBot) -> None:
    fake.rate_limit_once("POST", "/channels/*/messages", retry_after=0.05)
    asked = await fake.user_says(ALICE, "still there?", mention_bot=True)

    await fake.wait_for_message(lambda m: m.reply_to == asked)

    assert [r.status for r in fake.calls("POST", "/channels/*/messages")] == [429, 200]


async def test_late_interaction_response_is_rejected(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    fake.interaction_deadline = 0.0  # every callback is "too late"
    ix = await fake.slash("ping", {"text": "slow"}, user_id=ALICE)

    await fake.wait_for(lambda: bot.errors)

    refused_as_unknown(ix, bot)


def refused_as_unknown(ix: Any, bot: EchoBot) -> None:
    """The late response was refused as Discord refuses it (404, Unknown interaction), and the bot saw that."""
    assert not ix.responded and [r.status for r in ix.rejected] == [404]
    error = bot.errors[0]
    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.NotFound) and error.original.code == 10062
    bot.errors.clear()  # expected; the fixture fails on any other


async def test_the_3_second_deadline_runs_on_the_fakes_clock(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    ix = await fake.slash("stall", {}, user_id=ALICE)
    fake.advance(3.5)  # the bot is stuck for 3.5 s, as far as Discord can tell
    bot.gate.set()

    await fake.wait_for(lambda: bot.errors, what="the late response to fail")

    refused_as_unknown(ix, bot)


async def test_an_interaction_token_expires_after_15_minutes(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    ix = await fake.slash("wait", {}, user_id=ALICE)
    await fake.wait_for(lambda: ix.deferred, what="the deferral")
    fake.advance(14 * 60)
    assert (await bot.tree.fetch_commands()) and ix.original is not None  # nothing else expires on the clock
    fake.advance(61)
    bot.gate.set()

    await fake.wait_for(lambda: bot.errors, what="the edit on the expired token to fail")

    assert [(r.method, r.status) for r in ix.rejected] == [("PATCH", 401)]
    error = bot.errors[0]
    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.HTTPException)
    assert (error.original.status, error.original.code) == (401, 50027)
    assert ix.original.loading, "the response still shows Discord's 'thinking'"
    bot.errors.clear()


async def test_channel_overwrites_decide_what_the_bot_and_members_may_do(fake: FakeDiscord, bot: EchoBot) -> None:
    await bot.tree.sync()
    quiet = fake.add_channel("announcements")
    qid = int(quiet["id"])
    send, manage = discord.Permissions(send_messages=True).value, discord.Permissions(manage_messages=True).value
    fake.set_overwrite(qid, fake.guild_id, deny=send)  # @everyone may not talk here...
    await fake.wait_for(lambda: bot.get_channel(qid), what="CHANNEL_CREATE")
    channel = bot.get_channel(qid)
    assert isinstance(channel, discord.TextChannel)
    await fake.wait_for(lambda: channel.overwrites, what="CHANNEL_UPDATE with the overwrite")

    with pytest.raises(discord.Forbidden) as denied:
        await channel.send("hello", allowed_mentions=NO_PINGS)
    assert denied.value.code == 50013
    me = channel.guild.me
    assert channel.permissions_for(me).value == fake.bot_permissions_in(qid) and not fake.bot_permissions_in(qid) & send
    assert fake.bot_permissions & send, "elsewhere it may"

    fake.set_overwrite(qid, fake.bot_role_id, allow=send)  # ...but the bot's role may: a role's allow wins
    await fake.wait_for(lambda: channel.permissions_for(me).send_messages, what="the bot's role overwrite")
    await channel.send("hello", allowed_mentions=NO_PINGS)
    assert fake.bot_permissions_in(qid) == channel.permissions_for(me).value

    fake.set_overwrite(qid, ALICE, allow=manage)  # a member's own overwrite
    here = await fake.slash("perms", {}, user_id=ALICE, channel_id=qid)
    there = await fake.slash("perms", {}, user_id=ALICE)
    await fake.wait_for(lambda: here.responded and there.responded, what="both answers")
    (alice_here, app_here), (alice_there, _) = (map(int, (ix.final_content or "").split()) for ix in (here, there))
    assert alice_here & manage and not alice_here & send and alice_there & send and not alice_there & manage
    assert app_here == fake.bot_permissions_in(qid)

    fake.set_overwrite(qid, fake.guild_id, deny=discord.Permissions(view_channel=True).value)
    assert fake.permissions_in(ALICE, qid) == 0, "without View Channel nothing is left"


async def test_joining_and_leaving_servers(fake: FakeDiscord, bot: EchoBot) -> None:
    other = 444444444444444444
    await fake.join_guild(other, "Other Server")
    await fake.wait_for(lambda: bot.guild_events, what="on_guild_join")
    guild = bot.get_guild(other)
    assert guild is not None and guild.name == "Other Server" and guild.me is not None
    assert bot.guild_events == [("join", other)]

    await guild.leave()
    await fake.wait_for(lambda: bot.get_guild(other) is None, what="the server to leave the cache")
    assert fake.left_guilds == [other] and bot.guild_events[-1] == ("remove", other)
    with pytest.raises(discord.NotFound):
        await guild.leave()  # already left: Unknown Guild

    main = bot.get_guild(fake.guild_id)
    assert main is not None
    await main.leave()
    await fake.wait_for(lambda: bot.get_guild(fake.guild_id) is None, what="the main server to leave the cache")
    await fake.user_says(ALICE, "anyone there?", mention_bot=True)
    sent = [f.payload for f in fake.gateway_log if f.direction == "sent" and f.payload.get("t") == "MESSAGE_CREATE"]
    assert not any("anyone there?" in (p["d"].get("content") or "") for p in sent), "a left server sends nothing"
    assert fake.left_guilds == [other, fake.guild_id]


# ------------------------------------------------------------------------------------------------------------ forums


@pytest.fixture
def forum(fake: FakeDiscord) -> int:
    """A forum in a category, added before the bot connects (so it comes in GUILD_CREATE)."""
    category = fake.add_category("Help")
    return int(fake.add_forum("questions", tags=("Solved", "Bug"), category_id=int(category["id"]))["id"])


@pytest.fixture
async def forum_bot(fake: FakeDiscord, forum: int) -> AsyncIterator[ForumBot]:
    bot = ForumBot()
    async with fake.run_bot(bot):
        yield bot
    assert bot.is_closed() and not bot.errors, bot.errors
    assert not pending_discordpy_tasks()


def _tag(thread: discord.Thread, name: str) -> discord.ForumTag:
    assert isinstance(thread.parent, discord.ForumChannel)
    return next(t for t in thread.parent.available_tags if t.name == name)


async def test_forum_comes_with_its_tags_and_category(fake: FakeDiscord, forum: int, forum_bot: ForumBot) -> None:
    channel = forum_bot.get_channel(forum)

    assert isinstance(channel, discord.ForumChannel) and channel.name == "questions"
    assert [(t.name, t.moderated, t.emoji) for t in channel.available_tags] == [
        ("Solved", False, None),
        ("Bug", False, None),
    ]
    assert channel.get_tag(fake.tag_id(forum, "Solved")) is channel.available_tags[0]
    assert isinstance(channel.category, discord.CategoryChannel) and channel.category.name == "Help"


async def test_user_post_is_a_thread_then_its_starter_message(
    fake: FakeDiscord, forum: int, forum_bot: ForumBot
) -> None:
    tid, mid = await fake.user_posts(ALICE, forum, "How do I index PDFs?", "It fails on scans.", tags=["Bug"])

    answer = await fake.wait_for_message(channel_id=tid)

    assert tid == mid  # Discord: a post and its starter message share one id
    [thread] = forum_bot.threads
    assert thread.id == tid and thread.name == "How do I index PDFs?" and thread.owner_id == ALICE
    assert isinstance(thread.parent, discord.ForumChannel) and thread.parent.id == forum
    assert [t.name for t in thread.applied_tags] == ["Bug"] == fake.thread_tags(tid)
    [opener] = forum_bot.posts
    assert opener.id == thread.id and opener.content == "It fails on scans." and opener.author.id == ALICE
    assert isinstance(opener.channel, discord.Thread) and opener.channel.parent == thread.parent
    sent = [f.payload for f in fake.gateway_log if f.direction == "sent" and f.payload.get("t")]
    about = [p for p in sent if str(tid) in (p["d"].get("id"), p["d"].get("channel_id"))]
    assert [p["t"] for p in about[:2]] == ["THREAD_CREATE", "MESSAGE_CREATE"]
    assert about[0]["d"]["newly_created"] and "member" not in about[0]["d"]  # the bot is not in the thread yet

    assert answer.content == "answer to: How do I index PDFs?" and not answer.pings
    assert fake.user_messages[mid].reactions == [("👀", fake.bot_user_id)]
    assert fake.user_messages[mid].channel_id == tid
    assert fake.channels[tid]["message_count"] == 1  # the starter message is not counted, as on Discord
    assert fake.channels[forum]["last_message_id"] == str(tid)

    await fake.user_says(ALICE, "thanks, that was it", channel_id=tid)
    await fake.wait_for(lambda: len(forum_bot.posts) == 2, what="the follow-up in the post")
    assert forum_bot.posts[1].channel.id == tid and forum_bot.posts[1].content == "thanks, that was it"


async def test_bot_marks_a_post_solved(fake: FakeDiscord, forum: int, forum_bot: ForumBot) -> None:
    tid, _ = await fake.user_posts(ALICE, forum, "Reindex?", "How often should I reindex?")
    await fake.wait_for_message(channel_id=tid)
    thread = forum_bot.get_channel(tid)
    assert isinstance(thread, discord.Thread)
    solved = _tag(thread, "Solved")

    edited = await thread.edit(applied_tags=[solved])

    assert [t.name for t in edited.applied_tags] == ["Solved"] == fake.thread_tags(tid)
    edit = fake.channel_edits[-1]
    assert (edit.channel_id, edit.before, edit.after) == (tid, {"applied_tags": []}, {"applied_tags": [str(solved.id)]})
    await fake.wait_for(lambda: thread.applied_tags == [solved], what="THREAD_UPDATE to reach the cached thread")

    bogus = discord.ForumTag(name="Bogus")
    bogus.id = 1234
    with pytest.raises(discord.HTTPException) as unknown:
        await thread.edit(applied_tags=[solved, bogus])
    assert (unknown.value.status, unknown.value.code) == (400, 50035)
    with pytest.raises(discord.HTTPException) as too_many:
        await thread.edit(applied_tags=[solved] * 6)
    assert (too_many.value.status, too_many.value.code) == (400, 50035)

    fake.set_bot_permissions(DEFAULT_BOT_PERMISSIONS & ~MANAGE_THREADS)
    with pytest.raises(discord.Forbidden) as forbidden:  # not the bot's post: retagging takes Manage Threads
        await thread.edit(applied_tags=[])
    assert forbidden.value.code == 50013
    assert fake.thread_tags(tid) == ["Solved"]


async def test_bot_opens_a_forum_post(fake: FakeDiscord, forum: int, forum_bot: ForumBot) -> None:
    channel = forum_bot.get_channel(forum)
    assert isinstance(channel, discord.ForumChannel)
    solved = channel.available_tags[0]

    thread, message = await channel.create_thread(
        name="FAQ: indexing", content="Start here.", applied_tags=[solved], allowed_mentions=NO_PINGS
    )

    assert thread.id == message.id and message.channel is thread and thread.parent is channel
    assert thread.owner_id == fake.bot_user_id and fake.thread_tags(thread.id) == ["Solved"]
    assert fake.messages[message.id].channel_id == thread.id and fake.messages[message.id].content == "Start here."
    assert fake.calls("POST", f"/channels/{forum}/threads")[0].json["message"]["content"] == "Start here."
    await fake.wait_for(lambda: forum_bot.threads, what="on_thread_create for the bot's own post")

    with pytest.raises(discord.HTTPException) as empty:  # a post needs a starter message
        await channel.create_thread(name="Empty")
    assert empty.value.code == 50006

    fake.set_bot_permissions(DEFAULT_BOT_PERMISSIONS & ~MANAGE_THREADS)
    await thread.edit(applied_tags=[])  # its own post: the owner may retag it
    assert fake.thread_tags(thread.id) == []
    with pytest.raises(discord.Forbidden):
        await thread.edit(locked=True)  # but locking always takes Manage Threads


async def test_archived_post_reopens_only_on_a_new_message(fake: FakeDiscord, forum: int, forum_bot: ForumBot) -> None:
    tid, _ = await fake.user_posts(ALICE, forum, "Stale", "Anyone?")
    await fake.wait_for_message(channel_id=tid)
    guild = forum_bot.get_guild(fake.guild_id)
    thread = forum_bot.get_channel(tid)
    assert guild is not None and isinstance(thread, discord.Thread)

    await thread.edit(archived=True)
    await fake.wait_for(lambda: guild.get_thread(tid) is None, what="the archived thread to leave the cache")
    with pytest.raises(discord.HTTPException) as archived:
        await forum_bot.posts[0].add_reaction("✅")
    assert archived.value.code == 50083
    with pytest.raises(discord.HTTPException):
        await thread.edit(name="Renamed")  # must be unarchived first

    await fake.user_says(ALICE, "still stuck", channel_id=tid)  # a new message reopens it
    await fake.wait_for(lambda: len(forum_bot.posts) == 2, what="the message in the reopened post")
    assert not fake.channels[tid]["thread_metadata"]["archived"]
    assert isinstance(forum_bot.posts[1].channel, discord.Thread) and guild.get_thread(tid) is not None

    await thread.edit(locked=True)
    with pytest.raises(DiscordError) as locked:
        await fake.user_says(ALICE, "hello?", channel_id=tid)  # a locked post takes Manage Threads to post in
    assert locked.value.code == 50013
    await thread.send("Locked; moderators can still post.")  # the bot has Manage Threads


async def test_forum_added_later_and_posts_without_message_content(fake: FakeDiscord, bot: EchoBot) -> None:
    forum = int(fake.add_forum("late")["id"])
    await fake.wait_for(lambda: isinstance(bot.get_channel(forum), discord.ForumChannel), what="CHANNEL_CREATE")

    quiet, _ = await fake.user_posts(ALICE, forum, "Visible title", "hidden body")
    await fake.wait_for(lambda: bot.seen, what="the starter message")
    loud, _ = await fake.user_posts(ALICE, forum, "Asking the bot", "how do I index?", mention_bot=True)
    reply = await fake.wait_for_message(channel_id=loud)

    assert bot.seen == ["", f"<@{fake.bot_user_id}> how do I index?"]  # the body is content; the title is not
    quiet_thread = bot.get_channel(quiet)
    assert isinstance(quiet_thread, discord.Thread) and quiet_thread.name == "Visible title"
    assert reply.reply_to == loud and reply.content == "you asked: how do I index?"
    assert fake.calls("POST", f"/channels/{loud}/typing")


async def test_new_forum_tags_take_manage_channels(fake: FakeDiscord, forum: int, forum_bot: ForumBot) -> None:
    channel = forum_bot.get_channel(forum)
    assert isinstance(channel, discord.ForumChannel)
    with pytest.raises(discord.Forbidden):
        await channel.create_tag(name="Docs gap")

    fake.set_bot_permissions(DEFAULT_BOT_PERMISSIONS | discord.Permissions(manage_channels=True).value)
    tag = await channel.create_tag(name="Docs gap", moderated=True)

    assert tag.id == fake.tag_id(forum, "Docs gap")
    assert [t["name"] for t in fake.channels[forum]["available_tags"]] == ["Solved", "Bug", "Docs gap"]
    await fake.wait_for(lambda: channel.get_tag(tag.id) is not None, what="CHANNEL_UPDATE to reach the cache")
    thread, _ = await channel.create_thread(name="Known gaps", content="Listed here.")
    fake.set_bot_permissions(DEFAULT_BOT_PERMISSIONS & ~MANAGE_THREADS)
    await thread.add_tags(channel.available_tags[0])  # its own post: an unmoderated tag is fine
    with pytest.raises(discord.Forbidden):
        await thread.add_tags(tag)  # a moderated one takes Manage Threads even there
    assert fake.thread_tags(thread.id) == ["Solved"]
