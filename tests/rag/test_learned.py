"""Community answers waiting for approval: captured, stitched, decided, forgotten."""

from __future__ import annotations

from pathlib import Path

from rag.learned import LearnedStore


async def capture(
    store: LearnedStore, answer: str, *, author: str = "ada", author_id: str = "U1", thread: str = "t1"
) -> int:
    return await store.capture(
        private=False,
        platform="slack",
        space="T1",
        channel="C1",
        thread=thread,
        question="How do I tune nprobe?",
        answer=answer,
        link=f"https://example.slack.com/archives/C1/p{thread}",
        author=author,
        author_id=author_id,
        asker_id="U9",
    )


async def test_consecutive_messages_of_one_author_are_one_pair_and_decisions_stick(tmp_path: Path) -> None:
    store = LearnedStore(tmp_path / "learned.sqlite3")
    first = await capture(store, "Start with nprobe = 16.")
    assert await capture(store, "Then raise it until recall is good.") == first, "stitched"
    other = await capture(store, "Or use HNSW.", author="bob", author_id="U2")
    assert other != first
    assert await capture(store, "Really, nprobe 16.") != first, "not consecutive any more: a new pair"
    pending = await store.list()
    assert pending[0].answer == "Start with nprobe = 16.\n\nThen raise it until recall is good."
    assert await store.decide(first, "approved", answer="Start with nprobe = 16, then raise it.")
    assert await store.decide(other, "rejected")
    assert not await store.decide(999, "approved")
    approved = await store.list("approved")
    assert [(p.id, p.answer) for p in approved] == [(first, "Start with nprobe = 16, then raise it.")]
    assert approved[0].as_markdown().startswith("# Community answer by @ada")
    store.close()


async def test_forget_removes_what_a_user_asked_or_wrote(tmp_path: Path) -> None:
    store = LearnedStore(tmp_path / "learned.sqlite3")
    await capture(store, "A.", thread="t1")
    await capture(store, "B.", author="bob", author_id="U2", thread="t2")
    assert await store.forget("slack", "U2") == 1
    assert await store.forget("slack", "U9") == 1, "the asker of the other pair"
    assert await store.list(None) == []
    store.close()
