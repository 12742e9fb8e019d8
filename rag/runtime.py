"""Open the shared resources in order and close them in reverse: the one wiring used by every entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

from rag.embedder import SentenceTransformerEmbedder
from rag.generator import VLLMGenerator
from rag.pipeline import Answering, AnswerPipeline
from rag.private import private_dir
from rag.rerank import CrossEncoderReranker
from rag.retrieval import Retriever
from rag.settings import Settings, prepare_process_env
from rag.starting import RECORD_FILE, BackgroundEngine, StartingPipeline
from rag.store import MilvusStore
from rag.switching import AnsweringEmbedder

logger = logging.getLogger(__name__)
Status = Callable[[str], None]


@dataclass
class Core:
    settings: Settings
    embedder: SentenceTransformerEmbedder
    store: MilvusStore
    retriever: Retriever
    queries: AnsweringEmbedder  # the retriever's: the model of the collection that answers (see rag.switching)
    generator: VLLMGenerator | None = None  # None while it starts in the background
    pipeline: Answering | None = None


def _quiet(_: str) -> None:
    return None


@contextlib.asynccontextmanager
async def open_core(
    settings: Settings,
    *,
    with_llm: bool,
    require_index: bool = False,
    llm_in_background: bool = False,
    status: Status = _quiet,
) -> AsyncIterator[Core]:
    """Embedder, store and (optionally) the LLM engine, plus the pipeline over them.

    The engine starts first and concurrently with the rest (it is the slow part), except with ``require_index``,
    which fails fast, before the slow engine start, when nothing is indexed yet. With ``llm_in_background`` the
    core is yielded while the engine still starts, its pipeline saying "starting up" until it is up (the bot
    connects meanwhile); otherwise it is yielded once the engine is up.
    """
    prepare_process_env(settings)
    private_dir(settings.data_dir)  # questions, votes and the salts are kept here: readable by this user only
    async with contextlib.AsyncExitStack() as stack:
        engine: BackgroundEngine[VLLMGenerator] | None = None

        async def start_engine() -> BackgroundEngine[VLLMGenerator]:
            return await stack.enter_async_context(
                BackgroundEngine(
                    partial(VLLMGenerator.start, settings.llm),
                    model=settings.llm.model,
                    record=settings.data_dir / RECORD_FILE,
                    status=status,
                )
            )

        if with_llm and not require_index:
            engine = await start_engine()
        started = time.perf_counter()
        status("Loading the embedding model…")
        embedder = await asyncio.to_thread(
            SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache, status
        )
        stack.callback(embedder.close)
        status(f"Embedding model ready ({time.perf_counter() - started:.1f}s).")

        store = MilvusStore(settings.milvus_uri, settings.milvus)
        stack.push_async_callback(store.close)
        queries = AnsweringEmbedder(embedder, settings.embedding, store, cache_dir=settings.embedding_cache)
        stack.callback(queries.close)
        reranker = None
        if settings.retrieval.rerank_model:
            status("Loading the rerank model…")
            reranker = await asyncio.to_thread(
                CrossEncoderReranker, settings.retrieval.rerank_model, device=settings.embedding.device
            )
            stack.callback(reranker.close)
        retriever = Retriever(queries, store, settings.retrieval, settings.tuning, reranker)
        core = Core(settings, embedder, store, retriever, queries)
        if require_index:
            await store.require_index()
        if with_llm and engine is None:
            engine = await start_engine()
        if engine is not None and llm_in_background:
            core.pipeline = StartingPipeline(core.retriever, engine, settings.retrieval, settings.answer)
        elif engine is not None:
            core.generator = await engine.wait()
            core.pipeline = AnswerPipeline(core.retriever, core.generator, settings.retrieval, settings.answer)
        yield core
