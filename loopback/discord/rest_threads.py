"""Threads and forums: a forum post (a public thread and its starter message under one id, tags checked), threads
started from a message or in a channel, and editing a channel or thread (``PATCH /channels/{id}``) with Discord's
rules on who may rename, archive, lock and retag."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loopback.discord.errors import DiscordError, _form_error, _missing_permissions, _thread_archived, _too_long
from loopback.discord.permissions import MANAGE_THREADS, P
from loopback.discord.rest_messages import Messages
from loopback.discord.state import (
    _THREAD_TYPES,
    ARCHIVE_DURATIONS,
    GUILD_FORUM,
    GUILD_TEXT,
    GUILDS,
    MAX_APPLIED_TAGS,
    MAX_FORUM_TAGS,
    REQUIRE_TAG,
    ChannelEdit,
    MessageRecord,
    _now_iso,
    _Request,
)


class Threads(Messages):
    """Forum posts, threads and channel edits, and their routes."""

    channel_edits: list[ChannelEdit]

    def tag_id(self, forum_id: int, name: str) -> int:
        """The id of the forum's tag called ``name`` (KeyError if it has none)."""
        for tag in self._channel(forum_id).get("available_tags") or []:
            if tag["name"] == name:
                return int(tag["id"])
        raise KeyError(f"forum {forum_id} has no tag {name!r}")

    def thread_tags(self, thread_id: int) -> list[str]:
        """The names of the tags applied to a forum post, in the order they were applied."""
        thread = self._channel(thread_id)
        names = {t["id"]: t["name"] for t in self._channel(int(thread["parent_id"])).get("available_tags") or []}
        return [names.get(tag, f"<deleted tag {tag}>") for tag in thread.get("applied_tags") or []]

    def _check_tags(self, forum: dict[str, Any] | None, tags: list[str]) -> None:
        """At most 5, each one of the forum's ``available_tags`` (a thread outside a forum has none).

        Repeats are kept, as Discord keeps them. The per-item error code is the fake's own: assert on 400/50035.
        """
        if len(tags) > MAX_APPLIED_TAGS:
            raise _too_long("applied_tags", MAX_APPLIED_TAGS)
        available = {t["id"] for t in (forum or {}).get("available_tags") or []}
        unknown = {
            str(i): {"_errors": [{"code": "TAG_INVALID", "message": f"Tag {tag} is not available in this channel"}]}
            for i, tag in enumerate(tags)
            if tag not in available
        }
        if unknown:
            raise DiscordError(400, 50035, "Invalid Form Body", {"applied_tags": unknown})

    @staticmethod
    def _moderated(forum: dict[str, Any] | None, tags: Iterable[str]) -> bool:
        moderated = {t["id"] for t in (forum or {}).get("available_tags") or [] if t.get("moderated")}
        return any(tag in moderated for tag in tags)

    async def _open_post(
        self,
        forum: dict[str, Any],
        *,
        author_id: int,
        body: dict[str, Any],
        message: dict[str, Any],
        files: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], MessageRecord]:
        """A forum post: a public thread and its starter message, which share one id; THREAD_CREATE, then the
        message's MESSAGE_CREATE."""
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise _too_long("name", 100)
        tags = [str(t) for t in body.get("applied_tags") or []]
        self._check_tags(forum, tags)
        if forum["flags"] & REQUIRE_TAG and not tags:
            raise DiscordError(400, 40067, "A tag is required to create a forum post in this channel")
        self._check_body(message.get("content") or "", message, creating=True)
        tid = self._next_id()
        thread = self._thread_payload(tid, forum, owner_id=author_id, name=name, thread_type=11, body=body)
        self.channels[tid] = thread
        try:
            rec = self._create_message(channel_id=tid, author_id=author_id, body=message, files=files, message_id=tid)
        except DiscordError:
            del self.channels[tid]
            raise
        rec.thread_id = tid
        forum["last_message_id"] = str(tid)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, intent=GUILDS)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return thread, rec

    # ---------------------------------------------------------------------------------------------------- routes

    async def _r_thread_from_message(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if rec.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = await self._create_thread(rec.channel_id, req.json or {}, thread_id=rec.id, thread_type=11)
        rec.thread_id = rec.id
        rec.payload["thread"] = thread
        return thread

    async def _r_thread(self, req: _Request) -> Any:
        body = req.json or {}
        parent = self._channel(int(req.params["channel_id"]))
        if parent["type"] == GUILD_FORUM:
            return await self._bot_opens_post(parent, body, req.files)
        return await self._create_thread(int(parent["id"]), body, None, int(body.get("type", 12)))

    async def _bot_opens_post(self, forum: dict[str, Any], body: dict[str, Any], files: tuple[str, ...]) -> Any:
        """``ForumChannel.create_thread``: the channel fields plus the starter message under ``message``; the answer
        is the thread with the message nested the same way."""
        self._require(P(view_channel=True, send_messages=True).value, forum)  # Discord: a post takes Send Messages
        message = body.get("message")
        if not isinstance(message, dict):
            raise _form_error("message", "BASE_TYPE_REQUIRED", "This field is required")
        if self._moderated(forum, [str(t) for t in body.get("applied_tags") or []]):
            self._require(MANAGE_THREADS, forum)
        thread, rec = await self._open_post(forum, author_id=self.bot_user_id, body=body, message=message, files=files)
        return {**thread, "message": rec.payload}

    async def _create_thread(
        self, parent_id: int, body: dict[str, Any], thread_id: int | None, thread_type: int
    ) -> dict[str, Any]:
        parent = self._channel(parent_id)
        if parent.get("guild_id") is None or parent["type"] not in (GUILD_TEXT, 5):  # text and announcement
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        bit = P(create_public_threads=True) if thread_type != 12 else P(create_private_threads=True)
        self._require(P(view_channel=True).value | bit.value, parent)
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise _too_long("name", 100)
        tid = thread_id or self._next_id()
        thread = self._thread_payload(
            tid, parent, owner_id=self.bot_user_id, name=name, thread_type=thread_type, body=body
        )
        self.channels[tid] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, intent=GUILDS)
        return thread

    async def _r_edit_channel(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        if channel.get("guild_id") is None:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        body = req.json or {}
        if channel["type"] in _THREAD_TYPES:
            await self._edit_thread(channel, body)
        else:
            await self._edit_guild_channel(channel, body)
        return channel

    async def _edit_thread(self, thread: dict[str, Any], body: dict[str, Any]) -> None:
        meta = thread["thread_metadata"]
        parent = self.channels.get(int(thread["parent_id"]))
        self._require(P(view_channel=True).value, thread)
        if meta["archived"] and body.get("archived") is not False:
            raise _thread_archived()  # even to lock it: unarchive in the same call
        if "name" in body and not 1 <= len(body["name"] or "") <= 100:
            raise _too_long("name", 100)
        if "auto_archive_duration" in body and body["auto_archive_duration"] not in ARCHIVE_DURATIONS:
            raise _form_error(
                "auto_archive_duration", "BASE_TYPE_CHOICES", f"Value must be one of {ARCHIVE_DURATIONS}."
            )
        tags: list[str] | None = None
        if "applied_tags" in body:
            tags = [str(t) for t in body["applied_tags"] or []]
            self._check_tags(parent, tags)
        managed = self.bot_permissions_in(int(thread["id"])) & MANAGE_THREADS
        if not managed and not self._may_edit_unmanaged(thread, body, parent, tags):
            raise _missing_permissions()
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for key in ("name", "rate_limit_per_user", "flags", "applied_tags"):
            if key in body:
                before[key] = thread.get(key)
                after[key] = thread[key] = tags if key == "applied_tags" else body[key]
        for key in ("archived", "locked", "auto_archive_duration", "invitable"):
            if key in body and not (key == "invitable" and thread["type"] != 12):
                before[key] = meta[key]
                after[key] = meta[key] = body[key]
        if before.get("archived", meta["archived"]) != meta["archived"]:
            meta["archive_timestamp"] = _now_iso()
        self.channel_edits.append(ChannelEdit(int(thread["id"]), self.now(), before, after))
        await self.dispatch("THREAD_UPDATE", self._thread_event(thread), intent=GUILDS)

    def _may_edit_unmanaged(
        self, thread: dict[str, Any], body: dict[str, Any], parent: dict[str, Any] | None, tags: list[str] | None
    ) -> bool:
        """Without MANAGE_THREADS: anyone who may post can reopen an unlocked thread; its owner can also rename,
        archive and retag it (tags marked ``moderated`` excepted)."""
        if thread["thread_metadata"]["locked"]:
            return False
        if body == {"archived": False}:
            self._require(P(send_messages=True).value, thread)
            return True
        if int(thread["owner_id"]) != self.bot_user_id:
            return False
        if set(body) - {"name", "archived", "auto_archive_duration", "applied_tags"}:
            return False
        return tags is None or not self._moderated(parent, set(tags) ^ set(thread.get("applied_tags") or []))

    async def _edit_guild_channel(self, channel: dict[str, Any], body: dict[str, Any]) -> None:
        """Channel settings (MANAGE_CHANNELS): the keys the channel object has; a forum's ``available_tags`` keep
        the ids they are sent with and get new ones otherwise (``ForumChannel.create_tag``)."""
        self._require(P(view_channel=True, manage_channels=True).value, channel)
        if "name" in body and not 1 <= len(body["name"] or "") <= 100:
            raise _too_long("name", 100)
        changes = {k: v for k, v in body.items() if k in channel and k not in ("id", "type", "guild_id")}
        if "parent_id" in changes and changes["parent_id"] is not None:
            changes["parent_id"] = str(changes["parent_id"])
        if "available_tags" in changes:
            sent = changes["available_tags"] or []
            if len(sent) > MAX_FORUM_TAGS:
                raise _too_long("available_tags", MAX_FORUM_TAGS)
            known = {t["id"] for t in channel["available_tags"]}
            changes["available_tags"] = [
                {
                    "id": str(tag["id"]) if str(tag.get("id")) in known else str(self._next_id()),
                    "name": tag["name"],
                    "moderated": bool(tag.get("moderated", False)),
                    "emoji_id": tag.get("emoji_id"),
                    "emoji_name": tag.get("emoji_name"),
                }
                for tag in sent
            ]
        before = {k: channel[k] for k in changes}
        channel.update(changes)
        self.channel_edits.append(ChannelEdit(int(channel["id"]), self.now(), before, dict(changes)))
        await self.dispatch("CHANNEL_UPDATE", channel, intent=GUILDS)
