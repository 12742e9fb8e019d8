"""The real vLLM engine (CPU build) with the tiny random model: streaming, limits, cancellation.

Tests marked ``slow`` start the engine; the rest check the plain helpers around it.
"""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from rag.errors import ConfigError, GenerationTimeout
from rag.generator import (
    VLLMGenerator,
    _fold_system,
    check_memory,
    engine_dtype,
    kv_cache_bytes,
    normalised_likelihoods,
    weights_bytes,
)
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
        LLMSettings(model="x", max_tokens=4000, timeout_s=0.05, max_model_len=4096), ignore_eos=True
    )
    with pytest.raises(GenerationTimeout):
        async for _ in slow.stream(MESSAGES, request_id="t-timeout"):
            await asyncio.sleep(0.02)
    texts = [t async for t in generator.stream(MESSAGES, request_id="t-after-timeout")]
    assert texts


@pytest.mark.slow
async def test_cancelling_the_caller_aborts_the_request(generator: VLLMGenerator) -> None:
    long = generator.with_settings(
        LLMSettings(model="x", max_tokens=3000, timeout_s=60, max_model_len=4096), ignore_eos=True
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


def test_on_a_cpu_without_bf16_units_auto_means_float32() -> None:
    assert engine_dtype("auto", on_cpu=True, native_bf16=False) == "float32"
    assert engine_dtype("auto", on_cpu=True, native_bf16=True) == "auto"
    assert engine_dtype("auto", on_cpu=False, native_bf16=False) == "auto", "a GPU keeps the model's dtype"
    assert engine_dtype("bfloat16", on_cpu=True, native_bf16=False) == "bfloat16", "an explicit choice stands"


def test_the_cpu_kv_cache_is_sized_for_the_answers_it_must_hold(tiny_model_dir) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)  # 2 layers, 1 KV head of 64
    settings = LLMSettings(model=str(tiny_model_dir), max_model_len=4096, max_num_seqs=8)
    per_token = 2 * 2 * 1 * 64 * 4  # keys and values, layers, heads, head size, float32
    assert kv_cache_bytes(settings, config, "float32") == 256 << 20, "at least 256 MiB"
    big = settings.model_copy(update={"max_num_seqs": 1000})
    assert kv_cache_bytes(big, config, "float32") == int(per_token * 4096 * 1000 * 1.1)
    assert kv_cache_bytes(big, config, "bfloat16") == int(per_token // 2 * 4096 * 1000 * 1.1)


def test_a_start_that_cannot_fit_in_memory_is_refused_naming_docents_settings(tiny_model_dir) -> None:
    settings = LLMSettings(model=str(tiny_model_dir), kv_cache_gb=5000)
    weights = weights_bytes(str(tiny_model_dir), "float32")
    assert 0 < weights == (tiny_model_dir / "model.safetensors").stat().st_size, "stored in float32 already"
    with pytest.raises(ConfigError, match="DOCENT_LLM__KV_CACHE_GB") as refused:
        check_memory(settings, 5000 << 30, weights, available=8 << 30)
    assert "8.0 GiB is free" in str(refused.value)
    check_memory(settings, 1 << 30, weights, available=8 << 30)  # fits: nothing raised


@pytest.mark.slow
async def test_the_engine_refuses_a_kv_cache_larger_than_memory_before_loading(tiny_model_dir) -> None:
    """The real start path: vLLM itself would report this only in its worker's log, a minute later."""
    with pytest.raises(ConfigError, match="Not enough free memory"):
        await VLLMGenerator.start(LLMSettings(model=str(tiny_model_dir), kv_cache_gb=1 << 20))


def test_likelihoods_add_up_the_spellings_of_each_word_and_normalise() -> None:
    top = [("Yes", math.log(0.3)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("Maybe", math.log(0.4))]
    assert normalised_likelihoods(top, ("yes", "no")) == pytest.approx({"yes": 0.4 / 0.6, "no": 0.2 / 0.6})
    assert normalised_likelihoods([("Maybe", 0.0)], ("yes", "no")) == {"yes": 0.0, "no": 0.0}


@pytest.mark.slow
async def test_likelihoods_take_one_engine_step(generator: VLLMGenerator) -> None:
    odds = await generator.likelihoods(MESSAGES, ("milvus", "index"))
    assert set(odds) == {"milvus", "index"}
    assert sum(odds.values()) == pytest.approx(1.0) or sum(odds.values()) == 0.0
    assert generator.unfinished_requests() == 0
