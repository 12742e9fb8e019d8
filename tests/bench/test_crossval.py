"""Cross-validation never scores a fold with a setting chosen on it."""

from __future__ import annotations

from bench.crossval import FOLDS, cross_validate, in_folds, refusal_threshold
from bench.scoring import Outcome, Question


def _outcome(found: bool, fold: int, confidence: float = 0.5) -> Outcome:
    question = Question(f"q{fold}", frozenset({"gold.md"}), fold=fold)
    return Outcome(question, ["gold.md" if found else "other.md"], confidence, 1.0)


def test_each_fold_is_scored_with_the_setting_that_won_on_the_other_folds() -> None:
    folds = {"docs": list(range(FOLDS))}
    # "a" finds folds 0-3 and misses fold 4; "b" finds only fold 4. On every training split that leaves
    # fold 4 in, "a" wins; trained without fold 4 too, "a" wins. So fold 4 is scored with "a": a miss.
    runs = {
        "a": {"docs": [_outcome(f != 4, f) for f in range(FOLDS)]},
        "b": {"docs": [_outcome(f == 4, f) for f in range(FOLDS)]},
    }
    held, chosen = cross_validate(runs, folds, k=5)
    assert chosen == ["a"] * FOLDS
    assert [o.rank(5) for o in held["docs"]] == [1, 1, 1, 1, None]


def test_the_choice_depends_only_on_the_training_folds() -> None:
    folds = {"docs": [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]}
    # Trained on folds 1-4, "a" wins (5 of 8 against 4); counting fold 0 as well, "b" would (6 of 10 against 5).
    a = [False, False, True, True, True, False, True, False, True, False]
    b = [True, True, True, False, True, False, True, False, True, False]
    runs = {
        "a": {"docs": [_outcome(hit, f) for hit, f in zip(a, folds["docs"], strict=True)]},
        "b": {"docs": [_outcome(hit, f) for hit, f in zip(b, folds["docs"], strict=True)]},
    }
    held, chosen = cross_validate(runs, folds, k=5)
    assert chosen == ["a", "b", "b", "b", "b"]
    assert [o.rank(5) for o in held["docs"][:2]] == [None, None], "fold 0 scored with a, which misses it"


def test_in_folds_keeps_the_named_folds_of_every_set() -> None:
    per_set = {"x": [_outcome(True, 0), _outcome(True, 1)], "y": [_outcome(False, 1)]}
    folds = {"x": [0, 1], "y": [1]}
    assert len(in_folds(per_set, folds, {1})) == 2


def test_refusal_threshold_refuses_at_most_one_percent() -> None:
    confidences = [0.30 + i / 1000 for i in range(200)]  # 0.300 .. 0.499
    threshold = refusal_threshold(confidences)
    assert sum(c < threshold for c in confidences) <= 2
    assert threshold > 0.29


def test_the_base_ladder_adds_one_technique_per_row_and_candidates_build_on_the_defaults() -> None:
    from bench.crossval import BASE_LADDER, CANDIDATES, INDEXINGS, ladder, tuning_grid
    from rag.settings import TuningSettings

    defaults = TuningSettings()
    rows = ladder(defaults)
    assert [name for name, _, _, _ in rows] == [name for name, _, _ in BASE_LADDER + CANDIDATES]
    assert all(indexing in INDEXINGS for _, indexing, _, _ in rows)
    first = rows[0][2]
    assert (first.mode, first.page_bonus, first.normalise_query, first.heading_search) == ("dense", 0.0, False, False)
    top = rows[len(BASE_LADDER) - 1]
    assert top[2] == defaults, "the base ladder ends at the configured defaults"
    assert [against for _, _, _, against in rows[len(BASE_LADDER) :]] == [top[0]] * len(CANDIDATES)
    assert rows[len(BASE_LADDER)][2].heading_search and not defaults.heading_search
    names = [name for name, _ in tuning_grid(defaults)]
    assert len(names) == len(set(names)), "every grid setting is named apart"


