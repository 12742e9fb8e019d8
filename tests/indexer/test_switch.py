"""Switching the embedding model: the new model's index is built beside the old one and swapped in by alias, and
questions are embedded by the model that built the collection answering them, so there is no answering gap and no
question is ever compared with another model's vectors (issue 23).

The second model is MiniLM read with CLS pooling instead of mean pooling: other vectors (as from another model), the
same 384 dimensions, and the same exported transformer (pooling runs in numpy), so loading it costs no export.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from indexer.build import make_indexer
from indexer.local import FolderDocs
from rag.embedder import SentenceTransformerEmbedder
from rag.retrieval import Retriever
from rag.runtime import open_core
from rag.settings import EmbeddingSettings, FolderSource, Settings
from rag.store import MODEL_PROPERTY, MilvusStore
from rag.switching import AnsweringEmbedder

pytestmark = pytest.mark.integration

PAGES = {
    "hnsw.md": "# HNSW\n\nHNSW is a graph index: M sets how many neighbours each node keeps, efConstruction how "
    "hard the build searches.\n",
    "partitions.md": "# Partitions\n\nA partition splits a collection; a search can be limited to some partitions "
    "by name to read less data.\n",
    "backup.md": "# Backup\n\nmilvus-backup copies a collection's data and schema to object storage and restores it "
    "into another cluster.\n",
}
QUESTIONS = (
    "what does M mean in HNSW?",
    "how do I search only some partitions?",
    "how does milvus-backup restore a collection into another cluster?",
)


def variant(folder: Path, minilm_dir: str, cache: Path, backend: str, pooling: dict[str, bool]) -> str:
    """MiniLM's folder (its files linked, not copied) with another pooling, and the export of its transformer
    shared with MiniLM's (made by the session embedder): a new model folder that loads in a second."""
    from rag.encoders import files_hash

    base = Path(minilm_dir)
    for path in base.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    config = folder / "1_Pooling" / "config.json"
    pooled = {**json.loads(config.read_text()), **pooling}
    config.unlink()
    config.write_text(json.dumps(pooled))
    if backend != "torch":
        (cache / f"{backend}-{files_hash(folder)}").symlink_to(cache / f"{backend}-{files_hash(base)}")
    return str(folder)


@pytest.fixture(scope="session")
def cls_minilm(tmp_path_factory: pytest.TempPathFactory, minilm_dir: str, embedding_cache: Path, embedder: Any) -> str:
    cls = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    return variant(tmp_path_factory.mktemp("cls-minilm"), minilm_dir, embedding_cache, embedder.backend, cls)


@pytest.fixture(scope="session")
def cls_embedder(cls_minilm: str, embedding_cache: Path) -> Any:
    model = SentenceTransformerEmbedder(EmbeddingSettings(model=cls_minilm, threads=1), embedding_cache)
    yield model
    model.close()


@pytest.fixture
def docs(tmp_path: Path) -> FolderDocs:
    root = tmp_path / "docs"
    for name, text in PAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return FolderDocs(FolderSource(id="docs", path=root, base_url="https://docs.example/"))


async def answers(retriever: Retriever) -> list[tuple[str, float]]:
    """Each question's best page and its cosine: the cosine says which model's vectors met."""
    found = []
    for question in QUESTIONS:
        best = (await retriever.retrieve(question)).hits[0]
        found.append((best.page_id, round(best.similarity, 4)))
    return found


def retriever(embedder: Any, store: MilvusStore, settings: Settings) -> Retriever:
    return Retriever(embedder, store, settings.retrieval, settings.tuning)


def collections(store: MilvusStore) -> Any:
    return store._call("list", lambda client: sorted(client.list_collections()))


def recorded_model(store: MilvusStore, name: str) -> Any:
    return store._call("describe", lambda client: client.describe_collection(name)["properties"].get(MODEL_PROPERTY))


