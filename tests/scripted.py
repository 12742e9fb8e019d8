"""A generator that says exactly what a test needs: for answer logic that must not depend on the tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

DEFAULT_ANSWER = "HNSW is a graph index [1]."


class ScriptedGenerator:
    """Streams its answer growing piece by piece, as the engine does, and keeps every prompt it was given.

    A string answer is streamed in 500-character pieces; a sequence of strings one piece per item.
    """

    context_limit = 100_000

    def __init__(self, answer: str | Sequence[str] = DEFAULT_ANSWER, *, yes: float = 1.0) -> None:
        self.pieces = [answer[i : i + 500] for i in range(0, len(answer), 500)] if isinstance(answer, str) else answer
        self.prompts: list[list[dict[str, str]]] = []
        self.yes = yes  # what ``likelihoods`` says of "yes"

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages) // 4

    def healthy(self) -> bool:
        return True

    def unfinished_requests(self) -> int:
        return 0

    async def stream(self, messages: Sequence[dict[str, str]], *, request_id: str | None = None) -> AsyncIterator[str]:
        self.prompts.append([dict(m) for m in messages])
        text = ""
        for piece in self.pieces:
            await asyncio.sleep(0)
            text += piece
            yield text

    async def likelihoods(
        self, messages: Sequence[dict[str, str]], words: Sequence[str], *, request_id: str | None = None
    ) -> dict[str, float]:
        self.prompts.append([dict(m) for m in messages])
        return {word: (self.yes if word == "yes" else 1 - self.yes) for word in words}


class PacedGenerator(ScriptedGenerator):
    """Writes one piece per ``pace_s``, as a model writing a longer answer would, so partial text is shown and a
    test can act while it writes (``started`` is set when a stream begins)."""

    def __init__(self, pieces: Sequence[str], pace_s: float) -> None:
        super().__init__(list(pieces))
        self.pace_s = pace_s
        self.started = asyncio.Event()

    async def stream(self, messages: Sequence[dict[str, str]], *, request_id: str | None = None) -> AsyncIterator[str]:
        self.prompts.append([dict(m) for m in messages])
        self.started.set()
        text = ""
        for piece in self.pieces:
            await asyncio.sleep(self.pace_s)  # the model's pace, not a wait for the code under test
            text += piece
            yield text


class GatedStart:
    """An engine start the test finishes: ``start`` waits for ``open()``, then returns a scripted engine that
    records being closed. ``cancelled`` says the start was stopped half way."""

    def __init__(self, answer: str | Sequence[str] = DEFAULT_ANSWER) -> None:
        self.gate = asyncio.Event()
        self.engine = ClosableGenerator(answer)
        self.began = asyncio.Event()
        self.cancelled = False

    def open(self) -> None:
        self.gate.set()

    async def start(self) -> ClosableGenerator:
        self.began.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return self.engine


class ClosableGenerator(ScriptedGenerator):
    def __init__(self, answer: str | Sequence[str] = DEFAULT_ANSWER) -> None:
        super().__init__(answer)
        self.closed = False

    def healthy(self) -> bool:
        return not self.closed

    async def close(self) -> None:
        self.closed = True


def over(engine: Any) -> Callable[[Any, Any], Any]:
    """A harness ``pipeline`` factory: the bot's ``StartingPipeline`` over a background ``engine``."""
    from rag.starting import StartingPipeline

    return lambda retriever, settings: StartingPipeline(retriever, engine, settings.retrieval)