def test_a_technique_is_kept_only_in_folds_where_it_won_on_the_others() -> None:
    from bench.crossval import technique_decisions
    from rag.settings import TuningSettings

    folds = {"docs": list(range(FOLDS))}
    base = [_outcome(True, f) for f in range(FOLDS)]
    worse = [_outcome(f == 0, f) for f in range(FOLDS)]
    untuned = {"base": {"docs": base}, "worse": {"docs": worse}}
    rows = [("base", "sections", TuningSettings(), ""), ("worse", "sections", TuningSettings(), "base")]
    (decision,) = technique_decisions(untuned, rows, folds, 5)
    assert decision["kept_in_folds"] == 0 and decision["cv_recall@5"] == 1.0


def test_the_report_scores_every_row_language_and_refusal_from_outcomes(capsys) -> None:
    from bench.crossval import report
    from bench.scoring import Scores

    folds = {"docs": list(range(FOLDS)) * 2}

    def outcomes(found: list[bool], lang: str = "") -> list[Outcome]:
        return [
            Outcome(
                Question(f"q{i}", frozenset({"g.md"}), fold=f, lang=lang if i == 0 else "en"),
                ["g.md" if hit else "x.md"],
                0.3 + i / 100,
                1.0,
            )
            for i, (hit, f) in enumerate(zip(found, folds["docs"], strict=True))
        ]

    good, bad = outcomes([True] * 10, lang="zh"), outcomes([False] * 10)
    untuned = {"reference recipe": {"docs": bad}, "configured defaults": {"docs": good}}
    runs = {"a": {"docs": good}, "b": {"docs": bad}}
    off_topic = [Outcome(Question("pizza", frozenset()), ["x.md"], 0.1, 1.0)]
    synthetic = {name: Scores(name, good) for name in ("reference recipe", "configured defaults", "a", "b")}
    result = report(untuned, runs, folds, off_topic, synthetic, {"docs": 10}, 5, 0.34)
    rows = {row["name"]: row for row in result["rows"]}
    assert rows["tuned pipeline (5-fold CV)"]["pooled"]["recall@5"] == 1.0
    assert rows["reference recipe"]["pooled"]["recall@5"] == 0.0
    assert result["by_language"]["configured defaults"]["zh"]["n"] == 1
    assert result["refusal"]["out_of_scope_refused_at_lowest"] == 1.0
    assert result["refusal_sweep"][0]["false_refusals"] == 0
    assert "tuned (a)" in [row["name"] for row in result["synthetic"]]
    assert "synthetic regression set" in capsys.readouterr().out


def test_the_study_varies_only_tuning_settings() -> None:
    """What bench.cv chooses is the ``tuning`` section, and nothing else: every row and indexing changes only it."""
    from bench.crossval import INDEXINGS, TECHNIQUES, tuning_grid
    from rag.settings import TuningSettings

    changed = {key for _, _, update in TECHNIQUES for key in update} | {k for u in INDEXINGS.values() for k in u}
    assert changed <= set(TuningSettings.model_fields)
    # model_copy(update=...) does not validate: a key that is no tuning setting would ride along unseen.
    grid = [variant for _, variant in tuning_grid(TuningSettings())]
    assert grid and all(set(variant.__dict__) == set(TuningSettings.model_fields) for variant in grid)


def test_the_sweep_says_how_many_answers_above_a_threshold_found_their_page() -> None:
    """An auto channel's ``min_confidence`` is read from this: above it, fewer answers, more of them right."""
    from bench.crossval import refusal_sweep

    def outcome(confidence: float, found: bool) -> Outcome:
        return Outcome(Question("q", frozenset({"g.md"})), ["g.md" if found else "x.md"], confidence, 1.0)

    held = {"docs": [outcome(0.25, False), outcome(0.35, False), outcome(0.45, True), outcome(0.55, True)]}
    sweep = {row["threshold"]: row for row in refusal_sweep(held, [outcome(0.41, False)], 5)}
    assert sweep[0.2]["answered_found"] == 0.5 and sweep[0.2]["false_refusals"] == 0
    assert sweep[0.4]["answered_found"] == 1.0 and sweep[0.4]["false_refusals"] == 2
    assert sweep[0.4]["out_of_scope_refused"] == 0.0 and sweep[0.42]["out_of_scope_refused"] == 1.0
    assert sweep[0.6]["answered_found"] == 0.0 and sweep[0.6]["false_refusals"] == 4
