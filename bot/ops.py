"""Health, Prometheus metrics and the dashboard on a local port, for supervisors, scrapers and admins.

The details (platforms, queue, the last index run with its source ids and warnings) and the metrics are for the
operator: whoever sends ``ops.token`` as a bearer token, or, when no token is set, anyone who can reach a loopback
address. Everyone else gets a bare liveness answer, so a container's port published with ``docker run -p`` tells
the world only whether the bot is up. The dashboard (``bot.dashboard``) is served under /dashboard only when
``ops.dashboard_token`` is set, and only to whoever holds that token.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.dashboard import PREFIX, Dashboard, DashboardData
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
    Prometheus, for the operator only (401 otherwise). ``/dashboard``: the dashboard's pages over ``dashboard``'s
    data, when ``ops.dashboard_token`` is set (404 otherwise)."""

    def __init__(
        self,
        settings: OpsSettings,
        metrics: Metrics,
        health: Health,
        *,
        dashboard: DashboardData | None = None,
        clock: Callable[[], float] = time.time,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``refresh`` brings the metrics read from a store up to date before each scrape."""
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._dashboard: Dashboard | None = None  # made on entering: its templates are read and compiled then
        self._dashboard_data = dashboard
        self._clock = clock
        self._dashboard_asked = False  # the hint is logged at the first request for the dashboard while it is off
        self._refresh = refresh
        self._token = secret_text(settings.token).encode()
        self._loopback = is_loopback(settings.host)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> OpsServer:
        if self._dashboard_data is not None and secret_text(self._settings.dashboard_token):
            self._dashboard = await asyncio.to_thread(
                Dashboard, self._settings, self._dashboard_data, clock=self._clock
            )
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        if self._dashboard is not None:
            app.add_subapp(PREFIX, self._dashboard.app())
        elif self._dashboard_data is not None:
            app.router.add_route("*", PREFIX, self._no_dashboard)
            app.router.add_route("*", PREFIX + "/{rest:.*}", self._no_dashboard)
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
        if self._dashboard is not None:
            logger.info("dashboard on http://%s:%d%s/", self._settings.host, self.port, PREFIX)
            if not self._loopback:
                logger.warning(
                    "the dashboard is served beyond loopback (%s) over plain HTTP: its token and pages cross the "
                    "network in clear; keep ops.host on 127.0.0.1 or put a TLS proxy in front",
                    self._settings.host,
                )
        elif self._dashboard_data is not None:
            logger.info("no dashboard: set ops.dashboard_token (DOCENT_OPS__DASHBOARD_TOKEN) to serve it on /dashboard")
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

    async def _no_dashboard(self, request: web.Request) -> web.Response:
        if not self._dashboard_asked:
            self._dashboard_asked = True
            logger.info("%s was asked for, but the dashboard is off: set ops.dashboard_token to serve it", PREFIX)
        raise web.HTTPNotFound()

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
