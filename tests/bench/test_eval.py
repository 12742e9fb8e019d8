"""The evaluation harness and the committed dev set it is run on."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.eval import Outcome, Question, Scores, load_questions
from tests.conftest import CORPUS

DEVSET = Path(__file__).resolve().parents[2] / "bench" / "devset"


def test_rank_is_the_position_of_the_first_gold_page_among_distinct_pages() -> None:
    question = Question("q", frozenset({"b.md", "c.md"}))
    assert Outcome(question, ["a.md", "c.md", "b.md"], 0.5, 1.0).rank(5) == 2
    assert Outcome(question, ["a.md", "x.md", "y.md", "z.md", "w.md", "b.md"], 0.5, 1.0).rank(5) is None
    scores = Scores("s", [Outcome(question, ["b.md"], 0.9, 10.0), Outcome(question, ["a.md", "b.md"], 0.2, 30.0)])
    scores.outcomes.append(Outcome(Question("off topic", frozenset()), ["a.md"], 0.1, 20.0))
    metrics = scores.metrics(5, min_score=0.3)
    assert metrics["questions"] == 2 and metrics["recall@1"] == 0.5 and metrics["recall@5"] == 1.0
    assert metrics["mrr@5"] == 0.75 and metrics["p50_ms"] == 20.0
    assert (metrics["false_refusals"], metrics["out_of_scope"], metrics["correct_refusals"]) == (1, 1, 1)


def test_dev_set_is_well_formed_and_every_gold_page_exists() -> None:
    answerable = load_questions([DEVSET / "milvus_questions.jsonl"])
    out_of_scope = load_questions([DEVSET / "out_of_scope.jsonl"])
    assert len(answerable) >= 60 and all(q.answerable for q in answerable)
    assert out_of_scope and not any(q.answerable for q in out_of_scope)
    assert {q.split for q in answerable} == {"dev", "holdout"}
    assert any(q.history for q in answerable), "follow-ups carry their earlier turns"
    missing = {page for q in answerable for page in q.gold if not (CORPUS / page).is_file()}
    assert not missing
    assert len(load_questions([DEVSET / "milvus_questions.jsonl"], "dev")) < len(answerable)


DOCS = {
    "guide/install.md": "# Install\n\nRun Milvus with Docker Compose: download the compose file, then "
    "`docker compose up -d`.\n",
    "guide/index.md": "# Indexes\n\n## HNSW\n\nHNSW builds a graph. `M` is the maximum degree and "
    "`efConstruction` the build-time search range.\n",
    "guide/backup.md": "# Backup\n\nUse milvus-backup to copy collections to object storage and restore them.\n",
}


@pytest.mark.slow
@pytest.mark.integration
def test_eval_cli_reports_ranks_and_ends_with_a_json_line(tmp_path: Path, process_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    questions = tmp_path / "q.jsonl"
    rows = [
        {"question": "how do i start it with docker", "gold_sources": ["guide/install.md"], "style": "howto"},
        {"question": "hnsw M meaning?", "gold_sources": ["guide/index.md"], "extra": "ignored"},
        {
            "question": "and how do I restore it?",
            "history": ["backing up collections"],
            "gold_sources": ["guide/backup.md"],
        },
        {"question": "best pizza in naples", "gold_sources": []},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    command = [sys.executable, "-m", "bench.eval", "--docs", str(docs), "--questions", str(questions)]

    first = subprocess.run(
        [*command, "--baseline", "reference", "--ablations", "--calibrate"],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["questions"] == 3 and result["out_of_scope"] == 1
    assert result["recall@5"] == 1.0 and result["recall@1"] == 1.0
    assert {"mrr@5", "p50_ms", "p95_ms", "false_refusals", "correct_refusals", "calibration"} <= set(result)
    names = [v["name"] for v in result["variants"]]
    assert names[0] == "reference recipe" and "dense, chunk order" in names
    assert "   1 " in first.stdout and "best pizza" in first.stdout
    assert "Indexing" in first.stderr

    again = subprocess.run([*command, "--k", "1"], env=process_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Indexing" not in again.stderr, "the index is cached by corpus content and settings"
    assert json.loads(again.stdout.strip().splitlines()[-1])["recall@1"] == 1.0


async def test_cached_embedder_embeds_each_passage_once_across_runs(tmp_path: Path) -> None:
    from bench.eval import CachedEmbedder

    class Counting:
        dimension, max_tokens, calls = 2, 16, 0

        async def embed_query(self, text: str) -> list[float]:
            return [1.0, 0.0]

        async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
            self.calls += len(texts)
            return [[float(len(t)), 1.0] for t in texts]

        def count_tokens(self, text: str) -> int:
            return len(text.split())

    inner = Counting()
    cache = CachedEmbedder(inner, tmp_path / "v.npz")
    assert await cache.embed_passages(["a", "bb", "a"]) == [[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]]
    assert inner.calls == 2
    cache.save()
    again = CachedEmbedder(inner, tmp_path / "v.npz")
    assert await again.embed_passages(["bb", "ccc"]) == [[2.0, 1.0], [3.0, 1.0]]
    assert inner.calls == 3, "only the new passage is embedded"


def test_without_docs_bench_eval_runs_the_cross_validated_real_question_report(capsys) -> None:
    from bench.eval import main

    with pytest.raises(SystemExit) as stopped:
        main(["--sets", "no-such-set"])  # bench.cv's own argument check answers
    assert stopped.value.code == 2
    assert "unknown set(s): no-such-set" in capsys.readouterr().err
