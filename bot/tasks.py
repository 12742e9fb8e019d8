"""Owned background tasks: kept until done, failures logged, cancelled (or, for short work that must not be cut
off, awaited) on close. The services and each front-end own their own set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class OwnedTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._finishing: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str, finish_on_close: bool = False) -> asyncio.Task[None]:
        """Start a task; ``finish_on_close`` ones (recording an answer) are awaited on close, the rest cancelled."""
        task = asyncio.create_task(coro, name=name)
        (self._finishing if finish_on_close else self._tasks).add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._finishing.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def close(self) -> None:
        """Cancel the cancellable, let the rest finish; the task calling this is left alone."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *[t for t in self._finishing if t is not current], return_exceptions=True)
