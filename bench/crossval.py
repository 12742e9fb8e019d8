"""Retrieval quality on real questions, 5-fold cross-validated, over every real-question set.

The study behind ``python -m bench.cv`` and ``python -m bench.eval`` without ``--docs``: both command lines run
``main`` here, so neither imports the other.

Each set is real questions asked in public with gold pages taken from the answers given there
(bench/devset/*real_questions.jsonl, see bench/devset/REAL_QUESTIONS.md), over its own corpus. A question's fold
is fixed in the file (a hash of its source URL), so numbers compare across commits.

Every candidate retrieval setting is run once on every question; then, for each fold, the setting with the best
pooled recall@k on the other four folds (MRR@k breaks ties) is scored on that fold. The reported numbers are those
held-out scores, so tuning never sees the questions it is scored on. Untuned rows (the reference recipe, today's
defaults) are scored on every question. The refusal threshold is cross-validated the same way: the highest
threshold that refuses at most 1% of the answerable training questions, scored on the held-out fold, and on the
out-of-scope set. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import CORPUS, DEVSET, ROOT, run_evaluation
from bench.scoring import (
    EvalIndex,
    Outcome,
    ReferenceRetriever,
    Scores,
    load_questions,
    print_table,
    production_retrieve,
    run_questions,
)
from rag.embedder import SentenceTransformerEmbedder
from rag.retrieval import Retriever
from rag.settings import Settings, TuningSettings, prepare_process_env

FOLDS = 5
MAX_FALSE_REFUSALS = 0.01


@dataclass(frozen=True)
class RealSet:
    name: str
    docs: Path
    questions: Path


SETS = {
    "milvus": RealSet("milvus", CORPUS, DEVSET / "real_questions.jsonl"),
    "fastapi": RealSet("fastapi", ROOT / "bench" / "corpora" / "fastapi-docs", DEVSET / "fastapi_real_questions.jsonl"),
    "pydantic": RealSet(
        "pydantic", ROOT / "bench" / "corpora" / "pydantic-docs", DEVSET / "pydantic_real_questions.jsonl"
    ),
}
OUT_OF_SCOPE = DEVSET / "out_of_scope.jsonl"  # asked of the Milvus corpus
SYNTHETIC = DEVSET / "milvus_questions.jsonl"  # the regression set: questions written while reading the pages


# What the indexer can be asked to build (tuning settings): each is its own eval collection
# (bench.scoring.EvalIndex.production).
INDEXINGS: dict[str, dict[str, Any]] = {
    "sections": {"window_chunks": False},
    "sections + windows": {"window_chunks": True},
}

# The pipeline built up one technique at a time, ending at the configured defaults: (row name, indexing,
# tuning settings changed from the row before). Then each candidate technique alone on top of the defaults.
# Rows are scored untuned, on every question; each row's keep/drop is cross-validated against the row it builds on.
CONFIGURED = object()  # in a ladder row: the configured value of that setting
EARLIER_FUSION = {"rrf_k": 20, "page_bonus": 0.3, "candidates": 30}  # the defaults until real questions said otherwise
BASE_LADDER: list[tuple[str, str, dict[str, Any]]] = [
    (
        "sections, dense, chunk order",
        "sections",
        {
            "mode": "dense",
            "page_bonus": 0.0,
            "normalise_query": False,
            "heading_search": False,
            "section_match_weight": 0.0,
        },
    ),
    ("+ page aggregation", "sections", {"page_bonus": CONFIGURED}),
    ("+ hybrid BM25", "sections", {"mode": "hybrid"}),
    ("+ query normalisation (defaults)", "sections", {"normalise_query": True}),
]
CANDIDATES: list[tuple[str, str, dict[str, Any]]] = [
    ("defaults + title/heading BM25 field", "sections", {"heading_search": True}),
    ("defaults + distinct-section lift", "sections", {"section_match_weight": 0.3}),
    ("defaults + small windows beside sections", "sections + windows", {}),
    ("defaults with the earlier fusion (rrf_k 20, bonus 0.3, 30 candidates)", "sections", EARLIER_FUSION),
    # Issue 22: weak pages lifted by their many matches too (the page score before page_support_ratio).
    ("defaults with weak pages lifted too (page_support_ratio 0)", "sections", {"page_support_ratio": 0.0}),
]
TECHNIQUES = BASE_LADDER + CANDIDATES
DEFAULTS_ROW = BASE_LADDER[-1][0]  # the base ladder ends at the configured defaults (tests/bench/test_crossval.py)


def ladder(base: TuningSettings) -> list[tuple[str, str, TuningSettings, str]]:
    """(name, indexing, tuning, the row it is compared with); the base ladder is cumulative."""
    rows: list[tuple[str, str, TuningSettings, str]] = []
    current, previous = base, ""
    for name, indexing, update in BASE_LADDER:
        current = current.model_copy(
            update={key: getattr(base, key) if value is CONFIGURED else value for key, value in update.items()}
        )
        rows.append((name, indexing, current, previous))
        previous = name
    for name, indexing, update in CANDIDATES:
        rows.append((name, indexing, current.model_copy(update=update), previous))
    return rows


def technique_decisions(
    untuned: dict[str, dict[str, list[Outcome]]],
    techniques: Sequence[tuple[str, str, TuningSettings, str]],
    folds: dict[str, list[int]],
    k: int,
) -> list[dict[str, Any]]:
    """For each technique, on or off chosen per fold on the other four folds: how often it is kept, and the
    held-out pooled recall/MRR of those choices next to the row it builds on."""
    decisions = []
    for name, _, _, against in techniques:
        if not against:
            continue
        held, chosen = cross_validate({against: untuned[against], name: untuned[name]}, folds, k)
        scores = summarise([o for outcomes in held.values() for o in outcomes], k)
        base = summarise([o for outcomes in untuned[against].values() for o in outcomes], k)
        decisions.append(
            {
                "technique": name,
                "against": against,
                "kept_in_folds": sum(c == name for c in chosen),
                f"cv_recall@{k}": scores[f"recall@{k}"],
                f"cv_mrr@{k}": scores[f"mrr@{k}"],
                f"base_recall@{k}": base[f"recall@{k}"],
                f"base_mrr@{k}": base[f"mrr@{k}"],
            }
        )
    return decisions


def tuning_grid(base: TuningSettings) -> list[tuple[str, TuningSettings]]:
    """Tuning settings that change no index: search mode, fusion constant, heading field, page aggregation
    (query normalisation stays on: it won in every fold; the distinct-section lift lost on its own)."""
    grid: list[tuple[str, TuningSettings]] = []
    for mode, rrf_k, headings, bonus, lift in itertools.product(
        ("dense", "hybrid"), (10, 20, 60), (False, True), (0.3, 0.6), (0.0,)
    ):
        if mode == "dense" and (rrf_k != 20 or headings):
            continue  # fusion constant and heading field mean nothing without BM25
        name = f"{mode} rrf_k={rrf_k} headings={int(headings)} bonus={bonus} lift={lift}"
        update = {
            "mode": mode,
            "rrf_k": rrf_k,
            "heading_search": headings,
            "page_bonus": bonus,
            "section_match_weight": lift,
            "candidates": 60,
            "normalise_query": True,
        }
        grid.append((name, base.model_copy(update=update)))
    return grid


Runs = dict[str, dict[str, list[Outcome]]]  # setting -> set name -> outcomes (one per question, file order)


def _rank(outcome: Outcome, k: int) -> int | None:
    return outcome.rank(k)


def summarise(outcomes: Sequence[Outcome], k: int) -> dict[str, float]:
    ranks = [_rank(o, k) for o in outcomes]
    n = max(1, len(ranks))
    return {
        "n": len(ranks),
        f"recall@{k}": round(sum(1 for r in ranks if r) / n, 4),
        f"mrr@{k}": round(sum(1 / r for r in ranks if r) / n, 4),
        "recall@1": round(sum(1 for r in ranks if r == 1) / n, 4),
    }


def _objective(outcomes: Sequence[Outcome], k: int) -> tuple[float, float]:
    scores = summarise(outcomes, k)
    return scores[f"recall@{k}"], scores[f"mrr@{k}"]


def in_folds(per_set: dict[str, list[Outcome]], folds: dict[str, list[int]], keep: set[int]) -> list[Outcome]:
    """The outcomes of every set whose question's fold is in ``keep``."""
    return [o for name, outcomes in per_set.items() for o, f in zip(outcomes, folds[name], strict=True) if f in keep]


