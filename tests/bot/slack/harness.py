"""The Slack test harness: the production Slack app (slack-bolt over the shared services) connected to the
loopback fake Slack, with real Milvus Lite and MiniLM retrieval over a two-page docs folder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.services import Services
from bot.slack.render import FOOTER
from loopback.slack import FakeSlack, Posted
from tests.bot.failing_store import FailingStore

DOCS = {
    "hnsw.md": "# HNSW\n\nHNSW builds a graph. `M` is the maximum degree of a node; `efConstruction` sets build "
    "quality.\n",
    "ivf.md": "# IVF_FLAT\n\nIVF_FLAT splits vectors into `nlist` clusters and searches `nprobe` of them.\n",
}
ADMIN, MEMBER, BOB = "UADMIN", "UMEMBER", "UBOB"


Connect = Callable[[], AbstractAsyncContextManager[Callable[[], Awaitable[bool]]]]


class Harness:
    """``connect`` is the production ``bot.slack.app.running`` over ``services``: a new app each time."""

    def __init__(self, slack: FakeSlack, services: Services, store: FailingStore, connect: Connect) -> None:
        self.slack, self.services, self.store = slack, services, store
        self._connect = connect
        self._app = contextlib.AsyncExitStack()
        self.connected: Callable[[], Awaitable[bool]] = _never

    async def start(self) -> None:
        opened = self.slack.connections
        self.connected = await self._app.enter_async_context(self._connect())
        await self.slack.wait_connected(connections=opened + 1)

    async def stop(self) -> None:
        for envelope in list(self.slack.envelopes.values()):  # a late ack into a closed socket logs into later tests
            await self.slack.wait_acked(envelope)
        await self._app.aclose()

    async def restart(self) -> None:
        """Docent restarts: the app stops and a new one (nothing remembered in memory) connects, over the same
        stores."""
        await self.stop()
        await self.start()

    async def until(self, found: Callable[[], Any], timeout: float = 60) -> Any:
        """Wait until ``found()`` returns something truthy, waking on every message the bot writes."""

        async def poll() -> Any:
            while True:
                change = asyncio.ensure_future(self.slack.changed())
                value = found()
                if value:
                    change.cancel()
                    return value
                await asyncio.wait({change}, timeout=0.5)

        return await asyncio.wait_for(poll(), timeout)

    async def until_async(self, found: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
        """``until`` for a check that must await (a store read)."""

        async def poll() -> Any:
            while True:
                change = asyncio.ensure_future(self.slack.changed())
                value = await found()
                if value:
                    change.cancel()
                    return value
                await asyncio.wait({change}, timeout=0.5)

        return await asyncio.wait_for(poll(), timeout)

    def answer_in(self, thread: str, after: int = 0) -> Posted | None:
        """The finished answer (it has the footer) in ``thread``, the n-th one if ``after``."""
        done = [m for m in self.slack.messages.values() if m.thread_ts == thread and _has_footer(m)]
        return done[after] if len(done) > after else None

    async def final(self, thread: str, after: int = 0, timeout: float = 90) -> Posted:
        result: Posted = await self.until(lambda: self.answer_in(thread, after), timeout)
        return result


def _has_footer(message: Posted) -> bool:
    return any(b.get("type") == "context" and FOOTER in str(b) for b in message.blocks)


def texts(message: Posted) -> str:
    return "\n".join(b["text"]["text"] for b in message.blocks if b.get("type") == "section")


async def _never() -> bool:
    return False
