"""The question path end to end: MiniLM, Milvus Lite and the real vLLM engine with the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import BadQuestion, StoreUnavailable
from rag.pipeline import REFUSAL, AnswerPipeline, clean_question
from rag.prompt import Turn
from rag.retrieval import Retriever
from rag.settings import MilvusSettings, RetrievalSettings
from rag.store import MilvusStore
from tests.conftest import index_pages

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DOCS = {
    "index.md": "# In-memory Index\n\n## HNSW\n\nHNSW is a graph-based index. `M` is the maximum degree of a node "
    "and `efConstruction` controls the search range while building the graph. `ef` sets the search range "
    "at query time.\n\n## IVF_FLAT\n\nIVF_FLAT divides vectors into `nlist` clusters and searches `nprobe` of them.\n",
    "collections.md": "# Manage Collections\n\nA collection is like a table. Create one with `create_collection` "
    "and drop it with `drop_collection`.\n",
    "install.md": "# Install Milvus Standalone\n\nRun Milvus with Docker Compose: download the compose file and "
    "run `docker compose up -d`.\n",
}


@pytest.fixture
async def indexed_store(tmp_path: Path, embedder, store) -> MilvusStore:
    report = await index_pages(tmp_path / "docs", DOCS, embedder, store, base_url="https://milvus.io/docs/")
    assert report.pages_new == 3
    return store


def pipeline(embedder, store, generator, **retrieval: object) -> AnswerPipeline:
    settings = RetrievalSettings(**retrieval)
    return AnswerPipeline(Retriever(embedder, store, settings), generator, settings)


async def test_answer_cites_only_retrieved_sources(embedder, indexed_store, generator) -> None:
    answer = await pipeline(embedder, indexed_store, generator).ask("What do the parameters for HNSW mean?")
    assert not answer.refused
    assert answer.text
    assert answer.citations, "an answer always lists its sources"
    retrieved = {hit.url for hit in answer.hits}
    assert {c.url for c in answer.citations} <= retrieved
    assert answer.hits[0].url == "https://milvus.io/docs/index.md#hnsw"
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert {"embed_ms", "search_ms", "generate_ms", "total_ms"} <= set(answer.timings_ms)


async def test_streaming_yields_progress_then_one_answer(embedder, indexed_store, generator) -> None:
    updates = [u async for u in pipeline(embedder, indexed_store, generator).stream("How do I install it?")]
    assert updates[0].stage == "retrieving"
    assert [u.answer is not None for u in updates].count(True) == 1
    assert updates[-1].answer is not None and updates[-1].stage == "done"


async def test_below_threshold_refuses_without_generating(embedder, indexed_store, generator) -> None:
    answer = await pipeline(embedder, indexed_store, generator, min_score=0.99).ask("best pizza in Naples?")
    assert answer.refused
    assert answer.text.startswith(REFUSAL)
    assert "generate_ms" not in answer.timings_ms
    assert 0 < len(answer.citations) <= 3
    assert all("#" not in c.url for c in answer.citations), "closest pages link to the page, not a section"


async def test_follow_up_uses_earlier_turn_for_retrieval(embedder, indexed_store, generator) -> None:
    history = [Turn("How does IVF_FLAT work?", "It clusters vectors [1].")]
    answer = await pipeline(embedder, indexed_store, generator).ask("and what does nprobe do?", history=history)
    assert answer.hits[0].url == "https://milvus.io/docs/index.md#ivf_flat"


async def test_context_is_trimmed_to_the_model_window(embedder, indexed_store, generator) -> None:
    small = generator.with_settings(generator_settings(max_model_len=300, max_tokens=32))
    answer = await pipeline(embedder, indexed_store, small, max_context_chars=20000).ask("What is HNSW?")
    assert answer.text


def generator_settings(**changes: object):
    from rag.settings import LLMSettings

    return LLMSettings(model="x", timeout_s=60, **changes)


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "Please ask"), ("   \n\t ", "Please ask"), ("\x00\x07", "Please ask"), ("x" * 2001, "2,001 characters")],
)
def test_bad_questions_get_clear_messages(question: str, message: str) -> None:
    with pytest.raises(BadQuestion, match=message):
        clean_question(question, 2000)


def test_control_characters_are_removed() -> None:
    assert clean_question("what\x00 is\u202e HNSW\x1b?", 100) == "what is HNSW?"


async def test_store_failure_is_a_store_error(embedder, generator) -> None:
    broken = MilvusStore("http://127.0.0.1:9", MilvusSettings(timeout_s=2))
    with pytest.raises(StoreUnavailable):
        await pipeline(embedder, broken, generator).ask("What is HNSW?")
