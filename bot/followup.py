"""After an answer, in its thread (issue 24): who speaks there, and the one "Did this solve it?".

``ThreadWatch``: the platforms report every message and reaction a person leaves in a thread (or on a message of
it); the threads where this process recorded a question are watched. Another person's word where Docent refused or
handed off is kept (``FeedbackStore.person_replied``: people took the question over, ``rag.resolution``); the
asker's word settles their follow-up. Reporting costs the platform no wait: what is kept is written by an owned
task, so a message is handled exactly as soon as before. The watch is memory (bounded), so threads from before a
restart are not watched.

``FollowUps``: an owned background task that, every ``CHECK_EVERY_S``, takes the follow-ups due — a channel's
``followup_after_s`` after an answer to a new question in a support channel, with no word from its asker (a vote,
a solved mark, a reply, a reaction) — claims each in SQLite, so it is asked once even across restarts, and has its
platform post it with two buttons: "This solved it" and "Not yet", which go down the answer's own solved and vote
paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol

from bot.bounded import BoundedMap
from rag.feedback import DueFollowUp, FeedbackStore

logger = logging.getLogger(__name__)

QUESTION = "Did this solve it?"
SOLVED_LABEL = "This solved it"
NOT_YET_LABEL = "Not yet"
NOT_YET_THANKS = "Thanks for saying so: someone can pick it up here."
CHECK_EVERY_S = 60.0
MAX_THREADS = 5000


class Poster(Protocol):
    """A platform's way to post a follow-up in its thread (raises when it cannot; it is not retried)."""

    async def post_followup(self, due: DueFollowUp) -> None: ...


Key = str | int | None
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class ThreadWatch:
    """Threads (platform, thread key) with the people who asked in them, and each question's messages (so a
    reaction on the answer, or a reply to it, finds its thread)."""

    def __init__(self, feedback: FeedbackStore, spawn: Spawn, max_threads: int = MAX_THREADS) -> None:
        """``spawn`` runs a write as an owned task (finished, not cancelled, on close)."""
        self._feedback = feedback
        self._spawn = spawn
        self._writing: set[asyncio.Task[None]] = set()
        self._askers: BoundedMap[tuple[str, str], dict[str, bool]] = BoundedMap(max_threads)
        self._threads_of: BoundedMap[tuple[str, str], str] = BoundedMap(max_threads * 4)
        self._heard: BoundedMap[tuple[str, str, str], None] = BoundedMap(max_threads * 4)

    def watch(
        self, platform: str, thread: str, asker: int | str, *, needs_person: bool, messages: Sequence[Key] = ()
    ) -> None:
        """``asker`` asked in ``thread`` (``needs_person``: Docent refused or handed it off); ``messages`` carry
        the answer. A person's later question in the same thread does not change what their first one needs."""
        askers = self._askers.get((platform, thread)) or {}
        askers.setdefault(str(asker), needs_person)
        self._askers[(platform, thread)] = askers
        for message in messages:
            if message is not None:
                self._threads_of[(platform, str(message))] = thread

    def thread_of(self, platform: str, key: Key) -> str | None:
        """The thread a message (an answer) belongs to, or that ``key`` is; None when not watched."""
        if key is None:
            return None
        if (platform, str(key)) in self._askers:
            return str(key)
        return self._threads_of.get((platform, str(key)))

    def said(self, platform: str, author: int | str, keys: Iterable[Key]) -> None:
        """A person wrote in a thread, or replied to a message (``keys``: the thread, the message replied to)."""
        self._heard_from(platform, author, keys, reaction=False)

    def reacted(self, platform: str, user: int | str, keys: Iterable[Key]) -> None:
        """A person reacted to a message (``keys``: the message, its thread when known)."""
        self._heard_from(platform, user, keys, reaction=True)

    async def written(self) -> None:
        """Wait for what was heard to be written (reports and tests read after this)."""
        await asyncio.gather(*list(self._writing), return_exceptions=True)

    def _heard_from(self, platform: str, person: int | str, keys: Iterable[Key], *, reaction: bool) -> None:
        who = str(person)
        for thread in dict.fromkeys(t for t in (self.thread_of(platform, k) for k in keys) if t is not None):
            askers = self._askers.get((platform, thread)) or {}
            asked = who in askers
            if not asked and (reaction or not any(askers.values())):
                continue  # a reaction is no reply; an answered question needs no one
            if self._heard.first_time((platform, thread, who), None):
                task = self._spawn(self._write(platform, thread, person, asked=asked))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)

    async def _write(self, platform: str, thread: str, person: int | str, *, asked: bool) -> None:
        try:
            if asked:
                await self._feedback.asker_answered(platform, thread, person)
            else:
                await self._feedback.person_replied(platform, thread, person)
        except Exception:
            logger.warning("could not record a reply in %s thread %s", platform, thread, exc_info=True)


class FollowUps:
    """The follow-ups' schedule and the task that posts them; ``clock`` is the time they are due by (tests set
    it instead of waiting)."""

    def __init__(
        self, feedback: FeedbackStore, *, clock: Callable[[], float] = time.time, every_s: float = CHECK_EVERY_S
    ) -> None:
        self._feedback = feedback
        self.clock = clock
        self._every_s = every_s
        self._posters: dict[str, Poster] = {}

    def register(self, platform: str, poster: Poster) -> None:
        """A platform that runs posts its follow-ups; one not running keeps them until it does."""
        self._posters[platform] = poster

    def unregister(self, platform: str) -> None:
        self._posters.pop(platform, None)

    async def schedule(self, answer_id: str, platform: str, channel: str, thread: str, after_s: float) -> None:
        """Ask in ``thread`` ``after_s`` from now, unless its asker answers first (one per thread, ever)."""
        await self._feedback.schedule_followup(
            answer_id, platform=platform, channel=channel, thread=thread, due_at=self.clock() + after_s
        )

    async def tick(self) -> int:
        """Post the follow-ups due now on the running platforms; returns how many were posted."""
        if not self._posters:
            return 0
        posted = 0
        for due in await self._feedback.due_followups(tuple(self._posters), now=self.clock()):
            poster = self._posters.get(due.platform)
            if poster is None or not await self._feedback.claim_followup(due.answer_id):
                continue  # its platform stopped meanwhile, or another process took it
            try:
                await poster.post_followup(due)
            except Exception as exc:  # claimed: never asked again, rather than asked twice
                logger.warning("%s follow-up in thread %s not posted: %s", due.platform, due.thread, exc)
                continue
            posted += 1
            logger.info("%s follow-up asked in thread %s", due.platform, due.thread)
        return posted

    async def run(self) -> None:
        """The owned task: a tick every ``every_s``; a failing tick is logged and the next one tried."""
        while True:
            try:
                await self.tick()
            except Exception:
                logger.warning("follow-ups could not be checked", exc_info=True)
            await asyncio.sleep(self._every_s)
