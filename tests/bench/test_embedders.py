"""The embedder table's pure parts: which model scores which set, the cost sample, the rows printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.crossval import FOLDS
from bench.embedders import (
    MISSING,
    EmbedderRun,
    EmbedderSpec,
    SetRun,
    SpecError,
    latency_questions,
    parse_embedders,
    parse_pairs,
    spread,
    summary,
    table_rows,
)
from bench.scoring import Outcome, Question
from rag.settings import PACKAGED_MINILM

SETS = ["milvus", "fastapi", "pydantic"]


def test_pairs_are_set_equals_folder() -> None:
    assert parse_pairs("milvus=/a, pydantic=/b,", "--adapted") == {"milvus": "/a", "pydantic": "/b"}
    assert parse_pairs("", "--adapted") == {}
    with pytest.raises(SpecError, match="not NAME=VALUE"):
        parse_pairs("milvus", "--adapted")


def test_each_embedder_names_the_model_of_every_set_and_adapted_only_the_sets_it_has(tmp_path: Path) -> None:
    specs = parse_embedders("minilm,big=/models/big,adapted", {"pydantic": "/p", "milvus": "/m"}, SETS, tmp_path)
    assert specs == [
        EmbedderSpec("minilm", dict.fromkeys(SETS, PACKAGED_MINILM)),
        EmbedderSpec("big", dict.fromkeys(SETS, "/models/big")),
        EmbedderSpec("adapted", {"milvus": "/m", "pydantic": "/p"}),  # in the order of the sets; fastapi has none
    ]


@pytest.mark.parametrize(
    ("embedders", "adapted", "message"),
    [
        ("adapted", {}, "needs --adapted"),
        ("adapted", {"django": "/d"}, "unknown set"),
        ("minilm,minilm", {}, "named twice"),
        ("bert", {}, "unknown embedder 'bert'"),
        ("", {}, "no embedder"),
        ("mpnet", {}, "bench.models fetch all-mpnet-base-v2"),
        ("nomic", {}, "no verified conversion"),
    ],
)
def test_an_embedder_list_that_cannot_run_says_why(
    embedders: str, adapted: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(SpecError, match=message):
        parse_embedders(embedders, adapted, SETS, tmp_path)


def test_nomic_is_used_only_once_its_check_passed(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "nomic-embed-text-v1.5"
    folder.mkdir(parents=True)
    (folder / "check.json").write_text(json.dumps({"passed": False}))
    with pytest.raises(SpecError):
        parse_embedders("nomic", {}, SETS, tmp_path)
    (folder / "check.json").write_text(json.dumps({"passed": True}))
    assert parse_embedders("nomic", {}, ["pydantic"], tmp_path)[0].models == {"pydantic": str(folder)}


def test_the_timed_chunks_are_spread_over_the_corpus() -> None:
    chunks = [str(i) for i in range(10)]
    assert spread(chunks, 0) == chunks and spread(chunks, 50) == chunks
    assert spread(chunks, 5) == ["0", "2", "4", "6", "8"]


def test_latency_questions_take_the_sets_in_turn_with_three_to_warm_up() -> None:
    questions = {"a": [Question(f"a{i}", frozenset()) for i in range(5)], "b": [Question("b0", frozenset())]}
    assert latency_questions(questions, 3) == [
        ("a", "a0"),
        ("b", "b0"),
        ("a", "a1"),
        ("a", "a2"),
        ("a", "a3"),
        ("a", "a4"),
    ]


def _outcomes(set_name: str, hits: list[bool], lang: str = "") -> list[Outcome]:
    return [
        Outcome(
            Question(f"{set_name}{i}", frozenset({"gold.md"}), fold=i % FOLDS, lang=lang),
            ["gold.md" if hit else "x.md"],
            0.5,
            1.0,
        )
        for i, hit in enumerate(hits)
    ]


def _set_run(name: str, configured: list[bool], grid: dict[str, list[bool]], lang: str = "") -> SetRun:
    return SetRun(
        model=f"/models/{name}",
        dimension=384,
        max_tokens=256,
        backend="openvino",
        chunks=100,
        timed=10,
        embed_s=2.0,
        embed_cpu_s=4.0,
        chunking_s=1.0,
        configured=_outcomes(name, configured, lang),
        grid={setting: _outcomes(name, hits, lang) for setting, hits in grid.items()},
    )


def test_a_summary_scores_the_defaults_on_every_question_and_the_tuned_row_on_held_out_folds() -> None:
    run = EmbedderRun(
        "m",
        {
            "milvus": _set_run("milvus", [True] * 5, {"s1": [True] * 5, "s2": [False] * 5}, lang="zh"),
            "pydantic": _set_run("pydantic", [False] * 5, {"s1": [False] * 5, "s2": [True] * 5}),
        },
        query_ms=[1.0, 3.0, 2.0],
        query_cpu_ms=[1.0, 1.0, 1.0],
        peak_rss_mb=500.0,
        load_s=1.0,
    )
    result = summary(run, 5)
    assert result["configured"]["pooled"]["recall@5"] == 0.5
    assert result["tuned"]["chosen_per_fold"] == ["s1"] * FOLDS  # a tie on recall and MRR: the first setting
    assert result["tuned"]["milvus"]["recall@5"] == 1.0 and result["tuned"]["pydantic"]["recall@5"] == 0.0
    assert result["configured"]["by_language"]["zh"]["n"] == 5
    costs = result["costs"]
    assert (costs["chunks_per_s"], costs["chunks_per_cpu_s"], costs["query_p50_ms"]) == (5.0, 2.5, 2.0)
    assert costs["chunks"] == {"milvus": 100, "pydantic": 100} and costs["peak_rss_mb"] == 500.0

    rows = table_rows([result, {**result, "name": "adapted", "models": {"milvus": "/a"}}], ["milvus", "fastapi"], 5)
    header, defaults, tuned, adapted_defaults, _ = rows
    assert header[:4] == ["embedder", "scored", "milvus (n)", "fastapi (n)"]
    assert defaults[:3] == ["m", "defaults", "1.000 / 1.000 (5)"]
    assert defaults[3] == MISSING, "a set the embedder was not scored on"
    assert tuned[0] == "" and tuned[1].startswith("tuned") and tuned[-4:] == ["", "", "", ""]
    assert defaults[-4:] == ["5.0", "2.5", "2.0", "500"]
    assert adapted_defaults[4].endswith("(1 sets)"), "pooled over fewer sets is marked"