class Paused:
    """An embedder that stops before embedding its second batch of passages until told to go on: with one page a
    batch, the run has then written exactly one page."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.calls = 0
        self.second = asyncio.Event()
        self.go = asyncio.Event()

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    async def embed_query(self, text: str) -> list[float]:
        return list(await self.inner.embed_query(text))

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == 2:
            self.second.set()
            await self.go.wait()
        return list(await self.inner.embed_passages(texts))


class Loaded:
    """The models an ``AnsweringEmbedder`` loads, real, and whether it released them."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.models: list[str] = []
        self.closed: list[str] = []

    def __call__(self, settings: EmbeddingSettings) -> Any:
        model = SentenceTransformerEmbedder(settings, self.cache)
        self.models.append(settings.model)
        close = model.close

        def closing() -> None:
            self.closed.append(settings.model)
            close()

        model.close = closing  # type: ignore[method-assign]
        return model


async def test_a_model_change_is_rebuilt_beside_the_old_index_with_no_gap(
    make_settings: Callable[..., Settings], docs: FolderDocs, embedder: Any, cls_minilm: str, cls_embedder: Any
) -> None:
    """The run with the new model writes a new collection while the old one, whole, keeps answering the old model's
    questions; the alias moves when the run is complete and the old collection is dropped."""
    old = make_settings(indexer={"upsert_batch": 1})
    store = MilvusStore(old.milvus_uri, old.milvus)
    try:
        await make_indexer(old, embedder, store).run([docs])
        asking = retriever(embedder, store, old)  # questions embedded by the old model
        before = await answers(asking)
        assert [page for page, _ in before] == list(PAGES)
        (first,) = await collections(store)

        new = make_settings(embedding={"model": cls_minilm}, indexer={"upsert_batch": 1})
        paused = Paused(cls_embedder)
        run = asyncio.create_task(make_indexer(new, paused, store).run([docs]))
        await asyncio.wait_for(paused.second.wait(), 60)  # one page embedded by the new model is written
        assert await answers(asking) == before, "the answering index mixed in the new model's vectors"
        assert store.rebuilding and first in await collections(store)
        paused.go.set()
        report = await run

        assert report.pages_new == len(PAGES) and not store.rebuilding
        (behind,) = await collections(store)  # the old collection is gone
        assert behind != first and await recorded_model(store, old.milvus.collection) == cls_minilm
        now = await answers(retriever(cls_embedder, store, new))
        assert [page for page, _ in now] == list(PAGES) and now != before  # the new model's vectors answer
    finally:
        await store.close()


async def test_an_interrupted_model_rebuild_resumes(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    docs: FolderDocs,
    embedder: Any,
    cls_minilm: str,
    cls_embedder: Any,
) -> None:
    old = make_settings()
    store = MilvusStore(old.milvus_uri, old.milvus)
    new = make_settings(embedding={"model": cls_minilm})
    broken = FolderDocs(FolderSource(id="gone", path=tmp_path / "missing", base_url="https://gone.example/"))
    try:
        await make_indexer(old, embedder, store).run([docs])
        before = await answers(retriever(embedder, store, old))
        (first,) = await collections(store)
        report = await make_indexer(new, cls_embedder, store).run([docs, broken])
        assert report.sources_failed and store.rebuilding  # a source failed: not complete, no swap
        assert await answers(retriever(embedder, store, old)) == before
        pending = await collections(store)
        assert len(pending) == 2 and first in pending
    finally:
        await store.close()

    restarted = MilvusStore(new.milvus_uri, new.milvus)  # a new process finds the half-built one
    try:
        report = await make_indexer(new, cls_embedder, restarted).run([docs])
        assert report.pages_unchanged == len(PAGES) and report.pages_new == 0  # resumed, not rebuilt from scratch
        assert not restarted.rebuilding and await collections(restarted) == [n for n in pending if n != first]
    finally:
        await restarted.close()


