"""Open the shared resources in order and close them in reverse: the one wiring used by every entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from rag.embedder import SentenceTransformerEmbedder
from rag.generator import VLLMGenerator
from rag.pipeline import AnswerPipeline
from rag.rerank import CrossEncoderReranker
from rag.retrieval import Retriever
from rag.settings import Settings, prepare_process_env
from rag.store import MilvusStore

logger = logging.getLogger(__name__)
Status = Callable[[str], None]


@dataclass
class Core:
    settings: Settings
    embedder: SentenceTransformerEmbedder
    store: MilvusStore
    retriever: Retriever
    generator: VLLMGenerator | None = None
    pipeline: AnswerPipeline | None = None


def _quiet(_: str) -> None:
    return None


@contextlib.asynccontextmanager
async def open_core(
    settings: Settings, *, with_llm: bool, require_index: bool = False, status: Status = _quiet
) -> AsyncIterator[Core]:
    """Embedder, store and (optionally) the LLM engine, plus the pipeline over them.

    ``require_index`` fails fast, before the slow engine start, when nothing is indexed yet.
    """
    prepare_process_env(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        status("Loading the embedding model…")
        embedder = await asyncio.to_thread(
            SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache, status
        )
        stack.callback(embedder.close)
        status(f"Embedding model ready ({time.perf_counter() - started:.1f}s).")

        store = MilvusStore(settings.milvus_uri, settings.milvus)
        stack.push_async_callback(store.close)
        reranker = None
        if settings.retrieval.rerank_model:
            status("Loading the rerank model…")
            reranker = await asyncio.to_thread(
                CrossEncoderReranker, settings.retrieval.rerank_model, device=settings.embedding.device
            )
            stack.callback(reranker.close)
        core = Core(settings, embedder, store, Retriever(embedder, store, settings.retrieval, reranker))
        if require_index:
            await store.require_index()
        if with_llm:
            started = time.perf_counter()
            status(f"Starting the language model {settings.llm.model} (this can take a minute)…")
            core.generator = await stack.enter_async_context(await VLLMGenerator.start(settings.llm))
            status(f"Language model ready ({time.perf_counter() - started:.1f}s).")
            core.pipeline = AnswerPipeline(core.retriever, core.generator, settings.retrieval)
        yield core
