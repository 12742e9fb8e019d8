"""/learned: this server's community answers waiting for approval, privately, to its admins, each with Approve,
Edit (a form with the answer to correct, then approved) and Reject. Nothing is learned without approval; a
decision re-indexes the community answers at once. The buttons carry the pair id, so they survive restarts.

What is approved is what was shown: the review shows every word (an embed holds 4,096 characters), an answer too
long to show has no Approve (Edit it shorter), and Approve carries the version shown, so a message its author
stitched on since is refused until reviewed."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from bot.discord import docent
from bot.discord.permissions import is_moderator, is_private, refused_unless_admin
from bot.discord.replies import NO_PINGS
from bot.discord.state import DiscordState
from bot.text import sendable
from rag.errors import Changed, Unlearnable
from rag.learned import VERSION_CHARS, Learned, Status
from rag.settings import Settings

logger = logging.getLogger(__name__)
SHOWN = 10  # pending pairs per /learned; the rest wait for the next one
TEACH = "Teach Docent"
_LABELS = {"approve": ("Approve", "✅"), "edit": ("Edit", "✏️"), "reject": ("Reject", "🗑️")}
EMBED_CHARS = 4096  # an embed's description, counted here in UTF-16 code units (never more than Discord counts)
EDIT_CHARS = 4000  # a form's text input
CHANGED = "#{id} changed since it was shown (its author added to it): run /learned again to review it as it is now."
SHORTER = "Edit it shorter, or review it whole in a terminal (`python -m bot learned list`)."
TOO_LONG = "#{id} is too long to show here whole, so it can't be approved as it is: " + SHORTER
_MASKED_LINK = re.compile(r"\[([^\]\n]*)\]\(")
_BUTTON = rf"docent:learned:(?P<action>approve|edit|reject):(?P<id>\d+)(?::(?P<version>[0-9a-f]{{{VERSION_CHARS}}}))?"


@dataclass(frozen=True)
class Review:
    """A pending answer as an admin sees it: a header, the question and answer in an embed, and whether the embed
    holds every word (only then is Approve offered)."""

    content: str
    embed: discord.Embed
    whole: bool


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _body(question: str, answer: str) -> str:
    """Markdown that hides text is shown as typed: a spoiler's ``||`` and a masked link's ``[label](url)``."""
    text = sendable(f"**Q:** {question}\n\n**A:** {answer}")
    return _MASKED_LINK.sub(r"\\[\1](", text.replace("||", "\\|\\|"))


def review(pair: Learned) -> Review:
    body = _body(pair.question, pair.answer)
    header = f"**#{pair.id}** by @{pair.author} — <{pair.link}>"
    whole = _units(body) <= EMBED_CHARS
    if not whole:
        body = body[:EMBED_CHARS]
        while (over := _units(body) - (EMBED_CHARS - 1)) > 0:
            body = body[:-over]
        body += "…"
        header += "\n⚠️ Too long to show here whole, so there is no Approve: " + SHORTER
    return Review(sendable(header), discord.Embed(description=body), whole)


def answer_room(pair: Learned) -> int:
    """The longest answer the Edit form takes: what the review can show after the question, within the cap."""
    return max(1, min(EDIT_CHARS, EMBED_CHARS - _units(_body(pair.question, ""))))


class LearnedButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=_BUTTON,
):
    """Approve carries the version shown (``Learned.version``): approving is refused once the answer changed."""

    def __init__(self, pair_id: int, action: str, version: str = "") -> None:
        self.pair_id, self.action, self.version = pair_id, action, version
        label, emoji = _LABELS[action]
        style = discord.ButtonStyle.danger if action == "reject" else discord.ButtonStyle.secondary
        custom_id = f"docent:learned:{action}:{pair_id}" + (f":{version}" if version else "")
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id))

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return not await docent(interaction).refuse_unless_allowed(interaction)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> LearnedButton:
        return cls(int(match["id"]), match["action"], match["version"] or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = docent(interaction)
        if await refused_unless_admin(interaction, bot.settings.discord.admin_role_ids, "decide what Docent learns"):
            return
        if self.action != "edit":  # the form must be Edit's first response; the others answer within 3 s
            await interaction.response.defer(ephemeral=True, thinking=True)
        pair = await bot.services.learned.get(self.pair_id)
        if pair is None or pair.platform != "discord" or pair.space != str(interaction.guild_id):
            await _say(interaction, "That answer is gone.")
            return
        if self.action == "edit":
            await interaction.response.send_modal(EditAnswer(pair, bot.settings.bot.learned_answer_chars))
            return
        if self.action == "reject":
            await decide(interaction, pair, "rejected")
        elif pair.version != self.version:  # a button of an older /learned, or a message stitched on since
            await _say(interaction, CHANGED.format(id=pair.id))
        elif not review(pair).whole:
            await _say(interaction, TOO_LONG.format(id=pair.id))
        else:
            await decide(interaction, pair, "approved", version=self.version)


class EditAnswer(discord.ui.Modal, title="Edit, then approve"):
    """The answer to correct, at most what the cap and the review allow: what is submitted is what is approved."""

    def __init__(self, pair: Learned, max_chars: int) -> None:
        super().__init__(custom_id=f"docent:learned-edit:{pair.id}")
        self.pair = pair
        room = min(max_chars, answer_room(pair))
        self.answer: discord.ui.TextInput[EditAnswer] = discord.ui.TextInput(
            label="Answer", style=discord.TextStyle.paragraph, default=pair.answer[:room], max_length=room
        )
        self.add_item(self.answer)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """The buttons' checks again, on the submit itself: an allowed server, this answer's server, an admin."""
        bot = docent(interaction)
        if await bot.refuse_unless_allowed(interaction):
            return
        if await refused_unless_admin(interaction, bot.settings.discord.admin_role_ids, "decide what Docent learns"):
            return
        if self.pair.platform != "discord" or self.pair.space != str(interaction.guild_id):
            await _say(interaction, "That answer is gone.")
            return
        edited = self.answer.value.strip() or self.pair.answer
        if not review(dataclasses.replace(self.pair, answer=edited)).whole:
            await _say(interaction, TOO_LONG.format(id=self.pair.id))
            return
        await decide(interaction, self.pair, "approved", answer=edited)


async def decide(
    interaction: discord.Interaction,
    pair: Learned,
    status: Status,
    *,
    answer: str | None = None,
    version: str | None = None,
) -> None:
    bot = docent(interaction)
    try:
        await bot.services.learned.decide(pair.id, status, answer=answer, version=version)
    except Changed:
        await _say(interaction, CHANGED.format(id=pair.id))
        return
    except Unlearnable as exc:
        await _say(interaction, f"#{pair.id}: {exc.user_message}")
        return
    logger.info("community answer %d %s by %s", pair.id, status, interaction.user.id)
    bot.services.spawn(bot.services.index_community(), name="index-community")
    verdict = "✅ Approved: Docent can cite it now." if status == "approved" else "🗑️ Rejected: never used."
    await _say(interaction, f"#{pair.id} {verdict}")


async def _say(interaction: discord.Interaction, text: str) -> None:
    """Privately, as the response or, once deferred, as its follow-up."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    @app_commands.command(name="learned", description="Community answers waiting for approval (admins).")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def learned(interaction: discord.Interaction) -> None:
        await show_pending(interaction)

    tree.add_command(learned)

    @app_commands.context_menu(name=TEACH)
    @app_commands.default_permissions(manage_messages=True)
    @app_commands.guild_only()
    async def teach(interaction: discord.Interaction, message: discord.Message) -> None:
        await teach_docent(interaction, message)

    tree.add_command(teach)


