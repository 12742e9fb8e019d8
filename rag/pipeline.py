"""The question path shared by the Discord bot and the CLI: retrieve, prompt, generate, cite."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from rag.citations import number_sources, postprocess
from rag.errors import BadQuestion, EngineUnavailable, GenerationTimeout
from rag.generator import Generator
from rag.grounding import revise
from rag.models import Answer, Citation, Hit
from rag.prompt import Passage, Turn, messages_for, passages
from rag.query import normalise_query
from rag.retrieval import Retriever
from rag.scope import EVERYTHING, SearchScope
from rag.settings import AnswerSettings, RetrievalSettings

logger = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
REFUSAL = "I couldn't find this in the documentation, so I won't guess."
UNCERTAIN = "I couldn't tie this answer to the docs, so it may be off:"
THREAD_QUESTION = "What is the answer to the question asked in this thread?"
RELEVANCE_QUESTION = "Do the sources above contain the answer to my question? Reply with only yes or no."
_CITED = re.compile(r"\[\d{1,3}\]")


@dataclass(frozen=True)
class Update:
    """A step of a streamed answer: ``text`` is the cleaned answer so far; ``answer`` is set once, at the end.

    ``text`` is cleaned on first read, at most once: cleaning on every token would be quadratic in the
    answer's length, and a consumer reads only the updates it shows (the bot, one per edit interval).
    """

    stage: str
    raw: str = ""  # the model's text so far, uncleaned: cheap to measure progress with
    sources: tuple[Citation, ...] = ()
    answer: Answer | None = None

    @cached_property
    def text(self) -> str:
        if self.answer is not None:
            return self.answer.text
        return postprocess(self.raw, self.sources)[0] if self.raw else ""


def clean_question(question: str, max_chars: int) -> str:
    """Normalise a user's question, or explain why it can't be answered as asked."""
    text = _CONTROL.sub("", question or "")
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise BadQuestion("Please ask a question about the docs, for example: how do I create an index?")
    if len(text) > max_chars:
        raise BadQuestion(
            f"That question is {len(text):,} characters long; please keep it under {max_chars:,} "
            "and ask about one thing at a time."
        )
    return text


class Answering(Protocol):
    """What the front-ends answer through: the pipeline, or one whose engine is still starting (rag.starting)."""

    @property
    def ready(self) -> bool:
        """The engine is up: questions are answered, not told to come back."""
        ...

    def healthy(self) -> bool:
        """False once the engine died or failed to start (True while it starts)."""
        ...

    async def wait_ready(self) -> None:
        """Return once the engine is up; raise what stopped it from starting."""
        ...

    def check_ready(self) -> None:
        """Raise ``StartingUp`` while the engine starts and ``EngineUnavailable`` if it failed to; else nothing."""
        ...

    def stream(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        request_id: str | None = None,
        scope: SearchScope = EVERYTHING,
        min_score: float | None = None,
        thread: Sequence[str] = (),
    ) -> AsyncIterator[Update]: ...

    async def ask(self, question: str, *, history: Sequence[Turn] = (), request_id: str | None = None) -> Answer: ...


class AnswerPipeline:
    ready = True  # built over a started engine

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        settings: RetrievalSettings,
        answer: AnswerSettings | None = None,
    ) -> None:
        self.retriever = retriever
        self._generator = generator
        self._settings = settings
        self._answer = answer or AnswerSettings()

    def healthy(self) -> bool:
        return self._generator.healthy()

    async def wait_ready(self) -> None:
        return None

    def check_ready(self) -> None:
        return None

    def _fit_context(
        self, question: str, hits: list[Hit], history: Sequence[Turn], thread: Sequence[str] = ()
    ) -> tuple[list[dict[str, str]], list[Citation], list[Passage]]:
        """Keep the strongest sources that fit the model's context window.

        Tokenising is the costly part (a chat template and a tokenizer pass), so the full prompt is measured once
        and, only when it doesn't fit, the number of sources kept is found by bisection: about log2(top_k) more
        measurements instead of one per dropped source. Runs in a worker thread (see ``stream``)."""

        def build(count: int) -> tuple[list[dict[str, str]], list[Citation], list[Passage]]:
            kept = hits[:count]
            sources = number_sources(kept)
            shown = passages(focus_on, kept, sources, self._settings.max_context_chars, self._answer.passage_chars)
            messages = messages_for(question, shown, history=history, settings=self._answer, thread=thread)
            return messages, sources, shown

        # Passages are cut around what the question asks, not around the traceback pasted with it.
        focus_on = normalise_query(question).lexical if self.retriever.tuning.normalise_query else question

        def fits(messages: list[dict[str, str]]) -> bool:
            return self._generator.prompt_tokens(messages) <= self._generator.context_limit

        best = build(len(hits))
        if len(hits) <= 1 or fits(best[0]):
            return best
        low, high = 1, len(hits) - 1  # the first source always goes in, even alone too long (the engine trims)
        best = build(1)
        while low <= high:
            middle = (low + high) // 2
            candidate = build(middle)
            if fits(candidate[0]):
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        return best

    async def stream(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        request_id: str | None = None,
        scope: SearchScope = EVERYTHING,
        min_score: float | None = None,
        thread: Sequence[str] = (),
    ) -> AsyncIterator[Update]:
        """Retrieve what ``scope`` admits (by default everything: the operator's view), then refuse below
        ``min_score`` (default: the retriever's ``tuning.min_score``; a support channel answering unasked sets a
        stricter one), else generate with citations.

        ``thread`` is what was said before Docent was asked, in a thread it did not start (``bot.threads``): its
        opening message gives retrieval the subject, and the model reads it all. Asked with no words of its own
        there ("@Docent?"), Docent answers the thread's question."""
        request_id = request_id or uuid.uuid4().hex[:12]
        threshold = self.retriever.tuning.min_score if min_score is None else min_score
        started = time.perf_counter()
        if thread and not question.strip():
            question = THREAD_QUESTION
        question = clean_question(question, self._settings.max_question_chars)
        yield Update("retrieving")
        earlier = [*thread[:1], *(turn.question for turn in history)]
        retrieval = await self.retriever.retrieve(question, earlier, scope=scope)
        hits, timings = list(retrieval.hits), dict(retrieval.timings_ms)
        logger.info(
            "request %s retrieved %d hits from %d pages, confidence %.3f, in %.0f ms",
            request_id,
            len(hits),
            len(retrieval.pages),
            retrieval.confidence,
            sum(timings.values()),
        )
        confidence = retrieval.confidence
        if not hits or confidence < threshold:
            yield self._refusal(question, hits, request_id, timings, started, confidence=confidence)
            return

        prompted = _first_pages(hits, self._answer.sources)
        messages, sources, shown = await asyncio.to_thread(self._fit_context, question, prompted, history, thread)
        relevance = None
        if self._answer.relevance_check:
            checked = time.perf_counter()
            asked = [*messages, {"role": "user", "content": RELEVANCE_QUESTION}]
            try:
                odds = await self._generator.likelihoods(asked, ("yes", "no"), request_id=f"{request_id}-relevance")
                relevance = odds["yes"]
            except (EngineUnavailable, GenerationTimeout):
                raise
            except Exception:  # the check is a filter, not the answer: without it, answer as if it had passed
                logger.exception("request %s: the relevance check failed; answering without it", request_id)
            timings["relevance_ms"] = (time.perf_counter() - checked) * 1000
            if relevance is not None:
                logger.info("request %s relevance %.3f", request_id, relevance)
            if relevance is not None and relevance < self._answer.min_relevance:
                yield self._refusal(question, hits, request_id, timings, started, relevance, confidence)
                return
        yield Update("generating")
        generated = time.perf_counter()
        raw, numbered = "", tuple(sources)
        async for raw in self._generator.stream(messages, request_id=request_id):
            if raw and "first_token_ms" not in timings:
                timings["first_token_ms"] = (time.perf_counter() - started) * 1000
            yield Update("generating", raw, numbered)
        timings["generate_ms"] = (time.perf_counter() - generated) * 1000
        verdict = "grounded"
        if self._answer.grounding != "off":
            seen: dict[int, list[str]] = {}
            for passage in shown:
                seen.setdefault(passage.number, []).append(passage.text)
            revision = await asyncio.to_thread(
                revise,
                raw,
                {n: "\n\n".join(texts) for n, texts in seen.items()},
                drop=self._answer.grounding == "strict",
            )
            raw, verdict = revision.text, revision.verdict
            logger.info(
                "request %s grounding %s (%d sentences re-cited, %d dropped)",
                request_id,
                verdict,
                revision.recited,
                revision.dropped,
            )
        if verdict == "not covered":
            yield self._refusal(question, hits, request_id, timings, started, relevance, confidence)
            return
        text, cited = postprocess(raw, sources)
        uncertain = verdict == "uncertain" or (self._answer.grounding != "off" and not _CITED.search(text))
        if not text:
            text = "The model returned an empty answer; the pages below are the most relevant I found."
        elif uncertain:
            text = f"{UNCERTAIN}\n\n{text}"
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        answer = Answer(
            question,
            text,
            tuple(cited),
            False,
            tuple(hits),
            request_id,
            timings,
            uncertain,
            relevance=relevance,
            confidence=confidence,
        )
        logger.info("request %s answered in %.0f ms (%d citations)", request_id, timings["total_ms"], len(cited))
        yield Update("done", answer=answer)

    @staticmethod
    def _refusal(
        question: str,
        hits: Sequence[Hit],
        request_id: str,
        timings: dict[str, float],
        started: float,
        relevance: float | None = None,
        confidence: float | None = None,
    ) -> Update:
        """Docent's refusal, with the closest pages: the docs don't hold the answer, by retrieval or by the model."""
        closest = number_sources(_distinct_pages(hits)[:3])
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        text = REFUSAL + (" These pages are the closest I found:" if closest else "")
        answer = Answer(
            question,
            text,
            tuple(closest),
            True,
            tuple(hits),
            request_id,
            timings,
            relevance=relevance,
            confidence=confidence,
        )
        return Update("done", answer=answer)

    async def ask(self, question: str, *, history: Sequence[Turn] = (), request_id: str | None = None) -> Answer:
        async for update in self.stream(question, history=history, request_id=request_id):
            if update.answer is not None:
                return update.answer
        raise AssertionError("stream ended without an answer")  # stream always ends with one


def _first_pages(hits: Sequence[Hit], pages: int) -> list[Hit]:
    """The hits of the first ``pages`` pages (hits come grouped by page, best page first)."""
    kept: set[str] = set()
    out: list[Hit] = []
    for hit in hits:
        if hit.page_id not in kept:
            if len(kept) == pages:
                break
            kept.add(hit.page_id)
        out.append(hit)
    return out


def _distinct_pages(hits: Sequence[Hit]) -> list[Hit]:
    """The best hit of each page, linked to the page rather than the section."""
    seen: set[str] = set()
    out: list[Hit] = []
    for hit in hits:
        if hit.page_id not in seen:
            seen.add(hit.page_id)
            out.append(replace(hit, url=hit.url.split("#", 1)[0], heading=""))
    return out