async def test_going_back_to_the_old_model_mid_rebuild_leaves_the_old_index_whole(
    make_settings: Callable[..., Settings], docs: FolderDocs, embedder: Any, cls_minilm: str, cls_embedder: Any
) -> None:
    """A switch given up halfway (the run stopped, the setting reverted): the half-built collection is dropped and
    the old one, which answered throughout, is kept as it is. The index record followed the rebuild, so it is read
    again from the collection that answers rather than trusted: no page of it is deleted or embedded again."""
    old = make_settings(indexer={"upsert_batch": 1})
    store = MilvusStore(old.milvus_uri, old.milvus)
    try:
        await make_indexer(old, embedder, store).run([docs])
        before = await answers(retriever(embedder, store, old))
        (first,) = await collections(store)
        new = make_settings(embedding={"model": cls_minilm}, indexer={"upsert_batch": 1})
        paused = Paused(cls_embedder)
        run = asyncio.create_task(make_indexer(new, paused, store).run([docs]))
        await asyncio.wait_for(paused.second.wait(), 60)  # one page of the new model written and recorded
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

        report = await make_indexer(old, embedder, store).run([docs])  # the old model again
        assert report.pages_unchanged == len(PAGES) and report.chunks_written == 0 and report.pages_repaired == 0
        assert await collections(store) == [first] and not store.rebuilding
        assert await answers(retriever(embedder, store, old)) == before
    finally:
        await store.close()


async def test_questions_are_embedded_by_the_model_that_built_the_answering_index(
    make_settings: Callable[..., Settings], docs: FolderDocs, embedder: Any, cls_minilm: str, cls_embedder: Any
) -> None:
    """A bot restarted with the new model over the old model's index embeds questions with the old model (loaded
    once) until its own index run moves the alias, then with the configured one, and releases the old model."""
    old = make_settings()
    store = MilvusStore(old.milvus_uri, old.milvus)
    try:
        await make_indexer(old, embedder, store).run([docs])
        before = await answers(retriever(embedder, store, old))
    finally:
        await store.close()

    new = make_settings(embedding={"model": cls_minilm})
    bot = MilvusStore(new.milvus_uri, new.milvus)
    loaded = Loaded(new.embedding_cache)
    queries = AnsweringEmbedder(cls_embedder, new.embedding, bot, load=loaded)
    asking = retriever(queries, bot, new)
    try:
        assert await answers(asking) == before  # the old model's question vectors
        await bot.ensure_collection(cls_embedder.dimension, new.embedding.model)  # the bot's start
        assert bot.rebuilding and await answers(asking) == before
        assert loaded.models == [old.embedding.model] and loaded.closed == []  # loaded once

        await make_indexer(new, cls_embedder, bot).run([docs])  # the bot's periodic run moves the alias
        after = await answers(asking)
        assert after == await answers(retriever(cls_embedder, bot, new)) and after != before
        assert loaded.closed == [old.embedding.model]  # the old model is released
        assert loaded.models == [old.embedding.model]
    finally:
        queries.close()
        await bot.close()


async def test_a_bot_follows_an_alias_moved_by_another_process(
    monkeypatch: pytest.MonkeyPatch,
    make_settings: Callable[..., Settings],
    docs: FolderDocs,
    embedder: Any,
    cls_minilm: str,
    cls_embedder: Any,
) -> None:
    """An indexer beside the bot (a Milvus server serves both) finishes the rebuild: the bot notices the alias moved
    when it next looks (every ``ALIAS_CHECK_S``) and embeds questions with the configured model from then on."""
    monkeypatch.setattr("rag.store.ALIAS_CHECK_S", 0.0)
    old = make_settings()
    new = make_settings(embedding={"model": cls_minilm})
    bot = MilvusStore(new.milvus_uri, new.milvus)
    indexer_store = MilvusStore(new.milvus_uri, new.milvus)
    queries = AnsweringEmbedder(cls_embedder, new.embedding, bot, cache_dir=new.embedding_cache)
    asking = retriever(queries, bot, new)
    try:
        await make_indexer(old, embedder, indexer_store).run([docs])
        before = await answers(asking)
        assert before == await answers(retriever(embedder, indexer_store, old))
        await make_indexer(new, cls_embedder, indexer_store).run([docs])
        assert not bot.rebuilding and not indexer_store.rebuilding
        after = await answers(asking)
        assert after == await answers(retriever(cls_embedder, indexer_store, new)) and after != before
    finally:
        queries.close()
        await indexer_store.close()
        await bot.close()


