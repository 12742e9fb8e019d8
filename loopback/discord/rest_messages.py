"""Messages: creating, editing and deleting them as Discord does (content limits, replies, whom a mention notifies,
interaction metadata, a thread's count), posting in archived and locked threads, and their REST routes: history,
send, read, edit, delete, reactions and typing."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from loopback.discord.errors import DiscordError, _missing_permissions, _thread_archived, _too_long
from loopback.discord.permissions import MANAGE_THREADS, MENTION_EVERYONE, P, Permissions
from loopback.discord.state import (
    _THREAD_TYPES,
    CONTENT_LIMIT,
    DIRECT_MESSAGE_REACTIONS,
    DIRECT_MESSAGES,
    EMBED_DESCRIPTION_LIMIT,
    EPHEMERAL,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    GUILDS,
    LOADING,
    InteractionRecord,
    MessageRecord,
    MessageVersion,
    Pings,
    _now_iso,
    _Request,
)

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


class Messages(Permissions):
    """Messages as Discord keeps them, and their routes."""

    def _compute_pings(
        self, content: str, allowed: dict[str, Any] | None, replied_author: int | None, author_id: int, channel_id: int
    ) -> tuple[Pings, Pings]:
        """What ``allowed_mentions`` lets through (absent: parse everything and ping the replied-to author), and whom
        Discord then notifies: a role only if it is mentionable or the author has Mention Everyone in the channel,
        which @everyone and @here also take."""
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        user_ids = {int(u) for u in (allowed or {}).get("users", [])}
        role_ids = {int(r) for r in (allowed or {}).get("roles", [])}
        users = {int(u) for u in _USER_MENTION.findall(content) if "users" in parse or int(u) in user_ids}
        roles = {int(r) for r in _ROLE_MENTION.findall(content) if "roles" in parse or int(r) in role_ids}
        replied = True if allowed is None else bool(allowed.get("replied_user", False))
        if replied_author is not None and replied:
            users.add(replied_author)
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        allowed_pings = Pings(frozenset(users), frozenset(roles), everyone)
        channel = self._channel(channel_id)
        in_guild = channel.get("guild_id") is not None and author_id in self.members
        may_everyone = in_guild and bool(self.permissions_in(author_id, channel_id) & MENTION_EVERYONE)
        notified_roles = {
            r for r in roles if in_guild and r in self.roles and (self.roles[r]["mentionable"] or may_everyone)
        }
        return allowed_pings, Pings(frozenset(users), frozenset(notified_roles), everyone and may_everyone)

    def _mention_objects(self, content: str, extra: int | None, guild: bool) -> list[dict[str, Any]]:
        ids: list[int] = []
        for raw in _USER_MENTION.findall(content):
            if int(raw) not in ids and int(raw) in self.users:
                ids.append(int(raw))
        if extra is not None and extra not in ids:
            ids.append(extra)
        out = []
        for uid in ids:
            mention = dict(self.users[uid])
            member = self._partial_member(uid) if guild else None
            if member is not None:
                mention["member"] = member
            out.append(mention)
        return out

    def _check_body(self, content: str, body: dict[str, Any], *, creating: bool) -> None:
        if len(content) > CONTENT_LIMIT:
            raise _too_long("content", CONTENT_LIMIT)
        if len(body.get("embeds") or []) > 10:
            raise _too_long("embeds", 10)
        for i, embed in enumerate(body.get("embeds") or []):
            if len(embed.get("description") or "") > EMBED_DESCRIPTION_LIMIT:
                raise _too_long(f"embeds.{i}.description", EMBED_DESCRIPTION_LIMIT)
        has_anything = content or body.get("embeds") or body.get("components") or body.get("attachments")
        if creating and not (has_anything or body.get("sticker_ids") or body.get("poll")):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def _create_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        allowed_mentions: dict[str, Any] | None = None,
        interaction: InteractionRecord | None = None,
        files: tuple[str, ...] = (),
        extra_flags: int = 0,
        validate: bool = True,
        message_id: int | None = None,
    ) -> MessageRecord:
        channel = self._channel(channel_id)
        guild = channel.get("guild_id") is not None
        content = body.get("content") or ""
        if validate:
            self._check_body(content, body, creating=True)
        by_bot = author_id == self.bot_user_id
        if by_bot:
            allowed_mentions = body.get("allowed_mentions")
        reference = body.get("message_reference")
        referenced: MessageRecord | None = None
        if reference and reference.get("message_id"):
            referenced = self._messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                err = {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}
                raise DiscordError(400, 50035, "Invalid Form Body", {"message_reference": {"_errors": [err]}})
        replied_author = referenced.author_id if referenced else None
        allowed_pings, pings = self._compute_pings(content, allowed_mentions, replied_author, author_id, channel_id)
        reply_ping = replied_author if replied_author in pings.users else None
        mid = message_id or self._next_id()
        flags = int(body.get("flags") or 0) | extra_flags
        attachments = [
            {
                "id": str(self._next_id()),
                "filename": name,
                "size": 0,
                "url": f"{self.api_base}/attachments/{name}",
                "proxy_url": f"{self.api_base}/attachments/{name}",
            }
            for name in files
        ]
        mtype = 0
        if referenced is not None:
            mtype = 19
        if interaction is not None and interaction.type in (2, 4):
            mtype = 20
        payload: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.users[author_id],
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": pings.everyone,
            "mentions": self._mention_objects(content, reply_ping, guild),
            "mention_roles": [str(r) for r in pings.roles],
            "mention_channels": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "reactions": [],
            "pinned": False,
            "type": mtype,
            "flags": flags,
            "components": body.get("components") or [],
        }
        if guild:
            payload["guild_id"] = channel["guild_id"]
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if referenced is not None:
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(referenced.id),
                "channel_id": str(referenced.channel_id),
                **({"guild_id": channel["guild_id"]} if guild else {}),
            }
            payload["referenced_message"] = {k: v for k, v in referenced.payload.items() if k != "referenced_message"}
        if interaction is not None:
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            }
            if interaction.name:
                metadata["name"] = interaction.name
            if interaction.message_id:
                metadata["interacted_message_id"] = str(interaction.message_id)
            if interaction.original_message_id:
                metadata["original_response_message_id"] = str(interaction.original_message_id)
            payload["interaction_metadata"] = metadata
        rec = MessageRecord(
            id=mid,
            channel_id=channel_id,
            author_id=author_id,
            by_bot=by_bot,
            payload=payload,
            reply_to=referenced.id if referenced else None,
            interaction_token=interaction.token if interaction else None,
            files=files,
        )
        rec.versions.append(
            MessageVersion(
                self.now(),
                content,
                payload["embeds"],
                payload["components"],
                flags,
                allowed_mentions,
                pings,
                allowed_pings,
            )
        )
        (self.messages if by_bot else self.user_messages)[mid] = rec
        self._messages[mid] = rec
        channel["last_message_id"] = str(mid)
        if channel["type"] in _THREAD_TYPES and mid != channel_id:  # a forum post's starter message is not counted
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        return rec

    def _edit_message(self, rec: MessageRecord, body: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        content = body["content"] if body.get("content") is not None else rec.content
        self._check_body(content or "", body, creating=False)
        payload = rec.payload
        payload["content"] = content or ""
        for key in ("embeds", "components"):
            if body.get(key) is not None:
                payload[key] = body[key]
        flags = rec.flags & ~LOADING
        if body.get("flags") is not None:
            flags = (int(body["flags"]) & ~EPHEMERAL) | (rec.flags & EPHEMERAL)
        payload["flags"] = flags
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or []}
            payload["attachments"] = [a for a in payload["attachments"] if a["id"] in keep]
        payload["edited_timestamp"] = _now_iso()
        allowed = body.get("allowed_mentions")
        # Discord notifies on create only, but a deferred answer's first edit does ping: judge every version.
        allowed_pings, pings = self._compute_pings(payload["content"], allowed, None, rec.author_id, rec.channel_id)
        rec.files = rec.files + files
        rec.versions.append(
            MessageVersion(
                self.now(),
                payload["content"],
                payload["embeds"],
                payload["components"],
                flags,
                allowed,
                pings,
                allowed_pings,
            )
        )

    async def _delete_message(self, rec: MessageRecord) -> None:
        rec.deleted_at = self.now()
        channel = self.channels.get(rec.channel_id, {})
        if channel.get("type") in _THREAD_TYPES and rec.id != rec.channel_id:
            channel["message_count"] = max(0, channel["message_count"] - 1)
        if not rec.ephemeral:
            data = {"id": str(rec.id), "channel_id": str(rec.channel_id)}
            if rec.payload.get("guild_id"):
                data["guild_id"] = rec.payload["guild_id"]
            intent = GUILD_MESSAGES if rec.payload.get("guild_id") else DIRECT_MESSAGES
            await self.dispatch("MESSAGE_DELETE", data, intent=intent)

    def _check_can_post(self, channel: dict[str, Any], author_id: int) -> bool:
        """Whether posting in ``channel`` will unarchive it (Discord does so on a send); locked threads take
        MANAGE_THREADS to post in."""
        meta = channel.get("thread_metadata")
        if meta is None:
            return False
        if meta["locked"] and not self.permissions_in(author_id, int(channel["id"])) & MANAGE_THREADS:
            raise _thread_archived() if meta["archived"] else _missing_permissions()
        return bool(meta["archived"])

    async def _reopen_thread(self, thread: dict[str, Any]) -> None:
        thread["thread_metadata"].update(archived=False, archive_timestamp=_now_iso())
        await self.dispatch("THREAD_UPDATE", self._thread_event(thread), intent=GUILDS)

    def _check_not_archived(self, channel_id: int) -> None:
        """Reactions, edits and deletes in an archived thread fail: only a new message reopens it."""
        meta = self.channels.get(channel_id, {}).get("thread_metadata")
        if meta is not None and meta["archived"]:
            raise _thread_archived()

    # ---------------------------------------------------------------------------------------------------- routes

    async def _r_history(self, req: _Request) -> Any:
        cid = int(req.params["channel_id"])
        self._channel(cid)
        limit = int(req.query.get("limit", 50))
        before = int(req.query.get("before", 1 << 63))
        after = int(req.query.get("after", 0))
        found = [
            self._read_over_rest(r.payload)
            for r in self._messages.values()
            if r.channel_id == cid and not r.deleted and not r.ephemeral and after < r.id < before
        ]
        return list(reversed(found))[:limit]

    async def _r_send(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        self._require_send(channel)
        reopen = self._check_can_post(channel, self.bot_user_id)
        rec = self._create_message(
            channel_id=int(channel["id"]), author_id=self.bot_user_id, body=req.json or {}, files=req.files
        )
        if reopen:
            await self._reopen_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.payload

    async def _r_get_message(self, req: _Request) -> Any:
        return self._read_over_rest(self._message(int(req.params["channel_id"]), int(req.params["message_id"])).payload)

    def _read_over_rest(self, message: dict[str, Any]) -> dict[str, Any]:
        """REST blanks content as the gateway does, by the app's switch rather than a session's intents."""
        if self.message_content_enabled:
            return message
        bot = str(self.bot_user_id)
        if message.get("guild_id") is None or message["author"]["id"] == bot:
            return message
        if any(u["id"] == bot for u in message.get("mentions", [])):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    async def _r_edit(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if not rec.by_bot:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._check_not_archived(rec.channel_id)
        self._edit_message(rec, req.json or {}, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", rec)
        return rec.payload

    async def _r_delete(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if not rec.by_bot:
            self._require(P(manage_messages=True).value, self._channel(rec.channel_id))
        self._check_not_archived(rec.channel_id)
        await self._delete_message(rec)

    async def _r_react(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        if self._channel(rec.channel_id).get("guild_id") is not None:
            self._require(P(add_reactions=True, read_message_history=True).value, self._channel(rec.channel_id))
        self._check_not_archived(rec.channel_id)
        emoji = req.params["emoji"]
        if (emoji, self.bot_user_id) not in rec.reactions:
            rec.reactions.append((emoji, self.bot_user_id))
            custom = re.fullmatch(r"(?:a?:)?([^:]+):(\d+)", emoji)  # "name:id", as discord.py sends custom emoji
            name, emoji_id = custom.groups() if custom else (emoji, None)
            data: dict[str, Any] = {
                "user_id": str(self.bot_user_id),
                "channel_id": str(rec.channel_id),
                "message_id": str(rec.id),
                "message_author_id": str(rec.author_id),
                "emoji": {"id": emoji_id, "name": name},
                "burst": False,
                "burst_colors": [],
                "type": 0,
            }
            in_guild = rec.payload.get("guild_id") is not None
            if in_guild:
                data["guild_id"] = rec.payload["guild_id"]
                data["member"] = self.members[self.bot_user_id]
            await self.dispatch(
                "MESSAGE_REACTION_ADD", data, intent=GUILD_MESSAGE_REACTIONS if in_guild else DIRECT_MESSAGE_REACTIONS
            )

    async def _r_unreact(self, req: _Request) -> Any:
        rec = self._message(int(req.params["channel_id"]), int(req.params["message_id"]))
        with contextlib.suppress(ValueError):
            rec.reactions.remove((req.params["emoji"], self.bot_user_id))

    async def _r_typing(self, req: _Request) -> Any:
        channel = self._channel(int(req.params["channel_id"]))
        self._require_send(channel)
