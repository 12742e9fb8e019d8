"""Sentence embeddings, computed off the event loop."""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from rag import encoders
from rag.errors import ConfigError
from rag.settings import EmbeddingSettings, resolve_embedding_model

logger = logging.getLogger(__name__)
Step = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class Embedder(Protocol):
    dimension: int
    max_tokens: int

    async def embed_query(self, text: str) -> list[float]: ...

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model behind one worker thread.

    One thread keeps torch from oversubscribing the cores it shares with the engine,
    and batches are small so a question never waits long behind an indexing run.
    """

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path | None = None, step: Step = _quiet) -> None:
        """``cache_dir`` holds exported backends (``<data_dir>/models``); without one, the torch backend runs."""
        from sentence_transformers import SentenceTransformer

        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        self._settings = settings
        name = resolve_embedding_model(settings.model)
        started = time.perf_counter()
        try:
            self._model = SentenceTransformer(name, device=settings.device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot load embedding model {settings.model!r}: {exc}") from exc
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = settings.max_tokens or int(self._model.max_seq_length or 256)
        self._count = _token_counter(self._model.tokenizer)
        self.backend = settings.backend if cache_dir is not None and settings.device == "cpu" else "torch"
        self._compiled: encoders.CompiledEncoder | None = None
        if self.backend in encoders.EXPORTED:
            assert cache_dir is not None
            self._compiled = encoders.load(self._model, self.backend, cache_dir, threads=settings.threads, step=step)
            encoders.release_weights(self._model)
        elif self.backend == "torch-int8":
            self._model = encoders.quantise_torch(self._model)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        logger.info(
            "embedding model %s loaded (%d-d, %s) in %.1fs",
            name,
            self.dimension,
            self.backend,
            time.perf_counter() - started,
        )

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def encode(self, texts: list[str], *, queries: bool = False) -> list[list[float]]:
        """Unit vectors, computed on the calling thread (benchmarks; the async methods use the worker thread)."""
        if self._compiled is not None:
            batch = self._settings.batch_size
            rows: list[list[float]] = self._compiled.encode(texts, batch, queries=queries).tolist()
            return rows
        vectors = self._model.encode(
            texts,
            batch_size=self._settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result

    async def _run(self, texts: list[str], *, queries: bool = False) -> list[list[float]]:
        encode = functools.partial(self.encode, texts, queries=queries)
        return await asyncio.get_running_loop().run_in_executor(self._pool, encode)

    async def embed_query(self, text: str) -> list[float]:
        return (await self._run([self._settings.query_prefix + text], queries=True))[0]

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors in input order; encoded shortest first so each batch pads little, one batch per call so a
        question waiting for the embedding thread waits for one batch at most."""
        prefix = self._settings.passage_prefix
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        step = self._settings.batch_size
        for start in range(0, len(order), step):
            batch = order[start : start + step]
            for i, vector in zip(batch, await self._run([prefix + texts[i] for i in batch]), strict=True):
                out[i] = vector
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Token counts from a private copy of the tokenizer.

    Chunking counts tokens in worker threads while the embedding thread encodes. A Hugging Face tokenizer
    call reconfigures truncation and padding on the shared Rust object, so sharing one between the two
    races and corrupts batches ("Unable to create tensor"). The copy is never reconfigured after this.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return lambda text: len(counter.encode(text, add_special_tokens=False).ids)
    private, lock = copy.deepcopy(tokenizer), threading.Lock()

    def count(text: str) -> int:
        with lock:
            return len(private(text, add_special_tokens=False, truncation=False)["input_ids"])

    return count
