"""Discord's error answers: a route raises ``DiscordError`` and the bot gets Discord's status and ``{"code",
"message", "errors"}`` body, as discord.py parses it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py parses a body as JSON only if Content-Type is exactly ``application/json`` (no charset)."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class DiscordError(Exception):
    """Raised inside a route to answer with Discord's error body (``{"code", "message"}``)."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _unknown(what: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


def _too_long(field_name: str, limit: int) -> DiscordError:
    err = {"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}
    return DiscordError(400, 50035, "Invalid Form Body", {field_name: {"_errors": [err]}})


def _missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def _form_error(field_name: str, code: str, message: str) -> DiscordError:
    return DiscordError(
        400, 50035, "Invalid Form Body", {field_name: {"_errors": [{"code": code, "message": message}]}}
    )


def _thread_archived() -> DiscordError:
    return DiscordError(400, 50083, "Thread is archived")
