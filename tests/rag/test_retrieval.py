"""Retrieval: page ranking (pure), and hybrid search, confidence, reranking and schema upgrades on real Milvus Lite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from indexer.chunking import Granularity
from indexer.local import FolderDocs
from indexer.runner import Indexer
from rag.lexical import lexical_text
from rag.models import Hit
from rag.query import search_text
from rag.rerank import CrossEncoderReranker
from rag.retrieval import Retriever, rank_pages
from rag.scope import SearchScope
from rag.settings import FolderSource, RetrievalSettings, TuningSettings
from rag.store import MilvusStore
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


def part(page: str, section: int, score: float, kind: str = "window", n: int = 0) -> Hit:
    return Hit(f"{page}-{section}-{n}", page, "", page, "", f"{page} section {section}", score, score, kind, section)


def test_windows_of_one_section_count_once_and_pass_their_section_once() -> None:
    # "a": one section hit by its own vector and by four of its windows; "b": two distinct sections
    hits = [
        part("a", 0, 1.0),
        part("a", 0, 0.95, n=1),
        part("a", 0, 0.9, "section"),
        part("a", 0, 0.9, n=2),
        part("a", 0, 0.9, n=3),
        part("b", 0, 0.8, "section"),
        part("b", 1, 0.75),
    ]
    ranked = rank_pages(hits, top_k=2, per_page=2, bonus=0.3)
    assert [h.page_id for h in ranked] == ["b", "b", "a"], "b: 0.8 + 0.3 * 0.75 > a: 1.0 (its windows are one)"
    assert [h.text for h in ranked] == ["b section 0", "b section 1", "a section 0"], "no section twice"
    assert ranked[-1].chunk_id == "a-0-0", "a section is represented by its best match"
    plain = rank_pages(hits, top_k=2, per_page=2, bonus=0.0)
    assert [h.page_id for h in plain] == ["a", "b", "b"]


def test_window_weight_and_distinct_sections_weigh_on_page_order() -> None:
    hits = [part("a", 0, 1.0), part("b", 0, 0.9, "section"), part("b", 1, 0.5), part("b", 2, 0.5)]
    assert rank_pages(hits, top_k=1, per_page=1, bonus=0.0)[0].page_id == "a"
    assert rank_pages(hits, top_k=1, per_page=1, bonus=0.0, window_weight=0.8)[0].page_id == "b"
    lifted = rank_pages(hits, top_k=1, per_page=1, bonus=0.0, section_weight=0.2)  # 0.9 * (1 + 0.2 ln 3) > 1
    assert lifted[0].page_id == "b"


def test_one_strong_passage_is_not_outvoted_by_many_weak_ones() -> None:
    """Issue 22's run: an approved community answer (one chunk) was the top hit of both searches, cosine 0.417
    against at most 0.161 for any docs chunk, fused 2 / (rrf_k + 1) = 0.182, the most one chunk can get. Summed, the
    weak matches of long pages came first: single-vector-search 23 sections 0.245, index-vector-fields 8, 0.189."""
    community = Hit("c", "learned/1", "https://discord.com/channels/1/2/3", "Community answer", "", "t", 2 / 11, 0.417)
    long_page = [part("single-vector-search", i, 0.13 if i == 0 else 0.077, "section") for i in range(23)]
    medium_page = [part("index-vector-fields", i, 0.12 if i == 0 else 0.047, "section") for i in range(8)]
    docs = [replace(h, similarity=0.161 if h.section == 0 else 0.12) for h in long_page + medium_page]
    hits = sorted([community, *docs], key=lambda h: -h.score)
    tuning = TuningSettings()
    ranked = rank_pages(hits, top_k=3, per_page=1, bonus=tuning.page_bonus, support_ratio=tuning.page_support_ratio)
    assert [h.page_id for h in ranked] == ["learned/1", "single-vector-search", "index-vector-fields"]
    summed = rank_pages(hits, top_k=3, per_page=1, bonus=tuning.page_bonus)  # every page lifted by its matches
    assert [h.page_id for h in summed] == ["single-vector-search", "index-vector-fields", "learned/1"]
    close = [replace(h, similarity=0.4) for h in docs]  # as close as the answer: a page covering it throughout
    lifted = rank_pages(
        sorted([community, *close], key=lambda h: -h.score), top_k=3, per_page=1, bonus=0.6, support_ratio=0.5
    )
    assert lifted[0].page_id == "single-vector-search"


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
    retriever = Retriever(embedder, docs_store, RetrievalSettings(), TuningSettings(mode="hybrid"))
    result = await retriever.retrieve("what does zorblax grace do")
    assert result.pages[0] == "timeouts.md"
    assert {"embed_ms", "search_ms"} <= set(result.timings_ms)


@pytest.mark.integration
async def test_bm25_terms_lift_a_page_the_vector_alone_ranks_low(embedder, docs_store) -> None:
    vector = await embedder.embed_query("run the container with docker compose")
    dense = await docs_store.search(vector, 4)
    fused = await docs_store.search(vector, 4, lexical=lexical_text("zorblax grace"), rrf_k=60)
    assert dense[0].page_id == "install.md" and fused[0].page_id == "timeouts.md"


TITLED = {
    "snapshots.md": "# Snapshots\n\nCopy the data to a safe place before an upgrade.\n",
    "alpha.md": "# Alpha\n\nSnapshots, snapshots: the alpha release writes snapshots and reads snapshots back.\n",
    "beta.md": "# Beta\n\nThe beta release takes snapshots hourly; old snapshots expire; snapshots are small.\n",
}


@pytest.mark.integration
async def test_heading_search_lifts_the_page_whose_title_is_the_question(tmp_path: Path, embedder, store) -> None:
    await index_pages(tmp_path / "docs", TITLED, embedder, store)
    vector = await embedder.embed_query("a recipe for lemon cake")  # the dense list says nothing useful
    terms = lexical_text("snapshots")
    plain = await store.search(vector, 3, lexical=terms, rrf_k=10)
    titled = await store.search(vector, 3, lexical=terms, rrf_k=10, headings=True)
    assert plain[0].page_id != "snapshots.md", "in the body, the title page says 'snapshots' least often"
    assert titled[0].page_id == "snapshots.md"


@pytest.mark.integration
async def test_confidence_is_the_dense_cosine_whatever_the_fusion(embedder, docs_store) -> None:
    question = "How do I install it with docker compose?"
    result = await Retriever(embedder, docs_store, RetrievalSettings(), TuningSettings(mode="hybrid")).retrieve(
        question
    )
    best = max(result.hits, key=lambda h: h.similarity)
    query = await embedder.embed_query(question)
    passage = (await embedder.embed_passages([best.context_text]))[0]
    assert result.confidence == pytest.approx(sum(a * b for a, b in zip(query, passage, strict=True)), abs=1e-3)
    assert result.hits[0].score < 1, "hybrid scores are fused reciprocal ranks, not cosines"
    dense = await Retriever(embedder, docs_store, RetrievalSettings(), TuningSettings(mode="dense")).retrieve(question)
    assert dense.confidence == pytest.approx(result.confidence, abs=1e-3)


@pytest.mark.integration
async def test_a_window_match_brings_its_whole_section_into_the_passages(tmp_path: Path, embedder, store) -> None:
    filler = " ".join(f"Paragraph {i} covers the replication log and the compaction of segments." for i in range(30))
    docs = {
        "ops.md": f"# Operations\n\n## Storage\n\n{filler} To rotate the zorblax audit key, run "
        f"`vault rotate`. {filler}\n",
        "install.md": DOCS["install.md"],
    }
    root = tmp_path / "docs"
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    await Indexer(embedder, store, granularity=Granularity(windows=True)).run([FolderDocs(FolderSource(path=root))])
    rows = await store.scan(["ordinal", "kind", "section"])
    kinds = [r["kind"] for r in sorted(rows, key=lambda r: r["ordinal"])]
    assert kinds.count("section") >= 2 and kinds.count("window") > kinds.count("section")
    retriever = Retriever(embedder, store, RetrievalSettings(chunks_per_page=3), TuningSettings())
    result = await retriever.retrieve("rotate the audit key")
    ops = [h for h in result.hits if h.page_id == "ops.md"]
    assert result.pages[0] == "ops.md" and any(h.kind == "window" for h in ops)
    assert len({h.text for h in ops}) == len(ops) == len({h.section for h in ops}), "each section passed once"
    assert any("`vault rotate`" in h.text and len(h.text) > 1000 for h in ops), "the window's whole section"


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
        settings, tuning = RetrievalSettings(top_k=4, chunks_per_page=1), TuningSettings(page_bonus=0.0)
        question = "how do I install it"
        result = await Retriever(embedder, docs_store, settings, tuning, reranker).retrieve(question)
        expected = await reranker.score(question, [h.context_text for h in result.hits])
        assert [h.score for h in result.hits] == pytest.approx(expected)
        assert [h.score for h in result.hits] == sorted(expected, reverse=True)
        assert all(0 < s < 1 for s in expected)
        assert "rerank_ms" in result.timings_ms
    finally:
        reranker.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
async def test_a_source_filter_keeps_other_sources_out(tmp_path: Path, embedder, store, mode: str) -> None:
    for name, text in (("sdk", "The Python SDK connects with `MilvusClient(uri)`."), ("server", "Connect clients.")):
        root = tmp_path / name
        root.mkdir()
        (root / f"connect-{name}.md").write_text(f"# Connecting\n\n{text} Connections time out after 10 s.\n")
        source = FolderSource(id=name, path=root, base_url=f"https://{name}.example/")
        await Indexer(embedder, store).run([FolderDocs(source)])
    retriever = Retriever(embedder, store, RetrievalSettings(), TuningSettings(mode=mode))
    both = await retriever.retrieve("how do I connect?")
    assert {h.url.split("/")[2] for h in both.hits} == {"sdk.example", "server.example"}
    only = await retriever.retrieve("how do I connect?", scope=SearchScope(("server",)))
    assert only.hits and {h.url.split("/")[2] for h in only.hits} == {"server.example"}


def _long_page(title: str, topics: list[str]) -> str:
    """A long page of many sections, each a weak match for a question about a window setting."""
    sections = [
        f"## {topic.capitalize()}\n\nSet the {topic} window parameter when you search: the window should be set to "
        f"the value your workload needs, and a larger {topic} window is slower.\n"
        for topic in topics
    ]
    return f"# {title}\n\n" + "\n".join(sections)


@pytest.mark.integration
async def test_an_approved_community_answer_is_not_outvoted_by_long_pages(tmp_path: Path, embedder, store) -> None:
    """The issue's run (issue 22): one community answer, the best match in both searches, against long pages whose
    many sections each match a little. It must be among the pages the model is given, first."""
    from indexer.community import community_sources
    from rag.learned import LearnedStore
    from rag.settings import AnswerSettings
    from tests.pairs import capture

    topics = ["search", "range", "filter", "batch", "query", "segment", "cache", "index", "time", "merge", "load"]
    await index_pages(
        tmp_path / "docs",
        {
            "single-vector-search.md": _long_page("Single-Vector Search", topics),
            "index-vector-fields.md": _long_page("Index Vector Fields", topics[:8]),
            "install.md": DOCS["install.md"],
        },
        embedder,
        store,
    )
    learned = LearnedStore(tmp_path / "learned.sqlite3")
    pair = await capture(
        learned,
        question="What should zorblax_window be set to?",
        answer="Set `zorblax_window` to 30 seconds; shorter windows drop late writes.",
        link="https://discord.com/channels/1/3/4",
    )
    await learned.decide(pair, "approved")
    learned.close()
    await Indexer(embedder, store).run(community_sources(tmp_path / "learned.sqlite3"))
    retriever = Retriever(embedder, store, RetrievalSettings(), TuningSettings())
    result = await retriever.retrieve("What should zorblax_window be set to?")
    assert result.pages[: AnswerSettings().sources][0] == "learned/1", result.pages