def cross_validate(runs: Runs, folds: dict[str, list[int]], k: int) -> tuple[dict[str, list[Outcome]], list[str]]:
    """Held-out outcomes per set, each fold scored with the setting chosen on the other folds; and the choices."""
    held: dict[str, list[Outcome]] = {name: [] for name in folds}
    chosen: list[str] = []
    for fold in range(FOLDS):
        train = set(range(FOLDS)) - {fold}
        best = max(runs, key=lambda setting: _objective(in_folds(runs[setting], folds, train), k))
        chosen.append(best)
        for name, outcomes in runs[best].items():
            held[name].extend(o for o, f in zip(outcomes, folds[name], strict=True) if f == fold)
    return held, chosen


def refusal_threshold(confidences: Sequence[float]) -> float:
    """The highest threshold (0.01 steps) that refuses at most MAX_FALSE_REFUSALS of these answerable questions."""
    ordered = sorted(confidences)
    allowed = int(MAX_FALSE_REFUSALS * len(ordered))
    return round(max(0.0, ordered[allowed] - 0.005), 2) if ordered else 0.0


def cross_validated_refusals(
    outcomes: dict[str, list[Outcome]], folds: dict[str, list[int]], out_of_scope: Sequence[Outcome]
) -> dict[str, Any]:
    false_refusals, answerable, thresholds = 0, 0, []
    for fold in range(FOLDS):
        train = [o.confidence for o in in_folds(outcomes, folds, set(range(FOLDS)) - {fold})]
        test = [o.confidence for o in in_folds(outcomes, folds, {fold})]
        threshold = refusal_threshold(train)
        thresholds.append(threshold)
        false_refusals += sum(c < threshold for c in test)
        answerable += len(test)
    threshold = min(thresholds) if thresholds else 0.0
    return {
        "fold_thresholds": thresholds,
        "false_refusal_rate": round(false_refusals / max(1, answerable), 4),
        "false_refusals": false_refusals,
        "out_of_scope_refused_at_lowest": round(
            sum(o.confidence < threshold for o in out_of_scope) / max(1, len(out_of_scope)), 3
        ),
    }


