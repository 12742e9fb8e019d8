"""Fault injection: the next matching REST calls are slowed down and/or answered with an error; a 429 comes as
Discord sends one, with what discord.py needs to treat it as a rate limit."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from loopback.discord.errors import _json


@dataclass
class _Fault:
    method: str
    pattern: str
    status: int | None
    retry_after: float
    delay: float
    remaining: int
    is_global: bool
    body: dict[str, Any] | None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in (method, "*") and fnmatch.fnmatchcase(path, self.pattern)


class Faults:
    """``inject`` and ``rate_limit_once``; the REST front (``rest.Rest``) applies them."""

    _faults: list[_Fault]

    def inject(
        self,
        method: str,
        pattern: str,
        *,
        status: int | None = None,
        delay: float = 0.0,
        retry_after: float = 0.05,
        times: int = 1,
        is_global: bool = False,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Make the next ``times`` matching calls slow (``delay``) and/or fail with ``status``.

        ``pattern`` is an fnmatch pattern over the API path, e.g. ``"/channels/*/messages"``. A 429 carries
        ``retry_after`` and the ``Via`` header discord.py requires before it will treat it as a rate limit.
        """
        self._faults.append(_Fault(method.upper(), pattern, status, retry_after, delay, times, is_global, body))

    def rate_limit_once(self, method: str, pattern: str, *, retry_after: float = 0.05) -> None:
        self.inject(method, pattern, status=429, retry_after=retry_after)


def _fault_response(fault: _Fault) -> web.Response:
    if fault.status == 429:
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": fault.is_global}
        body.update(fault.body or {})
        headers = {
            "Via": "1.1 google",  # discord.py treats a 429 without Via as a Cloudflare ban
            "Retry-After": str(fault.retry_after),
            "X-RateLimit-Scope": "global" if fault.is_global else "user",
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        return _json(body, 429, headers)
    assert fault.status is not None
    return _json(fault.body or {"message": f"injected {fault.status}", "code": 0}, fault.status)
