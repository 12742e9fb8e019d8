"""Adapting the embedder to the docs: each step on real components (Milvus Lite, MiniLM, the tiny vLLM engine)."""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.__main__ import adapt_config, main, parse_adapt_args
from indexer.adapt import (
    REPORT_FILE,
    SYNTHETIC_FILE,
    AdaptConfig,
    AdaptReport,
    DocChunk,
    Generated,
    TrainConfig,
    TrainReport,
    Triplet,
    adapt,
    base_name,
    batches,
    clean_question,
    docs_chunks,
    generate_questions,
    mine_triplets,
    model_folder,
    pick_chunks,
    question_messages,
    summary,
    train_embedder,
)
from rag.encoders import read_layout
from rag.errors import ConfigError, IndexMissing
from rag.generator import Generator
from rag.models import Chunk
from rag.retrieval import Retriever
from rag.settings import PACKAGED_MINILM, LLMSettings, Settings
from rag.store import MilvusStore
from tests.conftest import index_pages

PAGES = {
    "install.md": "# Install Widget\n\nRun `pip install widget` to install the widget package from PyPI. "
    "It needs Python 3.11 or later and a C compiler for the native extension.\n",
    "docker.md": "# Run in Docker\n\nUse `docker run -p 8080:8080 widget/server` to start the widget server "
    "in a container, with the data volume mounted at /var/lib/widget.\n",
    "backup.md": "# Back up your data\n\nThe `widget backup --to s3://bucket` command copies every collection "
    "to object storage; restore it with `widget restore`.\n",
}


def chunk(page: str, n: int, chars: int) -> DocChunk:
    return DocChunk(f"{page}#{n}", "docs", page, page.title(), f"h{n}", "x" * chars)


def test_pick_chunks_is_bounded_per_page_and_repeatable() -> None:
    chunks = [chunk("a", n, 500) for n in range(5)] + [chunk("b", 0, 50), chunk("b", 1, 80)] + [chunk("c", 0, 300)]
    picked = pick_chunks(chunks, per_page=2, max_pages=0, seed=1, min_chars=200)
    by_page = {page: [c for c in picked if c.page_id == page] for page in "abc"}
    assert len(by_page["a"]) == 2
    assert [c.chunk_id for c in by_page["b"]] == ["b#1"]  # only short sections: the longest one
    assert len(by_page["c"]) == 1
    assert picked == pick_chunks(list(reversed(chunks)), per_page=2, max_pages=0, seed=1, min_chars=200)
    two = pick_chunks(chunks, per_page=1, max_pages=2, seed=1, min_chars=200)
    assert len(two) == 2 and len({c.page_id for c in two}) == 2


@pytest.mark.parametrize(
    ("raw", "question"),
    [
        ("Question: How do I back up a collection?", "How do I back up a collection?"),
        ('1. "What port does the server use?"\nIt uses 8080.', "What port does the server use?"),
        ("\n\n**Q: Why is my insert slow?**", "Why is my insert slow?"),
        ("Yes.", None),
        ("", None),
    ],
)
def test_clean_question(raw: str, question: str | None) -> None:
    assert clean_question(raw) == question


def test_clean_question_cuts_a_rambling_reply_at_a_word() -> None:
    cleaned = clean_question("How " + "very " * 100 + "long?")
    assert cleaned is not None and len(cleaned) <= 300 and cleaned.endswith("very")


def test_the_prompt_holds_the_passage_and_the_project() -> None:
    long = DocChunk("id", "docs", "p", "Backups", "To S3", "word " * 1000)
    messages = question_messages(long, "Milvus")
    text = "\n".join(m["content"] for m in messages)
    assert "Milvus" in text and "Backups > To S3" in text and "word word" in text
    assert len(text) < 2600  # the passage is cut: a short prompt


def test_batches_hold_one_triplet_per_page() -> None:
    triplets = [Triplet(f"q{page}{n}", "p", "n", page) for page in "abcd" for n in range(3)]
    made = batches(triplets, 3, random.Random(0))
    assert all(len({t.page_id for t in batch}) == len(batch) for batch in made)
    assert sum(len(batch) for batch in made) == len(triplets)
    assert max(len(batch) for batch in made) == 3


