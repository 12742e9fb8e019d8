"""A re-index after a layout change is built beside the old collection and swapped in by alias: searches never
go without an index, an interrupted rebuild resumes, and an incomplete one never replaces the old index."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from indexer.build import make_indexer
from indexer.local import FolderDocs
from rag.retrieval import Retriever
from rag.settings import FolderSource, Settings
from rag.store import SCHEMA_FIELDS, MilvusStore

pytestmark = pytest.mark.integration

OLD_TEXT = "HNSW (old index) is a graph index whose M sets each node's degree."
NEW_PAGE = "# HNSW\n\nHNSW (new index) is a graph index; efConstruction sets how hard the build searches.\n"


def old_layout_collection(settings: Settings, vector: list[float]) -> None:
    """The layout of commit 511de12 (no kind/section/headings fields), holding one searchable page."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(settings.milvus_uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
    for name in ("source_id", "page_id", "page_key", "url", "title", "heading", "page_hash"):
        schema.add_field(name, DataType.VARCHAR, max_length=512)
    schema.add_field("ordinal", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=8192)
    schema.add_field("lexical", DataType.VARCHAR, max_length=8192, enable_analyzer=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=len(vector))
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function("bm25", FunctionType.BM25, input_field_names=["lexical"], output_field_names=["sparse"])
    )
    params = client.prepare_index_params()
    params.add_index("vector", index_type="FLAT", metric_type="COSINE")
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(settings.milvus.collection, schema=schema, index_params=params)
    row = {"id": "old-0", "source_id": "docs", "page_id": "hnsw.md", "page_key": "hnsw.md", "ordinal": 0}
    row.update(url="https://docs.example/hnsw", title="HNSW", heading="HNSW", page_hash="x", text=OLD_TEXT)
    client.insert(settings.milvus.collection, [{**row, "lexical": "hnsw graph index node degree", "vector": vector}])
    client.flush(settings.milvus.collection)
    client.close()


@pytest.fixture
async def old_index(tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any) -> tuple[Settings, Path]:
    """Settings whose collection has the old layout and one old page, and a docs folder with the new page."""
    settings = make_settings()
    old_layout_collection(settings, (await embedder.embed_passages([OLD_TEXT]))[0])
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hnsw.md").write_text(NEW_PAGE)
    return settings, docs


def collections(store: MilvusStore) -> Any:
    return store._call("list", lambda client: client.list_collections())


async def test_a_layout_change_is_rebuilt_beside_the_old_index_with_no_gap(
    old_index: tuple[Settings, Path], embedder: Any
) -> None:
    settings, docs = old_index
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
    answers: list[str] = []
    failures: list[BaseException] = []
    indexing = asyncio.Event()
    first_answer = asyncio.Event()

    async def keep_asking() -> None:
        while not indexing.is_set():
            try:
                result = await retriever.retrieve("what is HNSW?")
                answers.append(result.hits[0].text if result.hits else "")
                first_answer.set()
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(0)

    try:
        asker = asyncio.create_task(keep_asking())
        await first_answer.wait()  # searches work on the old layout before the run starts
        source = FolderDocs(FolderSource(id="docs", path=docs, base_url="https://docs.example/"))
        report = await make_indexer(settings, embedder, store).run([source])
        indexing.set()
        await asker
        assert report.pages_new == 1 and not store.rebuilding
        assert failures == [] and "" not in answers  # no answer went without an index
        assert "old index" in answers[0] and "new index" in answers[-1]
        names = await collections(store)
        assert len(names) == 1 and names[0].startswith(settings.milvus.collection + "__")  # the old one is gone
        fields = await store._call("d", lambda c: c.describe_collection(settings.milvus.collection)["fields"])
        assert {f["name"] for f in fields} == SCHEMA_FIELDS
        assert "new index" in (await retriever.retrieve("what is HNSW?")).hits[0].text
    finally:
        indexing.set()
        await store.close()


