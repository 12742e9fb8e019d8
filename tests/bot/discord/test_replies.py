"""How answers reach Discord: progress edits are best effort, the final edit lands or becomes a new message,
and nothing sent carries control characters."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands

from bot.discord.replies import InteractionReplier, LazyReplier, edit_quietly, finish
from loopback.discord import FakeDiscord

ALICE = 600000000000000001


class Recorder:
    """A Replier whose edits fail with ``edit_error`` (if set); records what reached it."""

    def __init__(self, edit_error: Exception | None = None) -> None:
        self.edit_error = edit_error
        self.edits: list[tuple[str, discord.ui.View | None]] = []
        self.sends: list[tuple[str, discord.ui.View | None]] = []
        self.told: list[str] = []
        self.opened = True

    async def tell(self, content: str) -> None:
        self.told.append(content)

    async def edit(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        if self.edit_error is not None:
            raise self.edit_error
        self.edits.append((content, view))
        return 1

    async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
        self.sends.append((content, view))
        return 100 + len(self.sends)


async def test_a_progress_edit_that_raises_anything_is_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    """A compatible server's odd reply made discord.py raise TypeError; that must not abort the answer."""
    replier = Recorder(edit_error=TypeError("'NoneType' object is not subscriptable"))
    with caplog.at_level(logging.WARNING, logger="bot.discord.replies"):
        await edit_quietly(replier, "partial answer ▌")
    assert "progress edit failed" in caplog.text and "TypeError" in caplog.text
    assert replier.sends == [], "progress is not worth a new message"


async def test_the_final_edit_falls_back_to_a_new_message(caplog: pytest.LogCaptureFixture) -> None:
    replier = Recorder(edit_error=TypeError("bad response body"))
    view = discord.ui.View()
    with caplog.at_level(logging.WARNING, logger="bot.discord.replies"):
        message_id = await finish(replier, "the answer", view=view)
    assert replier.sends == [("the answer", view)], "the answer and its buttons arrive in a new message"
    assert message_id == 101, "the id returned is that of the message carrying the answer"
    assert "final edit failed" in caplog.text


async def test_a_final_edit_that_lands_sends_nothing_more() -> None:
    replier = Recorder()
    assert await finish(replier, "the answer") == 1
    assert replier.edits == [("the answer", None)] and replier.sends == []


async def test_when_the_fallback_fails_too_the_error_reaches_the_caller() -> None:
    class Unreachable(Recorder):
        async def send(self, content: str, *, view: discord.ui.View | None = None) -> int | None:
            raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        await finish(Unreachable(edit_error=TypeError("bad body")), "the answer")


# -- the real repliers against the loopback Discord -------------------------------------------------------------

DIRTY = "NUL\x00 ESC\x1b[31m C1\x85 DEL\x7f CRLF\r\nTab\tend 🎉"
CLEAN = "NUL ESC[31m C1 DEL CRLF\nTab\tend 🎉"


class ReplierBot(discord.Client):
    """Just enough client to hand real messages and interactions to the repliers under test."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)
        self.replier_errors: list[BaseException] = []

        @self.tree.command(name="say", description="Answer through an InteractionReplier.")
        async def say(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            replier = InteractionReplier(interaction, ephemeral=False)
            try:
                await replier.edit(DIRTY)
                await replier.send(DIRTY)
            except Exception as exc:
                self.replier_errors.append(exc)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        fake.add_member(ALICE, "alice")
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[ReplierBot]:
    async with fake.run_bot(ReplierBot()) as client:
        yield client


async def placeholder_replier(fake: FakeDiscord, client: ReplierBot) -> tuple[LazyReplier, discord.Message]:
    """A replier whose first word (the placeholder) is already posted, as after the answer's "Searching"."""
    channel = client.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    posted: list[discord.Message] = []

    async def open_reply(content: str, view: discord.ui.View | None) -> discord.Message:
        posted.append(await channel.send(content))
        return posted[-1]

    replier = LazyReplier(open_reply)
    assert not replier.opened
    await replier.edit("🔎 Searching the docs…")
    assert replier.opened
    return replier, posted[0]


async def test_message_replier_strips_control_characters(fake: FakeDiscord, client: ReplierBot) -> None:
    replier, placeholder = await placeholder_replier(fake, client)
    assert await replier.edit(DIRTY) == placeholder.id
    extra = await replier.send(DIRTY)
    assert fake.messages[placeholder.id].content == CLEAN
    assert extra is not None and fake.messages[extra].content == CLEAN
    assert not fake.any_pings()


async def test_interaction_replier_strips_control_characters(fake: FakeDiscord, client: ReplierBot) -> None:
    await client.tree.sync()
    ix = await fake.slash("say", {}, user_id=ALICE)
    await fake.wait_for(lambda: ix.followups or client.replier_errors)
    assert not client.replier_errors
    assert ix.all_contents == [CLEAN, CLEAN]


async def test_an_edit_answered_with_a_broken_body_still_delivers_the_answer(
    fake: FakeDiscord, client: ReplierBot
) -> None:
    """As seen on a Discord-compatible server: the edit's response made discord.py raise, not an HTTPException."""
    replier, placeholder = await placeholder_replier(fake, client)
    fake.inject("PATCH", f"/channels/*/messages/{placeholder.id}", status=200, body={"unexpected": True}, times=2)
    await edit_quietly(replier, "partial ▌")
    message_id = await finish(replier, "the whole answer")
    assert message_id is not None and message_id != placeholder.id
    assert fake.messages[message_id].content == "the whole answer"
