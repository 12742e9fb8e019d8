"""Adapting the embedder to the docs: each step on real components (Milvus Lite, MiniLM, the tiny vLLM engine)."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.__main__ import adapt_config, main, parse_adapt_args
from indexer.adapt import (
    EXAMPLES,
    REPORT_FILE,
    STYLES,
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
    earlier_questions,
    generate_questions,
    mine_triplets,
    model_folder,
    pick_chunks,
    pick_styles,
    question_messages,
    read_question,
    summary,
    train_embedder,
    writer_settings,
)
from rag.encoders import read_layout
from rag.errors import ConfigError, GenerationTimeout, IndexMissing
from rag.generator import Generator
from rag.models import Chunk
from rag.retrieval import Retriever
from rag.settings import PACKAGED_MINILM, LLMSettings, Settings
from rag.store import MilvusStore
from tests.conftest import index_pages
from tests.scripted import ScriptedGenerator

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
        ("\n\n**Q: Why is my insert slow?**", "Why is my insert slow?"),
        (
            'Title: "Backups stop half way"\nI run `widget backup --to s3://b` and it stops. Why?',
            "Backups stop half way\n\nI run `widget backup --to s3://b` and it stops. Why?",
        ),
        (
            "Sure! Here is the post:\n\n**Title:** Server port\n**Body:** Which port does the server listen on?",
            "Server port\n\nWhich port does the server listen on?",
        ),
        (  # the token limit cut the last sentence: whole sentences only
            "Title: Slow inserts\nMy inserts are slow. Is batching faster? I tried batches of ten and the",
            "Slow inserts\n\nMy inserts are slow. Is batching faster?",
        ),
        ("Yes.", None),
        ("Title: Help\n", None),
        ("", None),
    ],
)
def test_clean_question(raw: str, question: str | None) -> None:
    assert clean_question(raw) == question


def test_a_rambling_reply_is_refused() -> None:
    assert read_question("How " + "very " * 150 + "long?") == (None, "longer than 700 characters")


def test_a_question_copying_its_section_is_refused_but_a_quoted_line_is_not() -> None:
    section = (
        "The widget backup command copies every collection to object storage, one file per segment, and it "
        "resumes an interrupted copy from the last finished segment when it is started again."
    )
    copied = "Title: Backup\nThe widget backup command copies every collection to object storage, one file per segment?"
    assert read_question(copied, section) == (None, "copies the section")
    asked = "Title: Backup stops\nI ran `widget backup` with a big collection and it stopped at 40%. Can it resume?"
    assert read_question(asked, section)[0] is not None


def test_a_question_parroting_the_example_post_is_refused() -> None:
    [error] = [style for style in STYLES if style.name == "error"]
    parrot = "Title: Validation is slow\nMy model takes ages to validate. Why does it stop at 10 seconds?"
    assert read_question(parrot, "", "\n".join(error.examples)) == (None, "parrots the example")
    own = "Title: Validation is slow\nMy model with 200 fields takes ages to validate. Why is it so slow?"
    assert read_question(own, "", "\n".join(error.examples))[0] is not None


def test_styles_are_drawn_per_section_with_the_seed() -> None:
    chunks = [chunk(f"page{n}", 0, 500) for n in range(40)]
    two = [pick_styles(c, 2, seed=0) for c in chunks]
    assert all(len(styles) == 2 and styles[0] != styles[1] for styles in two)
    assert [pick_styles(c, 2, seed=0) for c in reversed(chunks)] == list(reversed(two))  # order does not matter
    assert {styles[0].name for styles in two} == {style.name for style in STYLES}  # every style gets used
    assert [pick_styles(c, 2, seed=1) for c in chunks] != two
    assert len(pick_styles(chunks[0], 99, seed=0)) == len(STYLES)


def test_every_style_shares_one_prompt_holding_the_passage_and_the_project() -> None:
    long = DocChunk("id", "docs", "p", "Backups", "To S3", "word " * 1000)
    prompts = {s.name: "\n".join(m["content"] for m in question_messages(long, "Milvus", s)) for s in STYLES}
    assert set(prompts) >= {"how-to", "error", "is-it-possible", "troubleshooting", "chat"}
    for style in STYLES:
        messages = question_messages(long, "Milvus", style)
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert (messages[2]["content"], messages[4]["content"]) == style.examples  # made-up sections' posts
        asked = messages[-1]["content"]
        assert "Milvus" in asked and "page Backups > To S3" in asked and "word word" in asked
        assert style.situation in asked and "has not read this page" in asked and "nor its heading" in asked
        assert ("Title:" in asked) == style.titled
        assert all(example.startswith("Title: ") == style.titled for example in style.examples)
        tail = asked.split("\n\nWrite")[1]
        for (project, _), example in zip(EXAMPLES, (messages[1]["content"], messages[3]["content"]), strict=True):
            assert "Milvus" not in example  # the examples are about made-up projects
            assert example.split("\n\nWrite")[1].replace(project, "Milvus") == tail  # one template for all
        assert len(asked) < 2000 and len(prompts[style.name]) < 4000  # the passage is cut: a short prompt


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
    assert (config.per_section, config.questions, config.temperature, config.top_p) == (1, "", 0.8, 0.95)
    more = adapt_config(
        parse_adapt_args(["--per-section", "2", "--epochs", "3", "--questions", "/s.jsonl", "--mini-batch", "4"])
    )
    assert (more.per_section, more.train.epochs, more.questions, more.train.mini_batch) == (2, 3, "/s.jsonl", 4)
    with pytest.raises(SystemExit):
        parse_adapt_args(["--batch-size", "1"])
    with pytest.raises(SystemExit):
        parse_adapt_args(["--per-section", "0"])


def test_the_writer_samples(make_settings: Callable[..., Settings]) -> None:
    writer = writer_settings(make_settings(), AdaptConfig(generator="/m", seed=3))
    assert (writer.model, writer.temperature, writer.top_p, writer.max_tokens) == ("/m", 0.8, 0.95, 96)
    assert writer.timeout_s >= 900  # a question waits behind the others on a busy CPU


async def test_a_question_the_writer_times_out_on_is_lost_alone() -> None:
    class Slow(ScriptedGenerator):
        async def stream(self, messages: Any, *, request_id: str | None = None) -> AsyncIterator[str]:
            if "page1" in messages[-1]["content"]:
                raise GenerationTimeout("too slow")
            async for text in super().stream(messages):
                yield text

    chunks = [DocChunk(f"page{n}#0", "docs", f"page{n}", f"page{n}", "", "x" * 300) for n in range(3)]
    generated = await generate_questions(Slow("How do I run the widget server?"), chunks, status=lambda _: None)
    assert [g.why for g in generated] == ["", "the writer timed out", ""]
    assert [g.question is not None for g in generated] == [True, False, True]


async def test_each_section_gets_its_styles_in_order() -> None:
    chunks = [chunk(f"page{n}", 0, 300) for n in range(3)]
    writer = ScriptedGenerator("Title: Widget backups\nHow do I copy my collections to S3 storage?")
    generated = await generate_questions(writer, chunks, per_section=2, seed=5, status=lambda _: None)
    assert [g.chunk for g in generated] == [c for c in chunks for _ in range(2)]
    assert [g.style for g in generated] == [s.name for c in chunks for s in pick_styles(c, 2, seed=5)]
    assert all(g.question == "Widget backups\n\nHow do I copy my collections to S3 storage?" for g in generated)
    situations = [next(s.situation for s in STYLES if s.name == g.style) for g in generated]
    assert all(situation in prompt[-1]["content"] for situation, prompt in zip(situations, writer.prompts, strict=True))


def test_earlier_questions_are_read_back_on_the_sections_still_indexed(tmp_path: Path) -> None:
    chunks = [chunk("a", 0, 300), chunk("b", 0, 300)]
    records = [
        {"page_id": "a", "chunk_id": "a#0", "style": "error", "question": "Why does a fail?", "kept": True},
        {"page_id": "b", "chunk_id": "b#0", "style": "chat", "question": "Is b fast?", "kept": False},
        {"page_id": "a", "chunk_id": "a#0", "style": "chat", "question": None, "kept": False, "raw": "Yes."},
        {"page_id": "c", "chunk_id": "c#0", "question": "Where did c go?", "kept": True},
    ]
    path = tmp_path / SYNTHETIC_FILE
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    found, gone = earlier_questions(path, chunks)
    assert [(g.chunk.chunk_id, g.style, g.question) for g in found] == [
        ("a#0", "error", "Why does a fail?"),
        ("b#0", "chat", "Is b fast?"),
    ]
    assert gone == 1


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
        Generated.read(backup, "Question: How do I copy my collections to S3 object storage?", STYLES[0]),
        Generated.read(backup, "How do I start the widget server in a Docker container?"),  # another page's question
        Generated.read(backup, "Yes."),
    ]
    mined = await mine_triplets(retriever, generated, keep_top=1)
    assert [r["kept"] for r in mined.records] == [True, False, False]
    assert "not in the top 1" in mined.records[1]["why"] and mined.records[2]["why"] == "no question in the reply"
    assert mined.records[0]["style"] == STYLES[0].name and mined.records[2]["raw"] == "Yes."
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


def test_training_in_mini_batches_computes_the_same_step(tmp_path: Path, minilm_dir: str) -> None:
    from sentence_transformers import SentenceTransformer

    base = tmp_path / "no-dropout"  # dropout draws other masks for other shapes: without it, the same numbers
    shutil.copytree(minilm_dir, base)
    config_file = base / "config.json"
    model_config = json.loads(config_file.read_text())
    config_file.write_text(
        json.dumps({**model_config, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    )
    config = TrainConfig(max_steps=1, batch_size=4, learning_rate=1e-4, threads=1)
    train_embedder(str(base), triplets_for_training(), tmp_path / "whole", config)
    train_embedder(str(base), triplets_for_training(), tmp_path / "mini", replace(config, mini_batch=2))
    text = ["How do I back up collections to S3?"]
    whole = SentenceTransformer(str(tmp_path / "whole"), device="cpu").encode(text)
    mini = SentenceTransformer(str(tmp_path / "mini"), device="cpu").encode(text)
    assert np.allclose(whole, mini, atol=1e-5)


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


async def test_adapt_writes_a_model_folder_and_its_report(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any, tiny_model_dir: Path
) -> None:
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await index_pages(tmp_path / "docs", PAGES, embedder, store)
    finally:
        await store.close()
    asked: list[LLMSettings] = []

    @contextlib.asynccontextmanager
    async def writer_engine(writer: LLMSettings) -> AsyncIterator[Generator]:
        asked.append(writer)
        # The tiny engine writes noise, which is no question: a writer with a usable reply (the engine's own
        # replies are test_questions_are_written_by_the_engine's).
        yield ScriptedGenerator("Title: Widget setup\nHow do I install, run and back up the widget server?")

    config = AdaptConfig(
        per_page=1, generator=str(tiny_model_dir), train=TrainConfig(batch_size=2, max_steps=1, learning_rate=1e-4)
    )
    now = datetime(2026, 1, 2, tzinfo=UTC)
    report = await adapt(settings, config, open_generator=writer_engine, status=lambda _: None, now=now)
    assert asked[0].model == str(tiny_model_dir) and asked[0].max_tokens == 96 and asked[0].top_p == 0.95
    assert report.folder == settings.data_dir / "embedders" / "model-adapted-20260102T000000Z"  # minilm_dir: .../model
    saved = json.loads((report.folder / REPORT_FILE).read_text())
    assert saved["chunks"] == 3 and saved["training"]["steps"] == 1
    assert saved["triplets"] == saved["kept"] <= saved["generated"] <= 3
    assert saved["base_model"] == settings.embedding.model and saved["generator_model"] == str(tiny_model_dir)
    assert saved["peak_rss_mb"] > 100 and saved["training"]["seconds"] > 0 and saved["generation_s"] >= 0
    assert list(saved["peak_rss_phases_mb"]) == ["generation", "filtering", "training"]
    assert all(row["command"] > 100 for row in saved["peak_rss_phases_mb"].values())
    assert sum(row["written"] for row in saved["styles"].values()) == 3
    records = [json.loads(line) for line in (report.folder / SYNTHETIC_FILE).read_text().splitlines()]
    assert len(records) == 3 and sum(r["kept"] for r in records) == saved["kept"]
    assert read_layout(report.folder) is not None
    assert not list(report.folder.parent.glob("*.partial"))


async def test_adapt_retrains_on_an_earlier_runs_questions_without_the_engine(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    settings = make_settings()
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await index_pages(tmp_path / "docs", PAGES, embedder, store)
        sections = await docs_chunks(store)
    finally:
        await store.close()
    asked = {
        "backup.md": "My collections are lost when the disk dies: how do I copy them to S3 object storage?",
        "docker.md": "How do I start the widget server in a Docker container?",
        "install.md": "Which Python version do I need to pip install widget?",
    }
    earlier = tmp_path / SYNTHETIC_FILE
    earlier.write_text(
        "".join(
            json.dumps({"chunk_id": c.chunk_id, "style": "how-to", "question": asked[Path(c.page_id).name]}) + "\n"
            for c in sections
        )
    )
    config = AdaptConfig(
        generator="/nowhere", questions=str(earlier), train=TrainConfig(batch_size=3, max_steps=1, learning_rate=1e-4)
    )
    report = await adapt(settings, config, open_generator=never_started, status=lambda _: None)
    assert (report.chunks, report.generated, report.generation_s, report.generator_model) == (3, 3, 0, "")
    assert report.kept == 3 and report.training.steps == 1 and "generation" not in report.peak_rss_phases_mb
    assert json.loads((report.folder / REPORT_FILE).read_text())["config"]["questions"] == str(earlier)
    assert f"questions of {earlier}" in summary(report)


async def test_adapt_refuses_a_missing_questions_file(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        await adapt(make_settings(), AdaptConfig(questions=str(tmp_path / "none.jsonl")), open_generator=never_started)


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
        {"generation": {"command": 800.0, "children": 4000.0}, "training": {"command": 900.0, "children": 60.0}},
    )
    text = summary(report)
    assert f"DOCENT_EMBEDDING__MODEL={tmp_path / 'm'}" in text and "python -m indexer" in text
    assert "old index keeps answering" in text and "no gap" in text
    assert "questions 9, kept 8, triplets 8" in text and "generation 120s" in text
    assert "generation 800 + 4000, training 900 + 60" in text