async def test_an_incomplete_rebuild_keeps_the_old_index_and_resumes(
    tmp_path: Path, old_index: tuple[Settings, Path], embedder: Any
) -> None:
    settings, docs = old_index
    good = FolderDocs(FolderSource(id="docs", path=docs, base_url="https://docs.example/"))
    broken = FolderDocs(FolderSource(id="gone", path=tmp_path / "missing", base_url="https://gone.example/"))

    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        report = await make_indexer(settings, embedder, store).run([good, broken])
        assert report.sources_failed and store.rebuilding  # a source failed: not complete, no swap
        hits = (await Retriever(embedder, store, settings.retrieval, settings.tuning).retrieve("what is HNSW?")).hits
        assert "old index" in hits[0].text
        pending = [n for n in await collections(store) if n != settings.milvus.collection]
        assert len(pending) == 1
    finally:
        await store.close()

    restarted = MilvusStore(settings.milvus_uri, settings.milvus)  # a new process finds the half-built one
    try:
        report = await make_indexer(settings, embedder, restarted).run([good])
        assert report.pages_unchanged == 1 and report.pages_new == 0  # resumed, not rebuilt from scratch
        assert not restarted.rebuilding and await collections(restarted) == pending
        hits = (
            await Retriever(embedder, restarted, settings.retrieval, settings.tuning).retrieve("what is HNSW?")
        ).hits
        assert "new index" in hits[0].text
    finally:
        await restarted.close()


async def test_a_new_index_is_an_alias_of_a_stamped_collection(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.ensure_collection(384)
        alias = await store._call("a", lambda c: c.describe_alias(settings.milvus.collection))
        assert alias["collection_name"].startswith(settings.milvus.collection + "__")
        assert not store.rebuilding
        await store.ensure_collection(384)  # idempotent: no second collection
        assert await collections(store) == [alias["collection_name"]]
    finally:
        await store.close()


async def test_a_grown_index_moves_to_ivf_flat_without_a_gap(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    """index_type=auto: past auto_index_rows, the run after which it grew copies the vectors into an IVF_FLAT
    collection beside the FLAT one and moves the alias; searches go on throughout and find the same pages."""
    import shutil

    from rag.store import _vector_index
    from tests.conftest import CORPUS

    docs = tmp_path / "docs"
    docs.mkdir()
    for page in sorted((CORPUS / "userGuide").glob("*.md"))[:6]:
        shutil.copy(page, docs / page.name)
    source = FolderDocs(FolderSource(id="docs", path=docs, base_url="https://docs.example/"))
    small = make_settings()  # 20k rows: this corpus stays exact
    store = MilvusStore(small.milvus_uri, small.milvus)
    try:
        first = await make_indexer(small, embedder, store).run([source])
        assert (
            first.chunks_written > 20 and await store._call("i", lambda c: _vector_index(c, "docent_chunks")) == "FLAT"
        )
        chosen = make_settings(milvus={"index_type": "FLAT", "auto_index_rows": 20}).milvus
        assert await MilvusStore(small.milvus_uri, chosen).fit_index() is None  # an index type set is kept
    finally:
        await store.close()

    settings = make_settings(milvus={"auto_index_rows": 20})
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
    question = "How do I insert entities into a collection?"
    before = (await retriever.retrieve(question)).hits
    answers: list[list[str]] = []
    failures: list[BaseException] = []
    done = asyncio.Event()

    async def keep_asking() -> None:
        while not done.is_set():
            try:
                answers.append([h.chunk_id for h in (await retriever.retrieve(question)).hits])
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(0)

    try:
        asker = asyncio.create_task(keep_asking())
        again = await make_indexer(settings, embedder, store).run([source])
        done.set()
        await asker
        assert again.pages_unchanged == 6 and again.chunks_written == 0  # nothing embedded again
        assert await store._call("i", lambda c: _vector_index(c, settings.milvus.collection)) == "IVF_FLAT"
        assert await store.count() == first.chunks_written
        assert failures == [] and answers and all(answers)  # no search failed or came back empty
        after = (await retriever.retrieve(question)).hits  # approximate now: 128 lists for 270 rows
        assert after[0].chunk_id == before[0].chunk_id and after[0].page_id == "insert-update-delete.md"
        assert len(await collections(store)) == 1  # the FLAT one is gone
        assert await store.fit_index() is None  # once is enough
    finally:
        done.set()
        await store.close()
