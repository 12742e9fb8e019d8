"""Health and Prometheus metrics on a local port, for supervisors and dashboards.

The details (platforms, queue, the last index run with its source ids and warnings) and the metrics are for the
operator: whoever sends ``ops.token`` as a bearer token, or, when no token is set, anyone who can reach a loopback
address. Everyone else gets a bare liveness answer, so a container's port published with ``docker run -p`` tells
the world only whether the bot is up.
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rag.metrics import Metrics
from rag.settings import OpsSettings, secret_text

logger = logging.getLogger(__name__)
Health = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]  # async when a check must ask a client


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server on this machine ("" and names other than localhost: no)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class OpsServer:
    """``GET /healthz``: 200 when healthy, 503 otherwise (also while the engine starts: ``"status": "starting"``),
    with the details as JSON for the operator and ``{"status": …}`` alone for anyone else. ``GET /metrics``:
    Prometheus, for the operator only (401 otherwise)."""

    def __init__(
        self,
        settings: OpsSettings,
        metrics: Metrics,
        health: Health,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``refresh`` brings the metrics read from a store up to date before each scrape."""
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._refresh = refresh
        self._token = secret_text(settings.token).encode()
        self._loopback = is_loopback(settings.host)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> OpsServer:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        logger.info("health and metrics on http://%s:%d/healthz and /metrics", self._settings.host, self.port)
        if not self._token and not self._loopback:
            logger.warning(
                "the health server listens on %s (beyond loopback) and ops.token is unset: /metrics is refused and "
                "/healthz says only the status; set DOCENT_OPS__TOKEN and send it as a bearer token to see them",
                self._settings.host,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _operator(self, request: web.Request) -> bool:
        """The token, when one is set (compared in constant time); without one, only a loopback listener trusts
        whoever reaches it."""
        if not self._token:
            return self._loopback
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)

    async def _healthz(self, request: web.Request) -> web.Response:
        state = self._health()
        if inspect.isawaitable(state):
            state = await state
        status = 200 if state.get("status") == "ok" else 503
        shown = state if self._operator(request) else {"status": state.get("status")}
        return web.Response(status=status, text=json.dumps(shown), content_type="application/json")

    async def _metrics_page(self, request: web.Request) -> web.Response:
        if not self._operator(request):
            return web.Response(
                status=401,
                text="metrics need ops.token, sent as a bearer token\n",
                headers={"WWW-Authenticate": 'Bearer realm="docent"'},
            )
        if self._refresh is not None:
            try:
                await self._refresh()
            except Exception as exc:  # the rest of the metrics are still worth a scrape
                logger.warning("metrics from the feedback store not refreshed: %s", exc)
        return web.Response(body=self._metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
