"""The engine starting in the background: owned (closed or cancelled on exit), its progress with an estimate from the
last start, its failure raised to the caller, and a pipeline that says "starting up" until it is up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rag.errors import ConfigError, EngineUnavailable, StartingUp, describe
from rag.starting import BackgroundEngine, StartingPipeline, StartRecord, progress_line, read_record, write_record
from tests.scripted import ClosableGenerator, GatedStart


class Lines:
    """A status sink a test can wait on."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.changed.set()

    async def until(self, text: str) -> str:
        async with asyncio.timeout(30):
            while not any(text in line for line in self.lines):
                self.changed.clear()
                await self.changed.wait()
        return next(line for line in self.lines if text in line)


def test_starting_up_is_a_plain_message_without_an_error_id() -> None:
    text = describe(StartingUp("engine starting"), "abc123")
    assert text == "Sorry, I'm still starting up and couldn't answer in time. Please ask again in a minute."


async def test_shutdown_during_the_start_cancels_it_and_closes_nothing() -> None:
    gated = GatedStart()
    lines = Lines()
    async with BackgroundEngine(gated.start, model="m", status=lines) as engine:
        await gated.began.wait()
        assert not engine.ready and not engine.failed
    assert gated.cancelled and not gated.engine.closed
    assert any("Stopping the language model start" in line for line in lines.lines)


async def test_a_started_engine_is_closed_on_exit_and_its_start_time_recorded(tmp_path: Path) -> None:
    gated = GatedStart()
    record = tmp_path / "engine-start.json"
    async with BackgroundEngine(gated.start, model="m", record=record) as engine:
        gated.open()
        assert await engine.wait() is gated.engine
        assert engine.ready and engine.engine is gated.engine
        assert not gated.engine.closed
    assert gated.engine.closed
    last = read_record(record, "m")
    assert last is not None and last.seconds > 0
    assert read_record(record, "another-model") is None, "another model's start says nothing about this one"


async def test_progress_lines_say_how_long_it_has_taken_and_about_how_long_is_left(tmp_path: Path) -> None:
    record = tmp_path / "engine-start.json"
    write_record(record, StartRecord("m", 600.0))
    gated = GatedStart()
    lines = Lines()
    async with BackgroundEngine(gated.start, model="m", record=record, status=lines, progress_every_s=0.01):
        assert "about 600 s, as last time" in await lines.until("Starting the language model m")
        line = await lines.until("Still starting")
        assert "s so far" in line and "s left" in line
        gated.open()
        await lines.until("Language model ready")


def test_the_estimate_after_the_recorded_time_says_it_is_taking_longer() -> None:
    assert progress_line("m", 12, None) == "Still starting the language model m: 12 s so far…"
    assert progress_line("m", 10, 30) == "Still starting the language model m: 10 s so far, about 20 s left…"
    assert "longer than last time (30 s)" in progress_line("m", 45, 30)


async def test_a_failed_start_is_raised_on_exit_unless_something_else_is() -> None:
    async def broken() -> ClosableGenerator:
        raise ConfigError("Cannot start the language model 'm': no such model")

    with pytest.raises(ConfigError, match="Cannot start"):
        async with BackgroundEngine(broken, model="m") as engine:
            with pytest.raises(ConfigError):
                await engine.wait()
            assert engine.failed and not engine.ready

    with pytest.raises(KeyError):
        async with BackgroundEngine(broken, model="m") as engine:
            with pytest.raises(ConfigError):
                await engine.wait()
            raise KeyError("the caller's own failure wins")


async def test_the_pipeline_says_starting_up_until_the_engine_is_up_then_is_healthy(embedder, store) -> None:
    from rag.retrieval import Retriever
    from rag.settings import RetrievalSettings, TuningSettings

    settings = RetrievalSettings()
    gated = GatedStart()
    async with BackgroundEngine(gated.start, model="m") as engine:
        retriever = Retriever(embedder, store, settings, TuningSettings(min_score=-1.0))
        pipeline = StartingPipeline(retriever, engine, settings)
        assert not pipeline.ready and pipeline.healthy(), "starting is alive: the watchdog must leave it alone"
        with pytest.raises(StartingUp):
            await pipeline.ask("what is HNSW?")
        gated.open()
        await pipeline.wait_ready()
        assert pipeline.ready and pipeline.healthy()
    assert not pipeline.healthy(), "closed with its owner"


async def test_after_a_failed_start_questions_get_unavailable_not_starting_up(embedder, store) -> None:
    from rag.retrieval import Retriever
    from rag.settings import RetrievalSettings, TuningSettings

    async def broken() -> ClosableGenerator:
        raise ConfigError("no such model")

    settings = RetrievalSettings()
    with pytest.raises(ConfigError):
        async with BackgroundEngine(broken, model="m") as engine:
            pipeline = StartingPipeline(Retriever(embedder, store, settings, TuningSettings()), engine, settings)
            with pytest.raises(ConfigError):
                await pipeline.wait_ready()
            assert not pipeline.healthy() and not pipeline.ready
            with pytest.raises(EngineUnavailable):
                await pipeline.ask("what is HNSW?")
