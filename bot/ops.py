"""Health and Prometheus metrics on a local port, for supervisors and dashboards."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rag.metrics import Metrics
from rag.settings import OpsSettings

logger = logging.getLogger(__name__)
Health = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]  # async when a check must ask a client


class OpsServer:
    """``GET /healthz``: 200 when healthy, 503 otherwise (also while the engine starts: ``"status": "starting"``),
    with the details as JSON. ``GET /metrics``: Prometheus."""

    def __init__(self, settings: OpsSettings, metrics: Metrics, health: Health) -> None:
        self._settings = settings
        self._metrics = metrics
        self._health = health
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
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        state = self._health()
        if inspect.isawaitable(state):
            state = await state
        status = 200 if state.get("status") == "ok" else 503
        return web.Response(status=status, text=json.dumps(state), content_type="application/json")

    async def _metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