def test_model_folder_is_versioned_under_the_data_dir(tmp_path: Path) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert model_folder(tmp_path, PACKAGED_MINILM, now) == (
        tmp_path / "embedders" / "all-MiniLM-L6-v2-adapted-20260102T030405Z"
    )
    assert base_name("/data/embedders/all-MiniLM-L6-v2-adapted-20260102T030405Z/") == "all-MiniLM-L6-v2"
    assert base_name("sentence-transformers/all-mpnet-base-v2") == "all-mpnet-base-v2"


def test_command_line_options() -> None:
    args = parse_adapt_args(["--per-page", "3", "--max-pages", "20", "--generator", "/m", "--max-steps", "5"])
    config = adapt_config(args)
    assert (config.per_page, config.max_pages, config.generator, config.keep_top) == (3, 20, "/m", 5)
    assert (config.train.max_steps, config.train.epochs, config.train.batch_size) == (5, 1, 16)
    with pytest.raises(SystemExit):
        parse_adapt_args(["--batch-size", "1"])


async def test_docs_chunks_are_the_docs_sections_only(store: MilvusStore, embedder: Any) -> None:
    def row(chunk_id: str, source: str, kind: str) -> Chunk:
        return Chunk(chunk_id, source, f"{source}/page", 0, "u", "T", "H", f"text of {chunk_id}", "h", kind=kind)

    chunks = [
        row("section", "docs", "section"),
        row("window", "docs", "window"),
        row("learned", "community:discord:1", "section"),
    ]
    await store.ensure_collection(embedder.dimension)
    await store.upsert(chunks, await embedder.embed_passages([c.embed_text for c in chunks]))
    found = await docs_chunks(store)
    assert [(c.chunk_id, c.passage) for c in found] == [("section", "T > H\n\ntext of section")]


async def test_questions_are_kept_only_if_they_find_their_own_page(
    tmp_path: Path, store: MilvusStore, embedder: Any, make_settings: Callable[..., Settings]
) -> None:
    await index_pages(tmp_path / "docs", PAGES, embedder, store)
    sections = {c.page_id: c for c in await docs_chunks(store)}
    backup = next(c for page, c in sections.items() if page.endswith("backup.md"))
    settings = make_settings()
    retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
    generated = [
        Generated(backup, "Question: How do I copy my collections to S3 object storage?"),
        Generated(backup, "How do I start the widget server in a Docker container?"),  # another page's question
        Generated(backup, "Yes."),
    ]
    mined = await mine_triplets(retriever, generated, keep_top=1)
    assert [r["kept"] for r in mined.records] == [True, False, False]
    assert "not in the top 1" in mined.records[1]["why"] and mined.records[2]["why"] == "no question in the reply"
    [triplet] = mined.triplets
    assert triplet.question == "How do I copy my collections to S3 object storage?"
    assert triplet.positive == backup.passage
    expected = (await retriever.retrieve(triplet.question)).pages[1]  # the best-ranked other page
    assert triplet.negative == sections[expected].passage and expected != backup.page_id


def triplets_for_training() -> list[Triplet]:
    docs = [
        ("How do I back up collections to S3?", "Back up > widget backup --to s3://bucket copies every collection."),
        ("Which port does the server listen on?", "Docker > docker run -p 8080:8080 widget/server starts it."),
        ("What Python version does widget need?", "Install > widget needs Python 3.11 or later."),
        ("How do I restore a backup?", "Restore > widget restore reads a backup from object storage."),
    ]
    return [Triplet(q, positive, docs[(i + 1) % len(docs)][1], f"page{i}") for i, (q, positive) in enumerate(docs)]


def test_training_writes_a_loadable_folder_with_new_weights(tmp_path: Path, minilm_dir: str) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "adapted"
    config = TrainConfig(max_steps=2, batch_size=4, learning_rate=1e-4, epochs=3, threads=1)
    report = train_embedder(minilm_dir, triplets_for_training(), out, config)
    assert report.steps == 2
    assert read_layout(out) is not None  # the default (exported) backend can run it, not only torch
    text = ["How do I back up collections to S3?"]
    base = SentenceTransformer(minilm_dir, device="cpu").encode(text)
    adapted = SentenceTransformer(str(out), device="cpu").encode(text)
    assert base.shape == adapted.shape
    assert not np.allclose(base, adapted, atol=1e-4)


def test_training_refuses_triplets_that_make_no_batch(tmp_path: Path, minilm_dir: str) -> None:
    one_page = [Triplet("q", "p", "n", "same") for _ in range(3)]
    with pytest.raises(ConfigError, match="no training batch"):
        train_embedder(minilm_dir, one_page, tmp_path / "out", TrainConfig(batch_size=4))


