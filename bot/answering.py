"""One answering flow for every front-end: a request id, the wait while the engine starts, admission, the queue, the
stream with throttled progress, the final answer, its record, the metric and log line, and a failure in words.

A platform only implements ``Reply`` (where the words go) and turns its events into a ``Question``; everything that
decides what happens to a question lives here once, so Discord, Slack and any later front-end cannot drift apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.services import SEARCHING, Place, Services, queued
from rag import logs
from rag.errors import DocentError, Skipped, StartingUp, describe, new_error_id
from rag.models import Answer
from rag.prompt import Turn
from rag.settings import ChannelPolicy

logger = logging.getLogger(__name__)
STARTING = "⏳ I'm starting up: your answer will follow in a moment."


class Reply(Protocol):
    """Where one answer goes. Nothing needs to exist before the first call: a reply may post only when it has
    something to show (a question nobody asked Docent shows nothing until its answer is final)."""

    async def notice(self, text: str) -> None:
        """Best effort: a status line while the answer waits (starting up, the queue, searching)."""
        ...

    async def partial(self, text: str) -> None:
        """Best effort: the model's answer so far (markdown, unescaped)."""
        ...

    async def final(self, answer: Answer) -> Sequence[Hashable]:
        """Must land: the finished answer, rendered for the platform; the ids of the messages that carry it.
        Raises ``Skipped`` if a moderator said not to answer before anything was posted."""
        ...

    async def fail(self, text: str) -> None:
        """Best effort: why there is no answer (a worded failure, or admission's refusal). Before anything was
        posted it is shown to the asker alone where the platform can."""
        ...


@dataclass(frozen=True)
class Question:
    """A question as every platform hands it over.

    ``unasked`` is the (channel, thread) of a question nobody asked Docent, in a support channel: it never gets
    the start-up notice, the admission notice or a failure message. ``quiet`` (auto mode) also keeps every step
    invisible until the answer is sure, and a refusal is recorded, not posted.

    ``channel`` (a thread's parent; None in a direct message) and ``conversation`` (the thread, or the message
    that roots it, that the question belongs to) are recorded with the answer of a question someone asked, so the
    resolution figures (``rag.resolution``) can link the asker's follow-ups and people's replies to it; a question
    nobody asked takes both from ``unasked``.
    """

    text: str
    asker: int | str
    place: Place
    private: bool = False
    history: tuple[Turn, ...] = ()
    thread: tuple[str, ...] = ()
    policy: ChannelPolicy | None = None
    unasked: tuple[str, str] | None = None
    quiet: bool = False
    channel: str | None = None
    conversation: str | None = None

    @property
    def where(self) -> tuple[str | None, str | None]:
        """The (channel, thread) recorded with its answer."""
        return self.unasked or (self.channel, self.conversation)


@dataclass(frozen=True)
class Outcome:
    """What became of a question: the answer (None when there is none; the asker was told why, if anyone asked),
    the ids of the messages carrying it, and whether it was posted (an unsure answer in auto mode is not)."""

    answer: Answer | None = None
    ids: tuple[Hashable, ...] = ()
    posted: bool = False

    @property
    def continues(self) -> bool:
        """A posted, real answer: replies to it and its thread continue the conversation."""
        return self.posted and self.answer is not None and not self.answer.refused


