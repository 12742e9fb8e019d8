"""Support channels, for every platform: questions taken unasked, the threads they open, who may follow up, when
Docent hands off to the helpers, when a helper's answer is worth learning, and "This solved it".

The platforms only react or post: each hands over a ``Reply`` for the answer and a ``hand_off`` step for when
Docent is unsure, and asks this module what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from bot.answering import AnswerFlow, Outcome, Question, Reply
from bot.bounded import BoundedMap
from bot.services import Place, Services, SupportThread
from rag.settings import ChannelPolicy

__all__ = ["SupportDesk", "SupportThread", "should_hand_off"]

logger = logging.getLogger(__name__)
MAX_THREADS = 5000
HANDOFF = "I'm not sure about this one, so I'll leave it to the helpers."
NOT_YOURS = "Only the person who asked (or a moderator) can mark this solved."


class SupportDesk:
    """One per platform (keys are the platform's own: a Discord message id, a Slack (channel, ts))."""

    def __init__(self, services: Services, flow: AnswerFlow) -> None:
        self.services = services
        self.flow = flow
        self.threads: BoundedMap[Hashable, SupportThread] = BoundedMap(MAX_THREADS)
        self._skipped: BoundedMap[Hashable, None] = BoundedMap(MAX_THREADS)

    # -- a moderator's skip mark -------------------------------------------------------------------------------

    def skip(self, key: Hashable) -> None:
        """A moderator's 🚫 on a new question: Docent won't answer it (if its answer isn't posted yet)."""
        self._skipped[key] = None

    def skipped(self, key: Hashable) -> bool:
        return key in self._skipped

    # -- new questions -----------------------------------------------------------------------------------------

    async def answer_new(
        self, key: Hashable, question: Question, reply: Reply, hand_off: Callable[[], Awaitable[None]]
    ) -> Outcome:
        """Answer a question nobody asked Docent. In auto mode only a confident answer is posted (nothing shows
        before it); an unsure one is recorded and handed off. ``question.unasked`` names the thread."""
        if self.skipped(key):
            return Outcome()
        outcome = await self.flow.run(question, reply)
        answer = outcome.answer
        if answer is None:
            return outcome
        assert question.unasked is not None
        self.threads[key] = SupportThread(question.unasked[1], question.asker, answer.question, answer.unsure)
        if should_hand_off(question.policy, outcome):
            try:
                await hand_off()
            except Exception as exc:
                logger.warning("%s hand-off failed: %s", self.flow.platform, exc)
        return outcome

    # -- follow-ups, votes and learning ------------------------------------------------------------------------

    def needs_help(self, key: Hashable | None) -> None:
        """A 👎 on the answer in a support thread: a trusted member's answer there is worth learning."""
        thread = self.threads.get(key)
        if thread is not None:
            thread.needs_help = True

    async def helper_replied(self, thread: SupportThread, *, trusted: bool, text: str, **message: Any) -> bool:
        """Someone other than the asker answered in a support thread: offered for learning when the thread
        needed help and the author is trusted. True if it was offered."""
        if not thread.needs_help or not trusted or not text.strip():
            return False
        await self.services.capture(thread, answer=text.strip(), **message)
        return True

    # -- "This solved it" --------------------------------------------------------------------------------------

    async def solved(self, place: Place, channel: str, thread: str, *, allowed: bool) -> str | None:
        """Mark a support thread solved, once, counted in the metrics. ``allowed``: the asker or a moderator, as
        the platform knows them. Returns the words for the person who clicked; None when it was newly marked,
        so the platform tags it (and then says so)."""
        if not allowed or not thread:
            return NOT_YOURS
        if not await self.services.solved(place, channel, thread):
            return "Already marked solved."
        logger.info("%s support thread %s solved", place.platform, thread)
        return None


def should_hand_off(policy: ChannelPolicy | None, outcome: Outcome) -> bool:
    """Auto mode hands off what it did not post; always mode posts even an unsure answer."""
    return policy is not None and policy.mode == "auto" and outcome.answer is not None and outcome.answer.unsure