def never_started(settings: LLMSettings) -> contextlib.AbstractAsyncContextManager[Generator]:
    raise AssertionError("the engine must not start")


async def test_adapt_without_an_index_says_to_run_the_indexer(
    make_settings: Callable[..., Settings], tiny_model_dir: Path
) -> None:
    settings = make_settings()
    with pytest.raises(IndexMissing, match="python -m indexer"):
        await adapt(settings, AdaptConfig(generator=str(tiny_model_dir)), open_generator=never_started)


async def test_a_missing_generator_folder_says_how_to_fetch_one(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match=re.escape("bench.models fetch qwen2.5-coder-0.5b")):
        await adapt(make_settings(), AdaptConfig(generator="/nowhere/qwen"), open_generator=never_started)


@pytest.mark.slow
async def test_questions_are_written_by_the_engine(generator: Any) -> None:
    chunks = [DocChunk(f"c{n}", "docs", f"p{n}", "Widget", "Install", f"Run pip install widget {n}.") for n in range(3)]
    statuses: list[str] = []
    generated = await generate_questions(generator, chunks, concurrency=2, status=statuses.append)
    assert [g.chunk for g in generated] == chunks
    assert all(g.raw.strip() for g in generated)
    assert statuses == ["  3/3 questions written"]


@pytest.mark.slow
async def test_adapt_writes_a_model_folder_and_its_report(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any, generator: Any, tiny_model_dir: Path
) -> None:
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await index_pages(tmp_path / "docs", PAGES, embedder, store)
    finally:
        await store.close()
    asked: list[LLMSettings] = []

    @contextlib.asynccontextmanager
    async def session_engine(writer: LLMSettings) -> AsyncIterator[Generator]:
        asked.append(writer)
        yield generator  # the session's engine: it stays up for the other tests

    config = AdaptConfig(
        per_page=1, generator=str(tiny_model_dir), train=TrainConfig(batch_size=2, max_steps=1, learning_rate=1e-4)
    )
    now = datetime(2026, 1, 2, tzinfo=UTC)
    report = await adapt(settings, config, open_generator=session_engine, status=lambda _: None, now=now)
    assert asked[0].model == str(tiny_model_dir) and asked[0].max_tokens == 64 and asked[0].temperature == 0
    assert report.folder == settings.data_dir / "embedders" / "model-adapted-20260102T000000Z"  # minilm_dir: .../model
    saved = json.loads((report.folder / REPORT_FILE).read_text())
    assert saved["chunks"] == 3 and saved["training"]["steps"] == 1
    assert saved["triplets"] == saved["kept"] <= saved["generated"] <= 3
    assert saved["base_model"] == settings.embedding.model and saved["generator_model"] == str(tiny_model_dir)
    assert saved["peak_rss_mb"] > 100 and saved["training"]["seconds"] > 0 and saved["generation_s"] > 0
    records = [json.loads(line) for line in (report.folder / SYNTHETIC_FILE).read_text().splitlines()]
    assert len(records) == 3 and sum(r["kept"] for r in records) == saved["kept"]
    assert read_layout(report.folder) is not None
    assert not list(report.folder.parent.glob("*.partial"))


def test_the_command_reports_a_missing_generator_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path))
    # Its handler would write to the captured stderr, closed by the time Milvus Lite says goodbye at exit.
    monkeypatch.setattr("indexer.__main__.configure_logging", lambda level: None)
    assert main(["adapt", "--generator", str(tmp_path / "no-model")]) == 2
    assert "python -m bench.models fetch qwen2.5-coder-0.5b" in capsys.readouterr().err
    assert not (tmp_path / "embedders").exists()


def test_the_summary_says_how_to_switch(tmp_path: Path) -> None:
    report = AdaptReport(
        tmp_path / "m",
        PACKAGED_MINILM,
        "/q",
        10,
        9,
        8,
        8,
        30.0,
        120.0,
        2.0,
        TrainReport(1, 5.0, 2.0, 1.0),
        900,
        3000,
        AdaptConfig(),
    )
    text = summary(report)
    assert f"DOCENT_EMBEDDING__MODEL={tmp_path / 'm'}" in text and "python -m indexer" in text
    assert "old index keeps answering" in text and "no gap" in text
    assert "questions 9, kept 8, triplets 8" in text and "generation 120s" in text