def with_indexing(settings: Settings, indexing: str) -> Settings:
    return settings.model_copy(update={"tuning": settings.tuning.model_copy(update=INDEXINGS[indexing])})


async def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    sets = [SETS[name] for name in args.sets.split(",")]
    indexings = [name for name in INDEXINGS if args.windows or name == "sections"]
    prepare_process_env(settings)
    embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache)
    questions = {s.name: load_questions([s.questions]) for s in sets}
    folds = {name: [q.fold for q in qs] for name, qs in questions.items()}
    grid = [
        (f"{indexing}: {name}", indexing, variant)
        for indexing in indexings
        for name, variant in tuning_grid(settings.tuning)
    ]
    techniques = [t for t in ladder(settings.tuning) if t[1] in indexings]
    if not args.windows:  # a candidate built on a skipped row cannot be compared
        techniques = [t for t in techniques if not t[3] or any(t[3] == other[0] for other in techniques)]
    runs: Runs = {}
    untuned: dict[str, dict[str, list[Outcome]]] = {"reference recipe": {}}
    untuned.update({name: {} for name, _, _, _ in techniques})
    untuned["configured defaults"] = {}
    out_of_scope: list[Outcome] = []
    synthetic: dict[str, Scores] = {}
    synthetic_stores: dict[str, Any] = {}
    indexes: list[EvalIndex] = []
    try:
        for real in sets:
            index = EvalIndex(settings, real.docs.resolve(), embedder)
            indexes.append(index)
            qs = questions[real.name]
            print(f"{real.name}: {len(qs)} questions over {real.docs}", file=sys.stderr)
            reference = ReferenceRetriever(embedder, await index.reference(), args.k)
            untuned["reference recipe"][real.name] = (await run_questions("reference", reference.pages, qs)).outcomes
            stores = {name: await index.production(with_indexing(settings, name)) for name in indexings}
            configured = production_retrieve(
                Retriever(embedder, stores["sections"], settings.retrieval, settings.tuning)
            )
            for name, indexing, variant, _ in techniques:
                retrieve = production_retrieve(Retriever(embedder, stores[indexing], settings.retrieval, variant))
                untuned[name][real.name] = (await run_questions(name, retrieve, qs)).outcomes
            untuned["configured defaults"][real.name] = untuned[DEFAULTS_ROW][real.name]  # the same settings
            for name, indexing, variant in grid:
                retrieve = production_retrieve(Retriever(embedder, stores[indexing], settings.retrieval, variant))
                runs.setdefault(name, {})[real.name] = (await run_questions(name, retrieve, qs)).outcomes
            if real.name == "milvus":
                if OUT_OF_SCOPE.exists():
                    oos = load_questions([OUT_OF_SCOPE])
                    out_of_scope = (await run_questions("out of scope", configured, oos)).outcomes
                if SYNTHETIC.exists() and not args.no_synthetic:
                    synthetic_qs = load_questions([SYNTHETIC])
                    rows: dict[str, Scores] = {}
                    for name, indexing, variant, _ in techniques:
                        retrieve = production_retrieve(
                            Retriever(embedder, stores[indexing], settings.retrieval, variant)
                        )
                        rows[name] = await run_questions(name, retrieve, synthetic_qs)
                    synthetic["reference recipe"] = await run_questions("reference", reference.pages, synthetic_qs)
                    synthetic["configured defaults"] = rows[DEFAULTS_ROW]
                    synthetic.update(rows)
                    synthetic_stores = stores
        if synthetic:  # the setting the tuning picks most often, on the regression set too
            _, chosen = cross_validate(runs, folds, args.k)
            name, indexing, variant = next(g for g in grid if g[0] == max(set(chosen), key=chosen.count))
            retrieve = production_retrieve(Retriever(embedder, synthetic_stores[indexing], settings.retrieval, variant))
            synthetic[name] = await run_questions(name, retrieve, load_questions([SYNTHETIC]))
    finally:
        for index in indexes:
            await index.close()
        embedder.close()
    sizes = {s.name: len(questions[s.name]) for s in sets}
    saved = settings.data_dir / "eval" / "last-outcomes.pickle"
    saved.write_bytes(pickle.dumps((untuned, runs, folds, out_of_scope, synthetic, sizes, techniques)))
    result = report(untuned, runs, folds, out_of_scope, synthetic, sizes, args.k, settings.tuning.min_score)
    result["techniques"] = technique_decisions(untuned, techniques, folds, args.k)
    _print_decisions(result["techniques"], args.k)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return 0


