"""The answer benchmark's questions, references and judge (the runs themselves need a real model: bench only)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.answers import OUT_OF_SCOPE, Item, Record, load_items, record_from_json, record_json, sample
from bench.crossval import SETS
from bench.judge import correctness, judge_records, kappa, language, refused, words


def _record(text: str, *, facts=(("root_path", "--root-path"),), wrong_if=(), refused_=False, **item) -> Record:
    question = Item(
        "fastapi", "q1", "How do I serve behind a proxy prefix?", key_facts=facts, wrong_if=wrong_if, **item
    )
    return Record("default", "m", question, text=text, refused=refused_, sources={"1": "Set root_path to the prefix."})


def test_every_real_question_has_a_reference_answer_and_key_facts() -> None:
    for real in SETS.values():
        items = load_items(real)
        assert items and all(item.reference and item.key_facts for item in items), real.name
        assert all(all(alt.strip() for fact in item.key_facts for alt in fact) for item in items)
        assert len({item.qid for item in items}) == len(items)
    out_of_scope = load_items(OUT_OF_SCOPE)
    assert out_of_scope and not any(item.answerable for item in out_of_scope)


def test_a_sample_is_the_same_questions_whatever_the_order() -> None:
    items = load_items(SETS["fastapi"])
    assert sample(items, 10) == sample(list(reversed(items)), 10)
    assert len(sample(items, 10)) == 10 and sample(items, 0) == items


def test_correctness_follows_the_key_facts() -> None:
    assert correctness(_record("Run with `--root-path /api` [1].")) == "right"
    two = (("root_path",), ("uvicorn",))
    assert correctness(_record("Set root_path [1].", facts=two)) == "partly"
    assert correctness(_record("Use a middleware [1].")) == "wrong"
    assert correctness(_record("Set root_path, or openapi_prefix [1].", wrong_if=("openapi_prefix",))) == "wrong"
    assert correctness(_record("", refused_=True)) == "refused"


def test_a_declining_answer_without_citations_is_a_refusal() -> None:
    assert refused(_record("The documentation does not cover this."))
    assert refused(_record("I couldn't find this in the documentation, so I won't guess."))
    assert not refused(_record("The docs don't cover uvicorn flags, but root_path does it [1]."))


def test_language_and_words() -> None:
    assert language("如何设置 root_path？") == "Chinese" and language("Set root_path [1].") == "English"
    assert words("Set the `root_path` option [1].") == 4
    assert words("设置根路径") == 2


def test_kappa_is_one_for_full_agreement_and_zero_for_chance() -> None:
    assert kappa([("right", "right"), ("wrong", "wrong")]) == 1.0
    assert kappa([("right", "right"), ("right", "wrong"), ("wrong", "right"), ("wrong", "wrong")]) == 0.0


def test_hand_labels_follow_the_answer_text_and_are_compared_with_the_judge(tmp_path: Path) -> None:
    good, bad = _record("Run with --root-path [1]."), _record("Use a middleware [1].")
    bad = Record(bad.recipe, bad.model, Item("fastapi", "q2", "other", key_facts=bad.item.key_facts), text=bad.text)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps({"key": good.key, "correctness": "right", "grounded": True})
        + "\n"
        + json.dumps({"key": bad.key, "correctness": "partly", "grounded": False})
        + "\n"
    )
    summary = judge_records([good, bad], labels_path=labels)["table"][0]
    assert summary["right"] == 0.5 and summary["hand"]["agreement"] == 0.5
    assert summary["hand"]["right_or_partly"] == 1.0
    assert record_from_json(record_json(good)).key == good.key
    changed = Record(good.recipe, good.model, good.item, text=good.text + " More.")
    assert changed.key != good.key, "a label never carries over to a different answer"