async def test_an_unloadable_recorded_model_falls_back_to_the_configured_one_with_a_warning(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    docs: FolderDocs,
    embedder: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The model folder that built the answering index was deleted: questions are embedded with the configured
    model, and the log says once that answers are degraded until the re-index finishes."""
    gone = tmp_path / "embedders" / "all-MiniLM-L6-v2-adapted-20250101T000000Z"
    built = make_settings(embedding={"model": str(gone)})
    store = MilvusStore(built.milvus_uri, built.milvus)
    try:
        await make_indexer(built, embedder, store).run([docs])  # MiniLM's vectors, recorded as the gone folder's
        assert await recorded_model(store, built.milvus.collection) == str(gone)
        before = await answers(retriever(embedder, store, built))
    finally:
        await store.close()

    configured = make_settings()
    with caplog.at_level(logging.WARNING, logger="rag.switching"):
        async with open_core(configured, with_llm=False) as core:  # the bot's wiring, and its start (warm)
            await core.queries.warm()
            assert await answers(core.retriever) == before
            assert await answers(core.retriever) == before
    warned = [r.getMessage() for r in caplog.records if r.name == "rag.switching" and r.levelno >= logging.WARNING]
    assert len(warned) == 1, warned
    assert str(gone) in warned[0] and "degraded until the re-index" in warned[0]


async def test_a_collection_from_before_model_records_is_not_rebuilt(
    make_settings: Callable[..., Settings], docs: FolderDocs, embedder: Any, cls_minilm: str
) -> None:
    """An existing install's collection records no model: it counts as built by the configured one (nothing is
    re-embedded), and the run writes the record down so that a later switch is seen."""
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    loaded = Loaded(settings.embedding_cache)
    queries = AnsweringEmbedder(embedder, settings.embedding, store, load=loaded)
    try:
        await make_indexer(settings, embedder, store).run([docs])
        before = await answers(retriever(embedder, store, settings))
        name = settings.milvus.collection
        (first,) = await collections(store)
        await store._call("legacy", lambda c: c.drop_collection_properties(first, property_keys=[MODEL_PROPERTY]))
        assert await recorded_model(store, name) is None

        assert await answers(retriever(queries, store, settings)) == before and loaded.models == []
        report = await make_indexer(settings, embedder, store).run([docs])
        assert report.pages_unchanged == len(PAGES) and report.chunks_written == 0 and not store.rebuilding
        assert await collections(store) == [first] and await recorded_model(store, name) == settings.embedding.model

        await store.ensure_collection(embedder.dimension, cls_minilm)  # a later switch is a rebuild
        assert store.rebuilding
    finally:
        queries.close()
        await store.close()


async def test_spares_of_other_models_are_dropped_and_another_dimension_is_rebuilt_beside(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.ensure_collection(8, "model-a")
        (first,) = await collections(store)
        await store.ensure_collection(8, "model-b")
        assert store.rebuilding
        building = await collections(store)
        await store.ensure_collection(8, "model-b")  # resumed
        assert store.rebuilding and await collections(store) == building
        await store.ensure_collection(16, "model-c")  # another dimension is rebuilt beside too (it was an error)
        spares = [n for n in await collections(store) if n != first]
        assert store.rebuilding and len(spares) == 1 and spares[0] not in building  # model-b's spare is dropped
        assert await recorded_model(store, spares[0]) == "model-c"
        assert await recorded_model(store, settings.milvus.collection) == "model-a"
        await store.ensure_collection(8, "model-a")  # back to the model that answers: no rebuild left
        assert not store.rebuilding and await collections(store) == [first]
    finally:
        await store.close()


async def test_moving_to_an_approximate_index_keeps_the_model_record(make_settings: Callable[..., Settings]) -> None:
    from tests.rag.test_store import _chunks, _vectors

    settings = make_settings(milvus={"auto_index_rows": 10})
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.ensure_collection(8, "model-a")
        await store.upsert(_chunks(), _vectors(24))
        assert await store.fit_index() == "IVF_FLAT"
        assert await recorded_model(store, settings.milvus.collection) == "model-a"
        await store.ensure_collection(8, "model-a")
        assert not store.rebuilding
    finally:
        await store.close()
