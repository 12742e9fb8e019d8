"""The language model starting in the background: the bot connects and serves /healthz meanwhile, and a question
asked before the engine is up is told so at once (``StartingUp``) instead of waiting in a queue or timing out."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from rag.errors import EngineUnavailable, StartingUp
from rag.generator import Generator
from rag.models import Answer
from rag.pipeline import AnswerPipeline, Update
from rag.prompt import Turn
from rag.retrieval import Retriever
from rag.scope import EVERYTHING, SearchScope
from rag.settings import AnswerSettings, RetrievalSettings

logger = logging.getLogger(__name__)
Status = Callable[[str], None]
RECORD_FILE = "engine-start.json"
PROGRESS_EVERY_S = 5.0


class Engine(Generator, Protocol):
    """A started generator that holds resources until closed (``VLLMGenerator``)."""

    async def close(self) -> None: ...


E = TypeVar("E", bound=Engine)


@dataclass(frozen=True)
class StartRecord:
    """How long the last successful start of ``model`` took: the next start's estimate."""

    model: str
    seconds: float


def read_record(path: Path, model: str) -> StartRecord | None:
    """The last start of this model; None when there is none (or it is unreadable: an estimate is optional)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = StartRecord(str(data["model"]), float(data["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.model == model and record.seconds > 0 else None


def write_record(path: Path, record: StartRecord) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record)), encoding="utf-8")
    temporary.replace(path)


class Progress(str):
    """A status line that the next one of the same task replaces, with its numbers: a terminal draws it as a live
    bar (``bot.cli``), a log prints the line as it is."""

    done: float
    total: float | None
    unit: str

    def __new__(cls, text: str, *, done: float, total: float | None, unit: str = "s") -> Progress:
        line = super().__new__(cls, text)
        line.done, line.total, line.unit = done, total, unit
        return line


def progress_line(model: str, elapsed: float, expected: float | None) -> str:
    if expected is None:
        estimate = ""
    elif elapsed < expected:
        estimate = f", about {expected - elapsed:.0f} s left"
    else:
        estimate = f", longer than last time ({expected:.0f} s)"
    return f"Still starting the language model {model}: {elapsed:.0f} s so far{estimate}…"


def _quiet(_: str) -> None:
    return None


class BackgroundEngine(Generic[E]):
    """Owns the engine's start task, and then the engine: closing cancels a start still under way (the start
    shuts down what it was building) or closes the started engine. A failed start is raised again on exit, so
    the caller fails as it did when it waited for the engine (``ConfigError``: exit code 2)."""

    def __init__(
        self,
        start: Callable[[], Awaitable[E]],
        *,
        model: str,
        record: Path | None = None,
        status: Status = _quiet,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        self._start = start
        self._model = model
        self._record = record
        self._status = status
        self._every = progress_every_s
        self._task: asyncio.Task[E] | None = None

    async def __aenter__(self) -> BackgroundEngine[E]:
        self._task = asyncio.create_task(self._run(), name="engine-start")
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            self._status("Stopping the language model start…")
            task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, asyncio.CancelledError):
            return
        if isinstance(outcome, BaseException):
            if exc is None:  # nothing else is going wrong: the start's failure is the caller's error
                raise outcome
            return
        await outcome.close()

    async def _run(self) -> E:
        started = time.monotonic()
        last = await asyncio.to_thread(read_record, self._record, self._model) if self._record else None
        self._status(
            f"Starting the language model {self._model} ("
            + (f"about {last.seconds:.0f} s, as last time" if last else "this can take a minute")
            + ")…"
        )
        ticker = asyncio.create_task(self._progress(started, last), name="engine-start-progress")
        try:
            engine = await self._start()
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        seconds = time.monotonic() - started
        self._status(f"Language model ready ({seconds:.1f}s).")
        if self._record is not None:
            try:
                await asyncio.to_thread(write_record, self._record, StartRecord(self._model, seconds))
            except OSError as exc:  # only the next start's estimate is lost
                logger.warning("could not record the engine start time in %s: %s", self._record, exc)
        return engine

    async def _progress(self, started: float, last: StartRecord | None) -> None:
        while True:
            await asyncio.sleep(self._every)
            elapsed, expected = time.monotonic() - started, last.seconds if last else None
            self._status(Progress(progress_line(self._model, elapsed, expected), done=elapsed, total=expected))

    @property
    def ready(self) -> bool:
        return self.engine is not None

    @property
    def failed(self) -> bool:
        task = self._task
        return task is not None and task.done() and (task.cancelled() or task.exception() is not None)

    @property
    def engine(self) -> E | None:
        """The started engine, or None while it starts (or if it didn't)."""
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def wait(self) -> E:
        """The engine once started (a failed start raises its error); waiting never cancels the start."""
        if self._task is None:
            raise RuntimeError("the engine start was never entered")
        return await asyncio.shield(self._task)


class StartingPipeline:
    """The answer pipeline over an engine that may still be starting: ``StartingUp`` at once until it is up, then
    the normal pipeline. Healthy while it starts, so the engine watchdog leaves the process alone."""

    def __init__(
        self,
        retriever: Retriever,
        engine: BackgroundEngine[Any],
        settings: RetrievalSettings,
        answer: AnswerSettings | None = None,
    ) -> None:
        self.retriever = retriever
        self._engine = engine
        self._settings = settings
        self._answer = answer
        self._pipeline: AnswerPipeline | None = None

    @property
    def ready(self) -> bool:
        return self._engine.ready

    def healthy(self) -> bool:
        if self._engine.failed:
            return False
        return not self._engine.ready or self._current().healthy()

    async def wait_ready(self) -> None:
        await self._engine.wait()

    def check_ready(self) -> None:
        self._current()

    def _current(self) -> AnswerPipeline:
        engine = self._engine.engine
        if engine is None:
            if self._engine.failed:
                raise EngineUnavailable("the language model did not start")
            raise StartingUp("the language model is still starting")
        if self._pipeline is None:
            self._pipeline = AnswerPipeline(self.retriever, engine, self._settings, self._answer)
        return self._pipeline

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
        pipeline = self._current()
        stream = pipeline.stream(
            question, history=history, request_id=request_id, scope=scope, min_score=min_score, thread=thread
        )
        async for update in stream:
            yield update

    async def ask(self, question: str, *, history: Sequence[Turn] = (), request_id: str | None = None) -> Answer:
        return await self._current().ask(question, history=history, request_id=request_id)
