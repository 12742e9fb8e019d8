"""Scoring by page rank, the eval index's key and cache, and the committed dev set it is run on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.scoring import CachedEmbedder, Outcome, Question, Scores, code_digest, load_questions
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


def test_code_that_shapes_the_index_is_part_of_its_key(tmp_path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    before = code_digest(("pkg", "b.py"), tmp_path)
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert code_digest(("pkg", "b.py"), tmp_path) != before


async def test_cached_embedder_embeds_each_passage_once_across_runs(tmp_path: Path) -> None:
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


async def test_vectors_remembered_from_elsewhere_are_not_embedded_again(tmp_path: Path) -> None:
    class Refusing:
        dimension, max_tokens = 2, 16

        async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
            raise AssertionError(f"embedded {texts}")

    cache = CachedEmbedder(Refusing(), tmp_path / "v.npz")  # type: ignore[arg-type]
    cache.remember({CachedEmbedder.key("a"): [1.0, 0.0]})
    cache.remember({CachedEmbedder.key("a"): [9.0, 9.0]})  # a vector it holds is kept
    assert await cache.embed_passages(["a"]) == [[1.0, 0.0]]
    cache.save()
    assert await CachedEmbedder(Refusing(), tmp_path / "v.npz").embed_passages(["a"]) == [[1.0, 0.0]]  # type: ignore[arg-type]
