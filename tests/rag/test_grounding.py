"""The grounding check: each sentence against the source it cites."""

from __future__ import annotations

from rag.grounding import check, declined, revise, sentences, supported_share

SOURCES = {
    1: "FLAT is an exact index: it compares the query with every vector. It takes no build parameters.",
    2: "IVF_FLAT divides vectors into nlist clusters and searches nprobe of them. The default nlist is 128.",
}


def test_sentences_split_prose_but_not_code_or_abbreviations() -> None:
    answer = (
        "Use `app.mount()` for a sub-app, e.g. a WSGI app [1]. It is served under its path.\n\n"
        "```python\napp.mount('/v1', sub)\n```\n\n- First item [2].\n- Second item."
    )
    assert [s for _, s in sentences(answer)] == [
        "Use `app.mount()` for a sub-app, e.g. a WSGI app [1].",
        "It is served under its path.",
        "First item [2].",
        "Second item.",
    ]


def test_a_sentence_its_source_holds_is_supported_and_a_swapped_fact_is_not() -> None:
    answer = "FLAT compares the query with every vector [1]. FLAT divides vectors into nlist clusters [1]."
    first, second = check(answer, SOURCES)
    assert first.supported and first.cited == (1,)
    assert not second.supported, "the nlist fact belongs to IVF_FLAT's source"
    assert second.best_source == 2
    assert supported_share([first, second]) == 0.5


def test_a_number_the_source_does_not_hold_counts_against_the_sentence() -> None:
    right, wrong = check("The default nlist is 128 [2]. The default nlist is 4096 [2].", SOURCES)
    assert right.supported and not wrong.supported


def test_an_uncited_sentence_borrows_the_next_citation_in_its_paragraph() -> None:
    checked = check("IVF_FLAT divides vectors into nlist clusters. It searches nprobe clusters [2].", SOURCES)
    assert [s.cited for s in checked] == [(2,), (2,)]
    assert all(s.supported for s in checked)
    lone = check("IVF_FLAT divides vectors into nlist clusters.", SOURCES)
    assert lone[0].cited == () and not lone[0].supported


def test_statements_that_the_docs_lack_something_and_questions_are_not_claims() -> None:
    checked = check("The docs do not mention GPU support for FLAT. Do you want exact search?", SOURCES)
    assert not any(s.claim for s in checked)
    assert supported_share(checked) is None


def test_revise_recites_a_sentence_to_the_source_that_holds_it() -> None:
    revision = revise("IVF_FLAT divides vectors into nlist clusters [1].", SOURCES, drop=False)
    assert revision.text == "IVF_FLAT divides vectors into nlist clusters [2]."
    assert (revision.verdict, revision.recited) == ("grounded", 1)


def test_strict_revise_drops_what_no_source_holds_but_never_everything() -> None:
    answer = "FLAT compares the query with every vector [1]. FLAT needs a GPU with eight gigabytes of memory [1]."
    assert revise(answer, SOURCES, drop=False).text == answer
    strict = revise(answer, SOURCES, drop=True)
    assert strict.text == "FLAT compares the query with every vector [1]." and strict.dropped == 1
    alone = revise("FLAT needs a GPU with eight gigabytes of memory [1].", SOURCES, drop=True)
    assert alone.verdict == "uncertain" and alone.dropped == 0, "nothing left to stand on: shown, marked uncertain"


def test_an_answer_without_any_supported_citation_is_uncertain() -> None:
    assert revise("Use the replication settings of PostgreSQL.", SOURCES, drop=False).verdict == "uncertain"


def test_the_model_declining_is_recognised_only_when_it_says_nothing_else() -> None:
    assert declined("The docs don't cover this.")
    assert declined("The documentation does not cover PostgreSQL replication.")
    assert revise("The docs don't cover this.", SOURCES, drop=True).verdict == "not covered"
    long = (
        "The docs don't cover GPUs directly, but FLAT compares the query with every vector [1], and IVF_FLAT "
        "divides vectors into nlist clusters and searches nprobe of them [2]."
    )
    assert not declined(long)


def test_an_answer_that_only_points_to_sources_is_grounded() -> None:
    assert revise("See [1] and [2].", SOURCES, drop=False).verdict == "grounded"
    assert revise("See the docs.", SOURCES, drop=False).verdict == "uncertain", "no citation at all"
