from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.feedback import FeedbackStore
from rag.models import Answer, Citation


def answer(question: str, request_id: str, *, refused: bool = False) -> Answer:
    return Answer(question, f"answer to {question}", (Citation(1, "Page", "https://x/p"),), refused, (), request_id)


async def test_report_counts_questions_refusals_and_votes(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    a1 = await store.record_answer(answer("How do I install?", "r1"), 111)
    await store.record_answer(answer("how do I install? ", "r2"), 222)
    a3 = await store.record_answer(answer("Best pizza?", "r3", refused=True), 111)
    assert await store.vote(a1, 111, True)
    assert await store.vote(a3, 222, False)
    assert await store.vote(a3, 222, False)  # a second click by the same person replaces the first
    assert not await store.vote("missing", 111, True)

    report = await store.report()
    assert (report.answers, report.refused, report.helpful, report.not_helpful) == (3, 1, 1, 1)
    assert report.top_questions[0][1] == 2  # the two install questions are one question
    assert report.not_in_docs == [("Best pizza?", 1)]
    assert report.thumbs_down[0]["question"] == "Best pizza?"
    assert "Top questions" in report.as_text()
    store.close()


async def test_user_ids_are_never_stored_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    await store.record_answer(answer("q", "r1"), 987654321987654321)
    await store.vote("r1", 987654321987654321, True)
    store.close()
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "987654321987654321" not in dump


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    first = FeedbackStore(path)
    await first.record_answer(answer("q", "r1"), 1)
    salt_hash = first.hash_user(1)
    first.close()
    second = FeedbackStore(path)
    assert second.hash_user(1) == salt_hash
    assert await second.vote("r1", 1, False)
    assert (await second.report()).not_helpful == 1
    second.close()