def report(
    untuned: dict[str, dict[str, list[Outcome]]],
    runs: Runs,
    folds: dict[str, list[int]],
    out_of_scope: Sequence[Outcome],
    synthetic: dict[str, Scores],
    sizes: dict[str, int],
    k: int,
    min_score: float,
) -> dict[str, Any]:
    """Print the tables and return the result: untuned rows, the cross-validated row, languages, refusals."""
    rows: list[dict[str, Any]] = [_row(name, per_set, k) for name, per_set in untuned.items()]
    held, chosen = cross_validate(runs, folds, k)
    tuned = _row("tuned pipeline (5-fold CV)", held, k)
    tuned["chosen_per_fold"] = chosen
    rows.append(tuned)
    refusals = cross_validated_refusals(held, folds, out_of_scope)
    _print_table(rows, list(sizes), k)
    print(f"\nchosen per fold: {chosen}")
    languages = {
        name: by_language(per_set, k)
        for name, per_set in (
            ("configured defaults", untuned["configured defaults"]),
            ("tuned pipeline (5-fold CV)", held),
        )
    }
    for name, langs in languages.items():
        print(
            f"{name} by language: "
            + ", ".join(
                f"{lang} {v[f'recall@{k}']:.2f} / {v[f'mrr@{k}']:.2f} (n={v['n']})" for lang, v in langs.items()
            )
        )
    print(
        f"refusal threshold (CV, ≤{MAX_FALSE_REFUSALS:.0%} false refusals on training folds): "
        f"{refusals['fold_thresholds']}, held-out false refusals {refusals['false_refusals']} "
        f"({refusals['false_refusal_rate']:.1%}), out-of-scope refused at the lowest: "
        f"{refusals['out_of_scope_refused_at_lowest']:.0%}"
    )
    sweep = refusal_sweep(held, out_of_scope, k)
    print("threshold  false refusals (real, held-out)  out-of-scope refused  answered with a gold page")
    for point in sweep:
        print(
            f"{point['threshold']:>9.2f}  {point['false_refusals']:>30}  {point['out_of_scope_refused']:>21.0%}"
            f"  {point['answered_found']:>25.0%}"
        )
    result: dict[str, Any] = {
        "k": k,
        "refusal_sweep": sweep,
        "sets": sizes,
        "rows": rows,
        "by_language": languages,
        "refusal": refusals,
    }
    if synthetic:
        most_chosen = max(set(chosen), key=chosen.count)
        regression = [
            {**scores.metrics(k, min_score), "name": f"tuned ({name})" if name == most_chosen else name}
            for name, scores in synthetic.items()
        ]
        print(f"\nsynthetic regression set ({SYNTHETIC.name}, questions written while reading the pages):")
        print_table(regression, k)
        result["synthetic"] = regression
    return result


