"""The real vLLM engine (CPU build) with the tiny random model: streaming, limits, cancellation.

Tests marked ``slow`` start the engine; the rest check the plain helpers around it.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from rag.errors import GenerationTimeout
from rag.generator import VLLMGenerator, _fold_system
from rag.settings import LLMSettings

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is HNSW? [1]"}]


@pytest.mark.slow
async def test_stream_grows_and_finishes(generator: VLLMGenerator) -> None:
    texts = [text async for text in generator.stream(MESSAGES, request_id="t-stream")]
    assert texts, "the engine produced no output"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))


@pytest.mark.slow
async def test_prompt_tokens_counts_the_chat_template(generator: VLLMGenerator) -> None:
    short = generator.prompt_tokens(MESSAGES)
    longer = generator.prompt_tokens([*MESSAGES, {"role": "user", "content": "more words " * 50}])
    assert 0 < short < longer
    assert generator.context_limit == 4096 - 48


@pytest.mark.slow
async def test_concurrent_requests_all_complete(generator: VLLMGenerator) -> None:
    async def one(i: int) -> str:
        texts = [text async for text in generator.stream(MESSAGES, request_id=f"t-conc-{i}")]
        return texts[-1]

    results = await asyncio.gather(*(one(i) for i in range(8)))
    assert len(results) == 8 and all(isinstance(r, str) for r in results)


@pytest.mark.slow
async def test_timeout_raises_and_engine_keeps_serving(generator: VLLMGenerator) -> None:
    slow = generator.with_settings(
        LLMSettings(model="x", max_tokens=4000, timeout_s=0.05, max_model_len=4096, ignore_eos=True)
    )
    with pytest.raises(GenerationTimeout):
        async for _ in slow.stream(MESSAGES, request_id="t-timeout"):
            await asyncio.sleep(0.02)
    texts = [t async for t in generator.stream(MESSAGES, request_id="t-after-timeout")]
    assert texts


@pytest.mark.slow
async def test_cancelling_the_caller_aborts_the_request(generator: VLLMGenerator) -> None:
    long = generator.with_settings(
        LLMSettings(model="x", max_tokens=3000, timeout_s=60, max_model_len=4096, ignore_eos=True)
    )
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in long.stream(MESSAGES, request_id="t-cancel"):
            started.set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if generator.unfinished_requests() == 0:
            break
        await asyncio.sleep(0.05)
    assert generator.unfinished_requests() == 0


def test_a_template_without_system_turns_gets_the_system_text_in_the_first_user_turn() -> None:
    folded = _fold_system([*MESSAGES, {"role": "assistant", "content": "A graph index."}])
    assert folded == [
        {"role": "user", "content": "Be brief.\n\nWhat is HNSW? [1]"},
        {"role": "assistant", "content": "A graph index."},
    ]
    assert MESSAGES[1]["content"] == "What is HNSW? [1]", "the caller's messages are not changed"
