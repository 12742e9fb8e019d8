"""``open_core`` with the engine starting in the background, and a shutdown that lands in the middle of a real vLLM
start: the engine being built is shut down, not leaked, and nothing hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from rag.errors import StartingUp
from rag.generator import VLLMGenerator
from rag.runtime import open_core
from rag.settings import LLMSettings, Settings
from rag.starting import BackgroundEngine

pytestmark = pytest.mark.integration


def our_processes() -> set[int]:
    """Our child processes, but multiprocessing's resource tracker: started with the first worker, it serves the
    whole process and is not the engine's."""
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # gone meanwhile
            continue
    return found


@pytest.mark.slow
async def test_a_shutdown_during_a_real_engine_start_shuts_the_engine_down(tiny_model_dir: Path) -> None:
    import psutil

    settings = LLMSettings(model=str(tiny_model_dir), max_model_len=4096, max_tokens=8, kv_cache_gb=1, timeout_s=60)
    before = our_processes()
    lines: list[str] = []
    async with BackgroundEngine(partial(VLLMGenerator.start, settings), model="tiny", status=lines.append) as engine:
        async with asyncio.timeout(300):  # the build is under way once its worker process exists
            while not our_processes() - before:  # noqa: ASYNC110 (a process offers nothing to wait on)
                await asyncio.sleep(0.1)
        assert not engine.ready
    assert any("Stopping the language model start" in line for line in lines)
    started = [psutil.Process(pid) for pid in our_processes() - before if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(started, timeout=60)
    assert not alive, "the engine's worker processes outlived the shutdown"


@pytest.mark.slow
async def test_open_core_yields_before_the_engine_is_up_and_waits_for_it_otherwise(
    make_settings: Callable[..., Settings], tiny_model_dir: Path
) -> None:
    settings = make_settings(llm={"model": str(tiny_model_dir)})
    async with open_core(settings, with_llm=True, llm_in_background=True) as core:
        assert core.pipeline is not None and core.generator is None
        if not core.pipeline.ready:  # the tiny model may win the race with the embedder
            with pytest.raises(StartingUp):
                await core.pipeline.ask("what is HNSW?")
        await core.pipeline.wait_ready()
        assert core.pipeline.ready and core.pipeline.healthy()
    assert (settings.data_dir / "engine-start.json").exists(), "the next start has an estimate"

    async with open_core(settings, with_llm=True) as core:
        assert core.pipeline is not None and core.pipeline.ready and core.generator is not None
