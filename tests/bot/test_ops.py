"""The health and metrics server over real HTTP: details and metrics for whoever holds the token (or, without one,
only on loopback); a bare liveness answer for everyone else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.ops import OpsServer
from rag.metrics import Metrics
from rag.settings import OpsSettings

DETAILS = {"status": "ok", "discord_ready": True, "queue": 3, "last_index_run": {"warnings": ["docs: 8 of 12 kept"]}}


class Health:
    """What the bot would report; a test flips it to unhealthy."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = dict(DETAILS)

    def __call__(self) -> dict[str, Any]:
        return self.state


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, ops: OpsServer, path: str, token: str = "") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"http://127.0.0.1:{ops.port}{path}", headers=headers) as response:
        return response.status, await response.text()


async def test_bound_beyond_loopback_without_a_token_it_answers_liveness_only(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    health = Health()
    with caplog.at_level(logging.WARNING, logger="bot.ops"):
        async with OpsServer(OpsSettings(host="0.0.0.0", port=0), Metrics(), health) as ops:
            assert await get(http, ops, "/healthz") == (200, '{"status": "ok"}')
            status, _ = await get(http, ops, "/metrics")
            assert status == 401
            health.state = {**DETAILS, "status": "unhealthy"}
            assert await get(http, ops, "/healthz") == (503, '{"status": "unhealthy"}')
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ops.token" in warnings[0], warnings


async def test_with_a_token_details_and_metrics_need_it_wherever_it_listens(http: aiohttp.ClientSession) -> None:
    for host in ("0.0.0.0", "127.0.0.1"):
        settings = OpsSettings(host=host, port=0, token="s3cret-token")
        async with OpsServer(settings, Metrics(), Health()) as ops:
            for token in ("", "wrong"):
                assert await get(http, ops, "/healthz", token) == (200, '{"status": "ok"}'), host
                status, _ = await get(http, ops, "/metrics", token)
                assert status == 401, host
            status, body = await get(http, ops, "/healthz", "s3cret-token")
            assert status == 200 and "discord_ready" in body and "8 of 12 kept" in body
            status, body = await get(http, ops, "/metrics", "s3cret-token")
            assert status == 200 and "docent_questions_total" in body


async def test_on_loopback_without_a_token_it_serves_everything(http: aiohttp.ClientSession) -> None:
    """Only processes on this machine can reach it: the default, as before."""
    async with OpsServer(OpsSettings(port=0), Metrics(), Health()) as ops:
        status, body = await get(http, ops, "/healthz")
        assert status == 200 and "discord_ready" in body
        status, body = await get(http, ops, "/metrics")
        assert status == 200 and "docent_questions_total" in body


async def test_metrics_read_the_resolution_from_the_store_at_each_scrape(http: aiohttp.ClientSession, tmp_path) -> None:
    from rag.feedback import FeedbackStore
    from rag.models import Answer

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    metrics = Metrics()

    async def refresh() -> None:
        metrics.resolution(await store.resolution())

    line = 'docent_resolution_questions{channel="C1",platform="slack",space="T1",state="%s"} %s'
    async with OpsServer(OpsSettings(port=0), metrics, Health(), refresh=refresh) as ops:
        await store.record_answer(
            Answer("q", "a", (), False, (), "r1"), "U1", guild_id="T1", platform="slack", channel="C1"
        )
        _, body = await get(http, ops, "/metrics")
        assert line % ("unresolved", "1.0") in body and line % ("resolved", "0.0") in body
        await store.vote("r1", "U1", True, guild_id="T1", platform="slack")
        _, body = await get(http, ops, "/metrics")
        assert line % ("resolved", "1.0") in body and line % ("unresolved", "0.0") in body, "as the store says now"
        store.close()  # a refresh that fails leaves the rest of the metrics served
        status, body = await get(http, ops, "/metrics")
        assert status == 200 and "docent_questions_total" in body
