"""``harness_factory``: the production Discord bot around a fresh fake Discord and Milvus Lite, closed at the end."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.discord.client import DocentBot
from bot.services import Services
from indexer.build import make_indexer
from indexer.community import with_community
from indexer.local import FolderDocs
from indexer.runner import Indexer
from indexer.sources import DocumentSource
from loopback.discord import FakeDiscord, pending_discordpy_tasks
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.metrics import Metrics
from rag.pipeline import Answering, AnswerPipeline
from rag.retrieval import Retriever
from rag.settings import FolderSource, Settings
from rag.store import MilvusStore
from tests.bot.discord.harness import ADMIN, ADMIN2, ALICE, BOB, DOCS, MANAGE_GUILD, SERVER_A, Harness, write_docs
from tests.bot.failing_store import FailingStore


@pytest.fixture
async def harness_factory(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Builds the production bot (real pipeline and indexer) around a fresh fake Discord and Milvus Lite.

    ``generator`` is the session's vLLM engine (tests that take the ``generator`` fixture, marked slow) or a
    scripted one; ``pipeline`` builds another answering path over the retriever (an engine still starting).
    ``before_start`` runs after the first index run, before the bot connects. ``feedback`` wraps the real feedback
    store (``SlowFeedback``). ``clock`` is the time follow-ups are due by. ``fake`` restarts: the new bot connects
    to the running fake of a harness closed with ``keep_fake=True``, whose members, channels and messages stay (give
    it its own Milvus Lite path: reopening one in a process restarts Lite's in-process server).
    """
    open_harnesses: list[tuple[Harness, Any, MilvusStore, FeedbackStore]] = []
    kept: list[FakeDiscord] = []  # fakes of closed harnesses, for the next bot
    docs = write_docs(tmp_path / "docs", DOCS)

    async def close(h: Harness, keep_fake: bool = False) -> None:
        entry = next(e for e in open_harnesses if e[0] is h)
        open_harnesses.remove(entry)
        _, runner, inner, feedback = entry
        await runner.__aexit__(None, None, None)
        if keep_fake:
            kept.append(h.fake)
        else:
            await h.fake.close()
        await inner.close()
        feedback.close()
        assert not h.fake.errors, h.fake.errors
        unexpected = [
            m
            for m in h.fake.any_pings()
            if m.allowed_pings.users or m.allowed_pings.everyone or not m.allowed_pings.roles <= h.allowed_roles
        ]
        assert not unexpected, "the bot pinged someone"
        assert h.bot.is_closed()

    async def build(
        generator: Any,
        *,
        pages: dict[str, str] | None = None,
        guild_id: int = SERVER_A,
        bot_options: dict[str, Any] | None = None,
        before_start: Callable[[FakeDiscord], Awaitable[None]] | None = None,
        wait_for_sync: bool = True,
        pipeline: Callable[[Retriever, Settings], Answering] | None = None,
        fake_options: dict[str, Any] | None = None,
        feedback: Callable[[FeedbackStore], Any] | None = None,
        fake: FakeDiscord | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> Harness:
        if pages:
            write_docs(docs, pages)
        settings = make_settings(
            bot={"user_cooldown_s": 0, "edit_interval_s": 0.2, "reindex_cooldown_s": 0, **overrides.pop("bot", {})},
            **overrides,
        )
        inner = MilvusStore(settings.milvus_uri, settings.milvus)
        store = FailingStore(inner)
        source = FolderSource(id="docs", path=docs, base_url="https://milvus.io/docs/")
        metrics = Metrics()
        indexer: Indexer = make_indexer(settings, embedder, store, metrics=metrics)
        await indexer.run([FolderDocs(source)])
        retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
        answering = (
            pipeline(retriever, settings)
            if pipeline
            else AnswerPipeline(retriever, generator, settings.retrieval, settings.answer)
        )
        store_of_feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")

        def docs_only(source_id: str | None) -> list[DocumentSource]:
            return [FolderDocs(source)] if source_id in (None, "docs") else []

        sources = with_community(docs_only, settings.data_dir / LEARNED_FILE)

        services = Services(
            settings,
            answering,
            indexer,
            sources,
            feedback(store_of_feedback) if feedback else store_of_feedback,
            metrics=metrics,
            clock=clock,
        )
        bot = DocentBot(services, own_services=True, guild_ready_timeout=0.1, **(bot_options or {}))
        if fake is not None:
            kept.remove(fake)
        else:
            fake = FakeDiscord(guild_id=guild_id, **(fake_options or {}))
            await fake.start()
            for user in (ALICE, BOB):
                fake.add_member(user, f"user{user % 100}")
            fake.add_member(ADMIN, "admin", permissions=MANAGE_GUILD)
            fake.add_member(ADMIN2, "admin2", permissions=MANAGE_GUILD)
        if before_start is not None:
            await before_start(fake)
        runner = fake.run_bot(bot)
        await runner.__aenter__()
        h = Harness(fake, bot, store, settings, close)
        open_harnesses.append((h, runner, inner, store_of_feedback))
        if wait_for_sync:
            await fake.wait_for(bot.commands_synced.is_set, what="the slash command sync")
        return h

    yield build
    for h, *_ in reversed(list(open_harnesses)):
        await close(h)
    for fake in kept:
        await fake.close()
    assert not pending_discordpy_tasks()
