"""``python -m bench.gaps`` without its index run: the questions it records and the pages it never indexes."""

from __future__ import annotations

from pathlib import Path

from bench.common import CORPUS
from bench.gaps import docs_source, read_questions, reserved


def test_it_reports_on_every_unanswerable_dev_set_question() -> None:
    questions = read_questions()
    assert len(questions) == 30 and all(item["gold_sources"] == [] for item in questions)


def test_the_corpus_faq_pages_are_never_indexed(tmp_path: Path) -> None:
    faq = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if "faq" in p.name.lower())
    assert faq and all(reserved(path) for path in faq)
    assert not reserved("adminGuide/authenticate.md")
    source = docs_source(tmp_path, pages=300)
    copied = [p.relative_to(source.path).as_posix() for p in source.path.rglob("*.md")]
    assert copied and not any("faq" in path.lower() for path in copied)
    assert set(source.exclude) and docs_source(tmp_path).path == CORPUS
