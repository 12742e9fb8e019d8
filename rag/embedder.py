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


class QueryEmbedder(Protocol):
    async def embed_query(self, text: str) -> list[float]: ...


class Embedder(QueryEmbedder, Protocol):
    dimension: int
    max_tokens: int

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model behind one worker thread.

    One thread keeps the runtime from oversubscribing the cores it shares with the engine,
    and batches are small so a question never waits long behind an indexing run.
    On an exported backend, a model of the usual shape runs without torch once its export is cached
    (``rag.encoders``): torch is imported only to export it the first time.
    """

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path | None = None, step: Step = _quiet) -> None:
        """``cache_dir`` holds exported backends (``<data_dir>/models``); without one, the torch backend runs."""
        self._settings = settings
        name = resolve_embedding_model(settings.model)
        if _names_a_folder(name) and not Path(name).expanduser().is_dir():  # said now, not after importing torch
            raise ConfigError(f"Cannot load embedding model {settings.model!r}: there is no such folder")
        started = time.perf_counter()
        self.backend = settings.backend if cache_dir is not None and settings.device == "cpu" else "torch"
        self._model: Any = None
        self._exported: encoders.ExportedEncoder | None = None
        layout = self._layout(name) if self.backend in encoders.EXPORTED else None
        if layout is not None:
            assert cache_dir is not None
            self._exported = encoders.load(
                layout,
                self.backend,
                cache_dir,
                lambda: self._sentence_transformer(name),
                threads=settings.threads,
                step=step,
            )
            self._model = None  # loaded only to export: the torch copy of the weights is no longer needed
            self.dimension = layout.dimension
            limit = layout.max_tokens
            self._count = _token_counter(layout.tokenizer)
            own = encoders.read_prompts(layout.folder)
        else:
            if self.backend in encoders.EXPORTED:
                logger.warning(
                    "embedding model %s has modules beyond transformer+pooling+normalise; it runs on torch", name
                )
                self.backend = "torch"
            model = self._sentence_transformer(name)
            self._model = encoders.quantise_torch(model) if self.backend == "torch-int8" else model
            self.dimension = int(model.get_embedding_dimension() or 0)
            limit = int(model.max_seq_length or 256)
            self._count = _token_counter(model.tokenizer)
            own = encoders.prompts({"prompts": model.prompts, "default_prompt_name": model.default_prompt_name})
        # The model's own query and document prompts (config_sentence_transformers.json), on every backend; a
        # configured prefix replaces them.
        self.query_prompt = settings.query_prefix or own[0]
        self.document_prompt = settings.passage_prefix or own[1]
        # Chunks are embedded after their prompt: the budget is what the model reads less the prompt's tokens.
        self.max_tokens = settings.max_tokens or limit - self._count(self.document_prompt)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        # Questions that arrive while one is being encoded wait together and go in one batch (a busy server).
        self._waiting: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._drainer: asyncio.Task[None] | None = None
        logger.info(
            "embedding model %s loaded (%d-d, %s) in %.1fs",
            name,
            self.dimension,
            self.backend,
            time.perf_counter() - started,
        )

    def _layout(self, name: str) -> encoders.Layout | None:
        """The model folder's layout; a hub model not yet downloaded is fetched by sentence-transformers first."""
        folder = encoders.local_folder(name)
        if folder is None:
            self._model = self._sentence_transformer(name)
            folder = encoders.local_folder(name)
        return encoders.read_layout(folder) if folder is not None else None

    def _sentence_transformer(self, name: str) -> Any:
        if self._model is not None:
            return self._model
        import torch
        from sentence_transformers import SentenceTransformer

        if self._settings.threads:
            torch.set_num_threads(self._settings.threads)
        try:
            self._model = SentenceTransformer(name, device=self._settings.device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot load embedding model {self._settings.model!r}: {exc}") from exc
        return self._model

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def encode(self, texts: list[str], *, queries: bool = False) -> list[list[float]]:
        """Unit vectors of questions (``queries``) or passages, each after its prompt; computed on the calling
        thread (benchmarks; the async methods use the worker thread)."""
        prompt = self.query_prompt if queries else self.document_prompt
        if self._exported is not None:
            batch = self._settings.batch_size
            prompted = [prompt + text for text in texts] if prompt else texts
            rows: list[list[float]] = self._exported.encode(prompted, batch, queries=queries).tolist()
            return rows
        # sentence-transformers adds the prompt itself, so a model that pools without it (include_prompt false)
        # pools as it was trained; an explicit "" keeps its default_prompt_name from being added on top.
        vectors = self._model.encode(
            texts,
            prompt=prompt,
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
        """A question's vector. A question alone is encoded at once; those that arrive meanwhile are encoded
        together in the next batch, so a burst costs a few batches instead of one encode each."""
        loop = asyncio.get_running_loop()
        if self._drainer is not None and self._drainer.get_loop() is not loop:  # a new event loop (tests): start over
            self._waiting, self._drainer = [], None
        future: asyncio.Future[list[float]] = loop.create_future()
        self._waiting.append((text, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="embed-questions")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = (
                self._waiting[: self._settings.batch_size],
                self._waiting[self._settings.batch_size :],
            )
            try:
                vectors = await self._run([text for text, _ in batch], queries=True)
            except asyncio.CancelledError:  # closing: the questions waiting are cancelled with it
                for _, future in batch + self._waiting:
                    future.cancel()
                raise
            except Exception as exc:  # every question of the batch gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors in input order; encoded shortest first so each batch pads little, one batch per call so a
        question waiting for the embedding thread waits for one batch at most."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        step = self._settings.batch_size
        for start in range(0, len(order), step):
            batch = order[start : start + step]
            for i, vector in zip(batch, await self._run([texts[i] for i in batch]), strict=True):
                out[i] = vector
        return out

    def close(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _names_a_folder(name: str) -> bool:
    """A model given as a path rather than a hub name (``org/name``): absolute, relative to here or home, or deeper."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1


def _token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Token counts from a private copy of the tokenizer (a Hugging Face tokenizer, or a tokenizer.json path).

    Chunking counts tokens in worker threads while the embedding thread encodes. A Hugging Face tokenizer
    call reconfigures truncation and padding on the shared Rust object, so sharing one between the two
    races and corrupts batches ("Unable to create tensor"). The copy is never reconfigured after this.
    """
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(tokenizer, Path) or backend is not None:
        counter = Tokenizer.from_file(str(tokenizer)) if backend is None else Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return lambda text: len(counter.encode(text, add_special_tokens=False).ids)
    private, lock = copy.deepcopy(tokenizer), threading.Lock()

    def count(text: str) -> int:
        with lock:
            return len(private(text, add_special_tokens=False, truncation=False)["input_ids"])

    return count