class AnswerFlow:
    """The flow; one per platform only for the label in its log lines."""

    def __init__(self, services: Services, platform: str) -> None:
        self.services = services
        self.platform = platform

    async def run(self, question: Question, reply: Reply) -> Outcome:
        request_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        context = logs.request_id.set(request_id)
        try:
            return await self._run(question, reply, request_id, started)
        finally:
            logs.request_id.reset(context)

    async def _run(self, question: Question, reply: Reply, request_id: str, started: float) -> Outcome:
        services = self.services
        try:
            await self._wait_for_engine(question, reply)
        except Exception as exc:
            await self._fail(exc, question, reply, request_id)
            return Outcome()
        refusal = services.admit(question.asker, question.place)
        if refusal is not None:
            logger.info("%s request %s not admitted: %s", self.platform, request_id, refusal.message)
            if refusal.notify and question.unasked is None:  # once per window; nobody asked: nothing said
                await _quietly(reply.fail(refusal.message))
            return Outcome()
        try:
            answer = await self._stream(question, reply, request_id)
        except Exception as exc:  # one bad question never takes the bot down; the asker gets a worded reason
            await self._fail(exc, question, reply, request_id)
            return Outcome()
        if question.quiet and answer.unsure:  # recorded as unanswered, not posted: the caller hands it off
            services.record(
                answer, question.asker, question.place, private=False, support=question.unasked, handed_off=True
            )
            logger.info("%s request %s unsure; not posted", self.platform, request_id)
            return Outcome(answer)
        async with services.posting(answer.request_id):  # a vote cast at once waits for the record
            try:
                ids = tuple(await reply.final(answer))
            except Exception as exc:
                await self._fail(exc, question, reply, request_id)
                return Outcome()
            # Posted first, recorded after: a slow or broken database costs nobody an answer.
            services.record(
                answer,
                question.asker,
                question.place,
                private=question.private,
                support=question.unasked,
                where=question.where,
                followup_after_s=followup_after(question, answer),
                messages=ids,
            )
        elapsed = time.monotonic() - started
        services.metrics.answered(answer, elapsed)
        logger.info(
            "%s request %s answered in %.0f ms (%d messages, %d sources, refused=%s)",
            self.platform,
            request_id,
            elapsed * 1000,
            len(ids),
            len(answer.citations),
            answer.refused,
        )
        return Outcome(answer, ids, posted=True)

    async def _wait_for_engine(self, question: Question, reply: Reply) -> None:
        """While the engine starts, wait (bounded by ``bot.startup_wait_s``) instead of turning the asker away;
        someone who asked is told their answer will follow, a support channel sees nothing until the answer."""
        pipeline = self.services.pipeline
        if pipeline.ready:
            return
        if question.unasked is None:
            await _quietly(reply.notice(STARTING))
        try:
            await asyncio.wait_for(pipeline.wait_ready(), timeout=self.services.settings.bot.startup_wait_s)
        except TimeoutError:
            raise StartingUp("the language model was not ready in time") from None

    async def _stream(self, question: Question, reply: Reply, request_id: str) -> Answer:
        """Wait for an answering slot (telling the asker their place in the queue), then stream the answer:
        ``partial`` gets the cleaned text so far at most every ``bot.edit_interval_s``. A channel's policy may
        limit the sources and, for a question nobody asked, raise the refusal threshold."""
        services = self.services
        services.pipeline.check_ready()
        visible = not question.quiet
        interval = services.settings.bot.edit_interval_s
        policy = question.policy
        if question.unasked is None:  # asked: show at once that it is being answered
            await _quietly(reply.notice(SEARCHING))

        async def in_queue(position: int) -> None:
            if visible:
                await _quietly(reply.notice(queued(position)))

        started = time.monotonic()
        answer: Answer | None = None
        async with services.admission.slot(in_queue):
            if visible and time.monotonic() - started > 1:
                await _quietly(reply.notice(SEARCHING))
            last_edit = time.monotonic()
            stream = services.pipeline.stream(
                question.text,
                history=question.history,
                request_id=request_id,
                scope=services.scope(question.place, policy),
                min_score=policy.min_confidence if policy and question.unasked is not None else None,
                thread=question.thread,
            )
            async for update in stream:
                if update.answer is not None:
                    answer = update.answer
                elif visible and update.raw and time.monotonic() - last_edit >= interval:
                    last_edit = time.monotonic()
                    await _quietly(reply.partial(update.text))
        if answer is None:
            raise RuntimeError("the pipeline ended without an answer")
        return answer if answer.request_id else dataclasses.replace(answer, request_id=request_id)

    async def _fail(self, exc: Exception, question: Question, reply: Reply, request_id: str) -> None:
        """The one place a failed question is logged, counted and worded for its asker."""
        if isinstance(exc, Skipped):
            logger.info("%s request %s skipped by a moderator", self.platform, request_id)
            return
        if question.unasked is not None:  # nobody asked: log it, say nothing
            level = logging.INFO if isinstance(exc, StartingUp) else logging.WARNING
            logger.log(level, "%s request %s (unasked) not answered: %s", self.platform, request_id, exc)
            return
        self.services.metrics.failed(exc)
        error_id = new_error_id()
        if isinstance(exc, DocentError) and not exc.shows_error_id:  # expected (a bad question, starting up)
            logger.info("%s request %s refused: %s", self.platform, request_id, exc)
        else:
            logger.warning("%s request %s failed (error id %s)", self.platform, request_id, error_id, exc_info=exc)
        await _quietly(reply.fail(describe(exc, error_id)))


def followup_after(question: Question, answer: Answer) -> float:
    """The channel's "Did this solve it?" delay for a posted answer to a question nobody asked, in a support
    channel of a server or workspace (never a direct message, a private question or a refusal); 0: none."""
    policy = question.policy
    if policy is None or question.unasked is None or question.place.space is None or question.private:
        return 0.0
    return 0.0 if answer.refused else policy.followup_after_s


async def _quietly(step: Awaitable[None]) -> None:
    """A best-effort reply step: its failure is logged, never the question's end."""
    try:
        await step
    except Skipped:
        return
    except Exception as exc:
        logger.warning("reply step failed: %s: %s", type(exc).__name__, exc)
