"""Who may ask now: a per-user cooldown, a per-server (or per-workspace) rate, a global concurrency limit and a
bounded queue. One instance serves every platform in the process: they share one engine. Users and spaces are any
hashable keys, so Discord's int ids and Slack's ``(team, user)`` strings never collide."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass

from rag.errors import Overloaded

GUILD_WINDOW_S = 60.0


@dataclass(frozen=True)
class Refusal:
    """Why a question was not taken; ``notify`` is False when the asker was already told in this window."""

    message: str
    notify: bool


class Admission:
    def __init__(
        self,
        *,
        concurrency: int,
        max_queue: int,
        cooldown_s: float,
        guild_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._last_question: dict[Hashable, float] = {}
        self._guild_per_minute = guild_per_minute
        self._guild_recent: dict[Hashable, deque[float]] = {}
        self._user_notified: dict[Hashable, float] = {}  # user -> start of the cooldown they were last told about
        # (guild, user) -> when they were told the server is full
        self._guild_notified: dict[tuple[Hashable, Hashable], float] = {}
        self.waiting = 0
        self.running = 0
        self.peak_waiting = 0

    def refusal(self, user_id: Hashable, guild_id: Hashable | None = None, *, space: str = "server") -> Refusal | None:
        """Why this question can't be taken now, or None: admitted and counted.

        A refusal carries ``notify`` only the first time in its window, so someone who keeps asking during a
        cooldown gets one notice, not one reply per message.
        """
        now = self._clock()
        last = self._last_question.get(user_id)
        if last is not None and now - last < self._cooldown_s:
            notify = self._user_notified.get(user_id) != last  # once per cooldown, which starts at ``last``
            self._user_notified[user_id] = last
            return Refusal(f"⏳ Please wait {self._cooldown_s - (now - last):.0f}s before asking again.", notify)
        recent = self._guild_recent.setdefault(guild_id, deque()) if guild_id and self._guild_per_minute else None
        if recent is not None and guild_id is not None:
            while recent and now - recent[0] >= GUILD_WINDOW_S:
                recent.popleft()
            if len(recent) >= self._guild_per_minute:
                # One notice per person per window: a spammer is told once, and so is everyone else who asks.
                told = self._guild_notified.get((guild_id, user_id))
                notify = told is None or now - told >= GUILD_WINDOW_S
                if notify:
                    self._guild_notified[(guild_id, user_id)] = now
                return Refusal(
                    f"⏳ This {space} has asked {self._guild_per_minute} questions in the last minute; "
                    f"please try again in {GUILD_WINDOW_S - (now - recent[0]):.0f}s.",
                    notify,
                )
            recent.append(now)
        self._last_question[user_id] = now
        if len(self._last_question) > 10_000:  # forget users whose cooldown ended long ago
            horizon = now - self._cooldown_s
            self._last_question = {u: t for u, t in self._last_question.items() if t > horizon}
            self._user_notified = {u: t for u, t in self._user_notified.items() if u in self._last_question}
        if len(self._guild_notified) > 10_000:
            self._guild_notified = {k: t for k, t in self._guild_notified.items() if now - t < GUILD_WINDOW_S}
        return None

    @contextlib.asynccontextmanager
    async def slot(self, queued: Callable[[int], Awaitable[None]] | None = None) -> AsyncIterator[None]:
        """Wait for a free answering slot (Overloaded if too many are already waiting). ``queued`` is told the
        asker's place in the queue when there is a wait, decided at the moment the slot is asked for."""
        if self._slots.locked() and self.waiting >= self._max_queue:
            raise Overloaded(f"queue full ({self.waiting} waiting)")
        if self._slots.locked() and queued is not None:
            await queued(self.waiting + 1)
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