async def teach_docent(interaction: discord.Interaction, message: discord.Message) -> None:
    """A moderator offers a member's answer for learning; the question is the support question of its thread, the
    message it replies to, or its thread's title. Nothing is learned until an admin approves it in /learned."""
    bot = docent(interaction)
    if not is_moderator(interaction, bot.settings.discord.admin_role_ids, manage_messages=True):
        await interaction.response.send_message(
            "Only moderators can teach Docent.", ephemeral=True, allowed_mentions=NO_PINGS
        )
        return
    question = await _question_for(bot, message)
    if not question or not message.content.strip() or message.author.bot:
        await interaction.response.send_message(
            "I can't tell which question this answers: use it on a reply to the question, or in its thread.",
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )
        return
    asker, text = question
    try:
        pair = await bot.services.learned.capture(
            platform="discord",
            space=str(interaction.guild_id),
            private=is_private(message.channel),
            channel=str(message.channel.id),
            thread=f"teach-{message.id}",
            question=text,
            answer=message.content.strip(),
            link=message.jump_url,
            author=message.author.display_name,
            author_id=message.author.id,
            asker_id=asker,
        )
    except Unlearnable as exc:
        await interaction.response.send_message(
            f"Not saved: {exc.user_message}", ephemeral=True, allowed_mentions=NO_PINGS
        )
        return
    await interaction.response.send_message(
        f"Saved as #{pair} for approval in /learned.", ephemeral=True, allowed_mentions=NO_PINGS
    )


async def _question_for(bot: DiscordState, message: discord.Message) -> tuple[int | str, str] | None:
    support = bot.desk.threads.get(message.channel.id)
    if support is not None:
        return support.asker, support.question
    reference = message.reference
    if reference is not None and reference.message_id is not None:
        asked = reference.resolved if isinstance(reference.resolved, discord.Message) else None
        if asked is None:
            try:
                asked = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                asked = None
        if asked is not None and asked.content.strip():
            return asked.author.id, asked.content.strip()
    if isinstance(message.channel, discord.Thread) and message.channel.name:
        return message.channel.owner_id or 0, message.channel.name
    return None


async def show_pending(interaction: discord.Interaction) -> None:
    bot = docent(interaction)
    if await refused_unless_admin(interaction, bot.settings.discord.admin_role_ids, "see what Docent may learn"):
        return
    if interaction.guild_id is None:
        return
    await interaction.response.defer(thinking=True, ephemeral=True)
    pairs = await bot.services.learned.list("pending", platform="discord", space=str(interaction.guild_id))
    if not pairs:
        await interaction.edit_original_response(content="Nothing waiting for approval.", allowed_mentions=NO_PINGS)
        return
    more = f" (showing {SHOWN})" if len(pairs) > SHOWN else ""
    await interaction.edit_original_response(
        content=f"{len(pairs)} community answers wait for approval{more}.", allowed_mentions=NO_PINGS
    )
    for pair in pairs[:SHOWN]:
        shown = review(pair)
        view = discord.ui.View(timeout=None)
        if shown.whole:  # approving is approving what was read: only what is shown whole
            view.add_item(LearnedButton(pair.id, "approve", pair.version))
        for action in ("edit", "reject"):
            view.add_item(LearnedButton(pair.id, action))
        await interaction.followup.send(
            shown.content, embed=shown.embed, view=view, ephemeral=True, allowed_mentions=NO_PINGS
        )
        view.stop()  # the buttons are dynamic items, matched by custom id; a stored ephemeral view only times out