def refusal_sweep(held: dict[str, list[Outcome]], out_of_scope: Sequence[Outcome], k: int = 5) -> list[dict[str, Any]]:
    """Per threshold: false refusals of the real (answerable) questions, refusals of the out-of-scope set, and of
    the real questions answered, how many had a gold page in the top ``k`` (what an auto channel's
    ``min_confidence`` trades: fewer answers, more of them right)."""
    answerable = [o for outcomes in held.values() for o in outcomes]
    rows = []
    for threshold in (round(0.20 + 0.02 * step, 2) for step in range(21)):
        answered = [o for o in answerable if o.confidence >= threshold]
        rows.append(
            {
                "threshold": threshold,
                "false_refusals": len(answerable) - len(answered),
                "out_of_scope_refused": round(
                    sum(o.confidence < threshold for o in out_of_scope) / max(1, len(out_of_scope)), 3
                ),
                "answered_found": round(sum(o.rank(k) is not None for o in answered) / max(1, len(answered)), 3),
            }
        )
    return rows


def by_language(per_set: dict[str, list[Outcome]], k: int) -> dict[str, dict[str, float]]:
    """Scores per question language: non-English questions are few, so they are reported apart."""
    langs: dict[str, list[Outcome]] = {}
    for outcomes in per_set.values():
        for outcome in outcomes:
            langs.setdefault(outcome.question.lang or "en", []).append(outcome)
    return {lang: summarise(items, k) for lang, items in sorted(langs.items())}


def _row(name: str, per_set: dict[str, list[Outcome]], k: int) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name}
    for set_name, outcomes in per_set.items():
        row[set_name] = summarise(outcomes, k)
    row["pooled"] = summarise([o for outcomes in per_set.values() for o in outcomes], k)
    row["macro"] = {
        key: round(sum(row[s][key] for s in per_set) / max(1, len(per_set)), 4) for key in (f"recall@{k}", f"mrr@{k}")
    }
    return row


def _print_decisions(decisions: Sequence[dict[str, Any]], k: int) -> None:
    print("\nkeep or drop, cross-validated (chosen on four folds, scored on the fifth), pooled:")
    for d in decisions:
        print(
            f"  {d['technique']:<50} kept in {d['kept_in_folds']}/{FOLDS} folds: R@{k} {d[f'base_recall@{k}']:.3f} -> "
            f"{d[f'cv_recall@{k}']:.3f}, MRR {d[f'base_mrr@{k}']:.3f} -> {d[f'cv_mrr@{k}']:.3f} (vs {d['against']})"
        )


def _print_table(rows: Sequence[dict[str, Any]], sets: Sequence[str], k: int) -> None:
    columns = [*sets, "pooled", "macro"]
    header = f"{'variant':<30}" + "".join(f"{c + f' R@{k} / MRR':>24}" for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = "".join(f"{row[c][f'recall@{k}']:>15.3f} / {row[c][f'mrr@{k}']:.3f}" for c in columns)
        print(f"{row['name']:<30}{cells}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cv", description=__doc__.splitlines()[0])
    add_set_options(parser)
    parser.add_argument("--json-out", type=Path, help="also write the result JSON here")
    parser.add_argument(
        "--no-windows", dest="windows", action="store_false", help="skip the windows index (its build is slow)"
    )
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic regression set")
    return parser.parse_args(argv)


def _set_names(text: str) -> str:
    unknown = [name for name in text.split(",") if name not in SETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown set(s): {', '.join(unknown)}")
    return text


def add_set_options(parser: argparse.ArgumentParser) -> None:
    """``--sets`` (checked against the dev sets) and ``--k``, as every cross-validated benchmark takes them."""
    parser.add_argument(
        "--sets", type=_set_names, default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}"
    )
    parser.add_argument("--k", type=int, default=5, help="pages that count as retrieved (default 5)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_evaluation(evaluate, args)


if __name__ == "__main__":
    raise SystemExit(main())
