"""Retrieval: page ranking (pure), and hybrid search, confidence, reranking and schema upgrades on real Milvus Lite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.lexical import lexical_text
from rag.models import Hit
from rag.query import search_text
from rag.rerank import CrossEncoderReranker
from rag.retrieval import Retriever, rank_pages
from rag.settings import RetrievalSettings, Settings
from rag.store import SCHEMA_FIELDS, MilvusStore
from tests.conftest import index_pages


def hit(page: str, score: float, n: int = 0) -> Hit:
    return Hit(f"{page}-{n}", page, f"https://d/{page}#{n}", page, "", "text", score, score)


def test_pages_are_ranked_by_best_chunk_plus_discounted_support() -> None:
    # one strong chunk of "a" vs three good chunks of "b": b covers the topic throughout
    hits = [hit("a", 1.0), hit("b", 0.8, 0), hit("b", 0.8, 1), hit("b", 0.8, 2), hit("c", 0.5)]
    ranked = rank_pages(hits, top_k=3, per_page=2, bonus=0.3)
    assert [h.page_id for h in ranked] == ["b", "b", "a", "c"]  # 0.8 + .24 + .072 > 1.0
    assert [h.chunk_id for h in ranked[:2]] == ["b-0", "b-1"], "a page's best chunks, best first"
    plain = rank_pages(hits, top_k=2, per_page=1, bonus=0.0)
    assert [h.page_id for h in plain] == ["a", "b"], "without the bonus, pages keep their best chunk's order"


def test_follow_ups_carry_the_previous_question() -> None:
    assert (
        search_text("and in python?", ["how do I delete by id", "old"], 1, normalise=False).dense
        == "old and in python?"
    )
    assert search_text("and in python?", ["how do I delete by id"], 0, normalise=False).lexical == "and in python?"


DOCS = {
    "timeouts.md": "# Timeouts\n\nClients give up after the gRPC deadline. Raise `zorblax_grace_ms` when "
    "long searches are cut off by the proxy.\n",
    "search.md": "# Search\n\nA search compares the query vector with stored vectors and returns the top-k.\n",
    "deadlines.md": "# Deadlines\n\nEvery request has a deadline; slow requests fail with DEADLINE_EXCEEDED.\n",
    "install.md": "# Install\n\nRun the container with Docker Compose.\n",
}


@pytest.fixture
async def docs_store(tmp_path: Path, embedder, store) -> MilvusStore:
    await index_pages(tmp_path / "docs", DOCS, embedder, store)
    return store


@pytest.mark.integration
async def test_hybrid_search_finds_an_exact_identifier(embedder, docs_store) -> None:
    retriever = Retriever(embedder, docs_store, RetrievalSettings(mode="hybrid"))
    result = await retriever.retrieve("what does zorblax grace do")
    assert result.pages[0] == "timeouts.md"
    assert {"embed_ms", "search_ms"} <= set(result.timings_ms)


@pytest.mark.integration
async def test_bm25_terms_lift_a_page_the_vector_alone_ranks_low(embedder, docs_store) -> None:
    vector = await embedder.embed_query("run the container with docker compose")
    dense = await docs_store.search(vector, 4)
    fused = await docs_store.search(vector, 4, lexical=lexical_text("zorblax grace"), rrf_k=60)
    assert dense[0].page_id == "install.md" and fused[0].page_id == "timeouts.md"


@pytest.mark.integration
async def test_confidence_is_the_dense_cosine_whatever_the_fusion(embedder, docs_store) -> None:
    question = "How do I install it with docker compose?"
    result = await Retriever(embedder, docs_store, RetrievalSettings(mode="hybrid")).retrieve(question)
    best = max(result.hits, key=lambda h: h.similarity)
    query = await embedder.embed_query(question)
    passage = (await embedder.embed_passages([best.context_text]))[0]
    assert result.confidence == pytest.approx(sum(a * b for a, b in zip(query, passage, strict=True)), abs=1e-3)
    assert result.hits[0].score < 1, "hybrid scores are fused reciprocal ranks, not cosines"
    dense = await Retriever(embedder, docs_store, RetrievalSettings(mode="dense")).retrieve(question)
    assert dense.confidence == pytest.approx(result.confidence, abs=1e-3)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory, minilm_dir: str) -> str:
    """A random-weight BERT cross-encoder on MiniLM's tokenizer: real CrossEncoder code, meaningless scores."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    config.num_labels = 1
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.mark.integration
async def test_reranker_reorders_candidates_by_its_own_scores(embedder, docs_store, tiny_cross_encoder) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    try:
        settings = RetrievalSettings(top_k=4, chunks_per_page=1, page_bonus=0.0)
        question = "how do I install it"
        result = await Retriever(embedder, docs_store, settings, reranker).retrieve(question)
        expected = await reranker.score(question, [h.context_text for h in result.hits])
        assert [h.score for h in result.hits] == pytest.approx(expected)
        assert [h.score for h in result.hits] == sorted(expected, reverse=True)
        assert all(0 < s < 1 for s in expected)
        assert "rerank_ms" in result.timings_ms
    finally:
        reranker.close()


@pytest.mark.integration
async def test_an_older_collection_layout_is_rebuilt(make_settings: Callable[..., Settings]) -> None:
    from pymilvus import DataType, MilvusClient

    settings = make_settings()
    client = MilvusClient(settings.milvus_uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
    client.create_collection(settings.milvus.collection, schema=schema)
    client.close()

    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.ensure_collection(384)
        fields = await store._call("describe", lambda c: c.describe_collection(settings.milvus.collection)["fields"])
        assert {f["name"] for f in fields} == SCHEMA_FIELDS
        assert await store.count() == 0
    finally:
        await store.close()
