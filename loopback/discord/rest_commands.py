"""Application commands: syncing them (all at once with ``PUT``, or one with ``POST``), validated as Discord
validates them (400 50035 naming the field), and listing them."""

from __future__ import annotations

import re
from typing import Any

from loopback.discord.core import Core
from loopback.discord.errors import DiscordError
from loopback.discord.state import _Request

# Application commands, as Discord validates them when they are synced.
COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097f\u0e00-\u0e7f]{1,32}$")  # letters, numbers, Deva, Thai; no spaces
MAX_OPTIONS = 25
MAX_CHOICES = 25
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2


class Commands(Core):
    """The synced commands, by scope (a guild's id, or None for global ones), and their routes."""

    _commands: dict[int | None, dict[tuple[str, int], dict[str, Any]]]

    def synced_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Application commands the bot registered globally (None) or for a guild."""
        return list(self._commands.get(guild_id, {}).values())

    def _find_command(self, name: str, guild: bool, ctype_wanted: int = 1) -> dict[str, Any] | None:
        scopes: list[int | None] = [self.guild_id, None] if guild else [None]
        for scope in scopes:
            for (cname, ctype), command in self._commands.get(scope, {}).items():
                if cname == name and ctype == ctype_wanted:
                    return command
        return None

    # ---------------------------------------------------------------------------------------------------- routes

    def _command_scope(self, req: _Request) -> int | None:
        if int(req.params["app_id"]) != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = req.params.get("guild_id")
        if guild_id is not None and int(guild_id) != self.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return int(guild_id) if guild_id else None

    def _store_command(self, scope: int | None, body: dict[str, Any], old: dict[tuple[str, int], Any]) -> dict:
        key = (body["name"], int(body.get("type", 1)))
        previous = old.get(key)
        command = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **body,
            "id": previous["id"] if previous else str(self._next_id()),  # Discord keeps ids across re-syncs
            "application_id": str(self.application_id),
            "version": str(self._next_id()),
        }
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    async def _r_get_commands(self, req: _Request) -> Any:
        return self.synced_commands(self._command_scope(req))

    async def _r_put_commands(self, req: _Request) -> Any:
        scope = self._command_scope(req)
        bodies = req.json or []
        errors = {str(i): e for i, body in enumerate(bodies) if (e := _command_errors(body))}
        keys = [(body.get("name"), int(body.get("type", 1))) for body in bodies]
        errors.update(
            {
                str(i): {
                    "name": _field_error(
                        "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
                    )
                }
                for i, key in enumerate(keys)
                if key in keys[:i]
            }
        )
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        old = self._commands.get(scope, {})
        new: dict[tuple[str, int], dict[str, Any]] = {}
        for body in bodies:
            command = self._store_command(scope, body, old)
            new[(command["name"], int(command["type"]))] = command
        self._commands[scope] = new
        return list(new.values())

    async def _r_upsert_command(self, req: _Request) -> Any:
        scope = self._command_scope(req)
        errors = _command_errors(req.json or {})
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        store = self._commands.setdefault(scope, {})
        command = self._store_command(scope, req.json, store)
        store[(command["name"], int(command["type"]))] = command
        return command


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _bad_name(name: Any, *, slash: bool) -> dict[str, Any] | None:
    """Slash commands and options: lowercase, 1-32 of letters, numbers, - _ '. Context menus: any 1-32 characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if slash and (not COMMAND_NAME.match(name) or name != name.lower()):
        return _field_error("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    return None


def _bad_description(description: Any) -> dict[str, Any] | None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return None


def _command_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's checks of one command payload; ``{}`` when it is accepted, else the ``errors`` of a 50035."""
    slash = int(body.get("type", 1)) == 1
    errors: dict[str, Any] = {}
    if (bad := _bad_name(body.get("name"), slash=slash)) is not None:
        errors["name"] = bad
    if slash:
        if (bad := _bad_description(body.get("description"))) is not None:
            errors["description"] = bad
        if options := _options_errors(body.get("options") or []):
            errors["options"] = options
    else:
        if body.get("description"):
            errors["description"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 0 or fewer in length.")
        if body.get("options"):
            errors["options"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 0 or fewer in length.")
    return errors


def _options_errors(options: list[dict[str, Any]]) -> dict[str, Any]:
    if len(options) > MAX_OPTIONS:
        return _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    optional_seen = False
    for i, option in enumerate(options):
        own: dict[str, Any] = {}
        if (bad := _bad_name(option.get("name"), slash=True)) is not None:
            own["name"] = bad
        elif option["name"] in seen:
            own["name"] = _field_error("APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique")
        seen.add(str(option.get("name")))
        if (bad := _bad_description(option.get("description"))) is not None:
            own["description"] = bad
        if int(option.get("type", 3)) in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if nested := _options_errors(option.get("options") or []):
                own["options"] = nested
        elif option.get("required"):
            if optional_seen:
                own["required"] = _field_error(
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            own["choices"] = _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
        else:
            bad_choices = {
                str(j): {"name": _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")}
                for j, choice in enumerate(choices)
                if not 1 <= len(str(choice.get("name") or "")) <= 100
            }
            if bad_choices:
                own["choices"] = bad_choices
        if own:
            errors[str(i)] = own
    return errors
