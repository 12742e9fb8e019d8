"""Who may ask now: a per-user cooldown, a global concurrency limit and a bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from rag.errors import Overloaded


class Admission:
    def __init__(
        self, *, concurrency: int, max_queue: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._last_question: dict[int, float] = {}
        self.waiting = 0
        self.running = 0
        self.peak_waiting = 0

    def cooldown_left(self, user_id: int) -> float:
        """Seconds until this user may ask again; 0 admits the question and starts their cooldown."""
        now = self._clock()
        last = self._last_question.get(user_id)
        if last is not None and now - last < self._cooldown_s:
            return self._cooldown_s - (now - last)
        self._last_question[user_id] = now
        if len(self._last_question) > 10_000:  # forget users whose cooldown ended long ago
            horizon = now - self._cooldown_s
            self._last_question = {u: t for u, t in self._last_question.items() if t > horizon}
        return 0.0

    @property
    def must_wait(self) -> bool:
        return self._slots.locked()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free answering slot (Overloaded if too many are already waiting)."""
        if self._slots.locked() and self.waiting >= self._max_queue:
            raise Overloaded(f"queue full ({self.waiting} waiting)")
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
