"""Interactions: built as Discord sends them (commands, autocomplete, message commands and components, carrying the
member's and the app's permissions), and their REST side: one callback within ``interaction_deadline``, followups,
and the webhook routes on the original response and followups while the token lives (``token_lifetime``)."""

from __future__ import annotations

import secrets
from typing import Any

from loopback.discord.errors import DiscordError, _unknown
from loopback.discord.rest_commands import Commands
from loopback.discord.rest_messages import Messages
from loopback.discord.state import (
    EPHEMERAL,
    LOADING,
    CallbackRecord,
    InteractionRecord,
    MessageRecord,
    _Request,
)

TOKEN_LIFETIME_S = 15 * 60.0  # an interaction token's followups and edits work this long after the interaction


class Interactions(Messages, Commands):
    """Interactions, and the routes of their tokens."""

    interaction_deadline: float | None
    token_lifetime: float | None

    def _new_interaction(
        self, itype: int, *, user_id: int, channel_id: int, guild: bool, data: dict[str, Any]
    ) -> InteractionRecord:
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}: call add_member first")
        iid = self._next_id()
        token = f"itoken-{iid}-{secrets.token_hex(6)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "app_permissions": str(self.bot_permissions_in(channel_id) if guild else self.bot_permissions),
        }
        if guild:
            channel = self._channel(channel_id)
            member = {**self.members[user_id], "permissions": str(self.permissions_in(user_id, channel_id))}
            payload.update(
                guild_id=str(self.guild_id),
                guild_locale="en-US",
                guild={"id": str(self.guild_id), "locale": "en-US", "features": []},
                member=member,
                channel={**channel, "permissions": member["permissions"]},
                channel_id=channel["id"],
                context=0,
                authorizing_integration_owners={"0": str(self.guild_id)},
            )
        else:
            channel = self._dm_channel(user_id)
            channel_id = int(channel["id"])
            payload.update(
                user=self.users[user_id],
                channel=channel,
                channel_id=channel["id"],
                context=1,
                authorizing_integration_owners={"0": str(self.guild_id)},
            )
        return InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            user_id=user_id,
            channel_id=channel_id,
            guild_id=self.guild_id if guild else None,
            payload=payload,
            created_at=self.now(),
            _fake=self,
        )

    async def _command_interaction(
        self,
        itype: int,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        user_id: int,
        channel_id: int | None,
        guild: bool,
        *,
        focused: str | None,
    ) -> InteractionRecord:
        await self._ensure_connected()
        root, *subs = name.split()
        command = self._find_command(root, guild)
        resolved: dict[str, dict[str, Any]] = {}
        defs = command.get("options") if command else None
        if isinstance(options, list):
            leaf = options
        else:
            for sub in subs:  # descend to the leaf's option definitions
                sub_def = next((o for o in defs or [] if o["name"] == sub), None)
                defs = sub_def.get("options") if sub_def else None
            leaf = self._build_options(defs, options or {}, resolved, focused)
        for sub in reversed(subs):
            kind = 1 if sub == subs[-1] else 2
            leaf = [{"name": sub, "type": kind, "options": leaf}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._next_id()),
            "name": root,
            "type": 1,
            "options": leaf,
        }
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        ix = self._new_interaction(
            itype, user_id=user_id, channel_id=channel_id or self.channel_id, guild=guild, data=data
        )
        ix.name = name
        await self._dispatch_interaction(ix)
        return ix

    def _build_options(
        self,
        defs: list[dict[str, Any]] | None,
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        focused: str | None,
    ) -> list[dict[str, Any]]:
        out = []
        for name, value in values.items():
            definition = next((o for o in defs or [] if o["name"] == name), None)
            otype = definition["type"] if definition else _infer_option_type(value)
            if name == focused:
                out.append({"name": name, "type": otype, "value": str(value), "focused": True})
                continue
            if otype in (6, 7, 8, 9):
                value = self._resolve(otype, int(value), resolved)
            out.append({"name": name, "type": otype, "value": value})
        return out

    def _resolve(self, otype: int, entity_id: int, resolved: dict[str, dict[str, Any]]) -> str:
        key = str(entity_id)
        if otype in (6, 9) and entity_id in self.users:
            resolved.setdefault("users", {})[key] = self.users[entity_id]
            member = self._partial_member(entity_id)
            if member is not None:
                member["permissions"] = str(self.permissions_of(entity_id))
                resolved.setdefault("members", {})[key] = member
        elif otype == 7 and entity_id in self.channels:
            channel = self.channels[entity_id]
            resolved.setdefault("channels", {})[key] = {**channel, "permissions": str(self.bot_permissions)}
        elif otype in (8, 9) and entity_id in self.roles:
            resolved.setdefault("roles", {})[key] = self.roles[entity_id]
        else:
            raise KeyError(f"cannot resolve option value {entity_id} for option type {otype}")
        return key

    def _interaction_for(self, token: str, interaction_or_app_id: int, *, webhook: bool) -> InteractionRecord:
        ix = self.interactions.get(token)
        expected = (self.application_id if webhook else ix.id) if ix else None
        if ix is None or interaction_or_app_id != expected:
            raise _unknown("Webhook", 10015) if webhook else _unknown("interaction", 10062)
        if webhook and self.token_lifetime is not None and self.now() - ix.created_at > self.token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")  # followups and edits: the token expired
        return ix

    # ---------------------------------------------------------------------------------------------------- routes

    async def _r_callback(self, req: _Request) -> Any:
        ix = self._interaction_for(req.params["token"], int(req.params["interaction_id"]), webhook=False)
        now = self.now()
        if self.interaction_deadline is not None and now - ix.created_at > self.interaction_deadline:
            raise _unknown("interaction", 10062)
        if ix.callback is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = req.json or {}
        cb_type, data = int(body["type"]), body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        rec: MessageRecord | None = None
        if cb_type in (4, 5):
            rec = self._create_message(
                channel_id=ix.channel_id,
                author_id=self.bot_user_id,
                body=data if cb_type == 4 else {"flags": data.get("flags", 0)},
                interaction=ix,
                files=req.files,
                extra_flags=LOADING if cb_type == 5 else 0,
                validate=cb_type == 4,
            )
            ix.original_message_id = rec.id
        elif cb_type in (6, 7):
            if ix.message_id is None:
                raise DiscordError(400, 40004, "Interaction response type is only valid for component interactions")
            rec = self._messages[ix.message_id]
            ix.original_message_id = rec.id
            if cb_type == 7:
                self._edit_message(rec, data, req.files)
        elif (cb_type == 8 and ix.type != 4) or cb_type not in (1, 8, 9):
            raise DiscordError(400, 50035, "Invalid Form Body")
        ix.callback = CallbackRecord(cb_type, now, data, ephemeral)
        if rec is not None:
            await self._dispatch_message("MESSAGE_CREATE" if cb_type in (4, 5) else "MESSAGE_UPDATE", rec)
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return None
        result: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": cb_type == 5,
                "response_message_ephemeral": bool(rec.ephemeral) if rec else ephemeral,
            }
        }
        if rec is not None:
            result["interaction"]["response_message_id"] = str(rec.id)
            result["resource"] = {"type": cb_type, "message": rec.payload}
        return result

    async def _r_followup(self, req: _Request) -> Any:
        ix = self._interaction_for(req.params["token"], int(req.params["app_id"]), webhook=True)
        if ix.callback is None:
            raise _unknown("Webhook", 10015)
        body = req.json or {}
        original = ix.original
        if ix.callback.type == 5 and original is not None and original.loading:
            # Discord: the first followup after a "thinking" defer replaces the loading message.
            self._edit_message(original, {**body, "flags": None}, req.files)
            ix.followup_ids.append(original.id)
            await self._dispatch_message("MESSAGE_UPDATE", original)
            rec = original
        else:
            rec = self._create_message(
                channel_id=ix.channel_id, author_id=self.bot_user_id, body=body, interaction=ix, files=req.files
            )
            ix.followup_ids.append(rec.id)
            await self._dispatch_message("MESSAGE_CREATE", rec)
        return rec.payload if req.query.get("wait", "").lower() in ("1", "true") else None

    def _webhook_message(self, req: _Request) -> tuple[InteractionRecord, MessageRecord]:
        ix = self._interaction_for(req.params["token"], int(req.params["app_id"]), webhook=True)
        target = req.params["message_id"]
        mid = ix.original_message_id if target == "@original" else int(target)
        if mid is None or (mid != ix.original_message_id and mid not in ix.followup_ids):
            raise _unknown("Message", 10008)
        rec = self._messages[mid]
        if rec.deleted:
            raise _unknown("Message", 10008)
        return ix, rec

    async def _r_webhook_get(self, req: _Request) -> Any:
        return self._webhook_message(req)[1].payload

    async def _r_webhook_edit(self, req: _Request) -> Any:
        _, rec = self._webhook_message(req)
        self._edit_message(rec, req.json or {}, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", rec)
        return rec.payload

    async def _r_webhook_delete(self, req: _Request) -> Any:
        _, rec = self._webhook_message(req)
        await self._delete_message(rec)


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
