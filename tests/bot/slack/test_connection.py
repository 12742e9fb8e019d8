"""Docent stays on Slack: its Socket Mode connection survives Slack's connection refreshes and network drops, and
/healthz says whether it is up (slack_sdk's own ``is_connected``). The real slack_sdk client against the fake's
websocket."""

from __future__ import annotations

from functools import partial
from typing import Any

import aiohttp
import pytest

from bot.__main__ import _health
from bot.ops import OpsServer
from rag.settings import OpsSettings
from tests.bot.slack.harness import MEMBER
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration


async def test_docent_answers_after_slack_refreshes_the_connection_and_after_a_drop(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    health = partial(_health, h.services, {"slack": h.connected})  # as the bot wires it
    async with OpsServer(OpsSettings(port=0), h.services.metrics, health) as ops, aiohttp.ClientSession() as http:

        async def healthz() -> tuple[int, dict[str, Any]]:
            async with http.get(f"http://127.0.0.1:{ops.port}/healthz") as response:
                return response.status, await response.json()

        status, state = await healthz()
        assert status == 200 and state["slack_ready"], state
        opened = h.slack.connections
        await h.slack.disconnect()  # Slack's refresh: a new connection first, then the old one goes
        await h.slack.wait_connected(5, connections=opened + 1)
        refreshed = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
        await h.final(refreshed.payload["event"]["ts"])

        h.slack.drop()

        async def down() -> bool:
            return not await h.connected()

        await h.until_async(down, timeout=10)
        status, state = await healthz()
        assert status == 503 and state["slack_ready"] is False, state
        await h.slack.wait_connected(30, connections=opened + 2)
        status, state = await healthz()
        assert status == 200 and state["slack_ready"], state
        dropped = await h.slack.mention("C1", MEMBER, "<@UBOT> what is IVF_FLAT?")
        await h.final(dropped.payload["event"]["ts"])
