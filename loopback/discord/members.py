"""What members do, for tests to inject: post (in a channel, a thread, a DM or a forum), react, and run slash
commands, autocomplete, message commands and components, each arriving as Discord delivers it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from loopback.discord.rest_interactions import Interactions
from loopback.discord.rest_threads import Threads
from loopback.discord.state import GUILD_CATEGORY, GUILD_FORUM, GUILD_MESSAGE_REACTIONS, InteractionRecord


class MemberActions(Threads, Interactions):
    """The events a test sends the bot on a member's behalf."""

    async def user_says(
        self,
        author_id: int,
        content: str,
        *,
        mention_bot: bool = False,
        channel_id: int | None = None,
        reply_to: int | None = None,
        ping_reply: bool = True,
        dm: bool = False,
    ) -> int:
        """A member posts a message (MESSAGE_CREATE); returns its id.

        ``mention_bot`` prefixes ``<@BOT>`` like the Discord client does; ``reply_to`` makes it a reply (type 19)
        that, with ``ping_reply``, also mentions the replied-to author. ``dm`` posts in the author's DM with the bot.
        """
        await self._ensure_connected()
        if author_id not in self.users:
            raise KeyError(f"unknown user {author_id}: call add_member first")
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        cid = self._dm_channel(author_id)["id"] if dm else str(channel_id or self.channel_id)
        channel = self._channel(int(cid))
        if channel["type"] in (GUILD_CATEGORY, GUILD_FORUM):
            raise ValueError(f"channel {cid} takes no messages (for a forum, use user_posts)")
        reopen = self._check_can_post(channel, author_id)
        reference = None
        if reply_to is not None:
            reference = {"message_id": str(reply_to), "channel_id": cid, "fail_if_not_exists": True}
        rec = self._create_message(
            channel_id=int(cid),
            author_id=author_id,
            body={"content": content, "message_reference": reference} if reference else {"content": content},
            allowed_mentions=None if ping_reply else {"parse": ["users", "roles", "everyone"]},
        )
        if reopen:
            await self._reopen_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.id

    async def user_posts(
        self,
        author_id: int,
        forum_id: int,
        title: str,
        content: str,
        *,
        tags: Iterable[str] = (),
        mention_bot: bool = False,
    ) -> tuple[int, int]:
        """A member opens a post in a forum; returns ``(thread_id, message_id)``, which are equal, as on Discord.

        The bot gets THREAD_CREATE (``newly_created``) then the starter message's MESSAGE_CREATE in the thread (blank
        without MESSAGE_CONTENT unless it mentions the bot; the title, being the thread's name, is always visible).
        ``tags`` are tag names. The starter message lands in ``user_messages``; answer in the post with
        ``user_says(..., channel_id=thread_id)``.
        """
        await self._ensure_connected()
        if author_id not in self.users:
            raise KeyError(f"unknown user {author_id}: call add_member first")
        forum = self._channel(forum_id)
        if forum["type"] != GUILD_FORUM:
            raise ValueError(f"channel {forum_id} is not a forum")
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        applied = [str(self.tag_id(forum_id, name)) for name in tags]
        thread, rec = await self._open_post(
            forum, author_id=author_id, body={"name": title, "applied_tags": applied}, message={"content": content}
        )
        return int(thread["id"]), rec.id

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user_id: int,
        channel_id: int | None = None,
        guild: bool = True,
    ) -> InteractionRecord:
        """A member runs ``/name`` (``"group sub"`` for subcommands); returns the record to assert on.

        Option types come from the synced command when the bot synced it (users/channels/roles get ``resolved``
        data), else they are inferred from the Python values. Sync guild commands first: only then does the
        interaction carry the ``guild_id`` discord.py needs to find them.
        """
        return await self._command_interaction(2, name, options, user_id, channel_id, guild, focused=None)

    async def user_reacts(self, user_id: int, message_id: int, emoji: str) -> None:
        """A member adds a (unicode) reaction to a message: MESSAGE_REACTION_ADD, with their member object."""
        await self._ensure_connected()
        rec = self.user_messages.get(message_id) or self.messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        rec.reactions.append((emoji, user_id))
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(rec.channel_id),
            "message_id": str(rec.id),
            "message_author_id": str(rec.author_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "type": 0,
            "guild_id": str(self.guild_id),
            "member": self.members[user_id],
        }
        await self.dispatch("MESSAGE_REACTION_ADD", data, intent=GUILD_MESSAGE_REACTIONS)

    async def message_command(self, name: str, message_id: int, *, user_id: int) -> InteractionRecord:
        """A member runs the message context-menu command ``name`` (Apps → name) on a message."""
        await self._ensure_connected()
        rec = self.user_messages.get(message_id) or self.messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        command = self._find_command(name, True, ctype_wanted=3)
        if command is None:
            raise LookupError(f"no synced message command {name!r}")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): rec.payload}},
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        ix = self._new_interaction(2, user_id=user_id, channel_id=rec.channel_id, guild=True, data=data)
        ix.name = name
        await self._dispatch_interaction(ix)
        return ix

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        user_id: int,
        channel_id: int | None = None,
        guild: bool = True,
    ) -> InteractionRecord:
        """The user types into option ``focused``; the bot's choices end up in ``record.choices``."""
        return await self._command_interaction(4, name, options, user_id, channel_id, guild, focused=focused)

    async def click(
        self, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None = None
    ) -> InteractionRecord:
        """A member clicks a button (or picks ``values`` in a select) on one of the bot's messages."""
        await self._ensure_connected()
        rec = self._messages.get(message_id)
        if rec is None:
            raise KeyError(f"unknown message {message_id}")
        component = _find_component(rec.components, custom_id)
        if component is None:
            raise LookupError(f"no component {custom_id!r} on message {message_id}: {_custom_ids(rec.components)}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = values
        guild = rec.payload.get("guild_id") is not None
        ix = self._new_interaction(3, user_id=user_id, channel_id=rec.channel_id, guild=guild, data=data)
        ix.payload["message"] = rec.payload
        ix.custom_id, ix.message_id = custom_id, message_id
        await self._dispatch_interaction(ix)
        return ix

    async def submit(
        self,
        opened: InteractionRecord,
        values: dict[str, str],
        *,
        user_id: int | None = None,
        guild_id: int | None = None,
    ) -> InteractionRecord:
        """A member submits the form (modal) the bot opened in answer to ``opened``, with ``values`` by text input
        custom id or label. ``user_id`` and ``guild_id`` default to the opener's; another server's id stands for a
        forged or stale submit from elsewhere."""
        await self._ensure_connected()
        modal = opened.modal
        if modal is None:
            raise LookupError("the bot opened no form in answer to that interaction")
        inputs = [c for c in _walk_components(modal.get("components") or []) if c.get("type") == 4]
        named = {name: c for c in inputs for name in (c["custom_id"], c.get("label"))}
        unknown = set(values) - set(named)
        if unknown:
            raise LookupError(f"no text inputs {sorted(unknown)} in the form: {_custom_ids(inputs)}")
        given = {named[name]["custom_id"]: value for name, value in values.items()}
        rows = [
            {
                "type": 1,
                "components": [
                    {"type": 4, "custom_id": c["custom_id"], "value": given.get(c["custom_id"], c.get("value", ""))}
                ],
            }
            for c in inputs
        ]
        data = {"custom_id": modal["custom_id"], "components": rows}
        channel_id = int(opened.payload["channel_id"])
        ix = self._new_interaction(
            5, user_id=opened.user_id if user_id is None else user_id, channel_id=channel_id, guild=True, data=data
        )
        if guild_id is not None:
            ix.payload["guild_id"] = str(guild_id)
        await self._dispatch_interaction(ix)
        return ix


def _walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        if isinstance(component.get("accessory"), dict):
            yield component["accessory"]
        if isinstance(component.get("component"), dict):
            yield from _walk_components([component["component"]])


def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    return next((c for c in _walk_components(components) if c.get("custom_id") == custom_id), None)


def _custom_ids(components: list[dict[str, Any]]) -> list[str]:
    return [c["custom_id"] for c in _walk_components(components) if "custom_id" in c]
