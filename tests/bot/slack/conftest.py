"""The ``slack_harness`` fixture: build one production Slack app over the fake per call, all closed at the end."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.services import Services
from bot.slack.app import build_app, running
from indexer.build import make_indexer
from indexer.community import with_community
from indexer.local import FolderDocs
from indexer.sources import DocumentSource
from loopback.slack import FakeSlack
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.pipeline import Answering, AnswerPipeline
from rag.retrieval import Retriever
from rag.settings import FolderSource, Settings
from rag.store import MilvusStore
from tests.bot.failing_store import FailingStore
from tests.bot.slack.harness import ADMIN, BOB, DOCS, MEMBER, Harness


@pytest.fixture
async def slack_app(
    tmp_path: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[AsyncApp, FakeSlack, set[str]]]:
    """The production Slack app as ``build_app`` makes it, not connected (its Web API is the fake's), with the
    event types it registered listeners for (``app.event`` and ``app.message`` calls, recorded as they run)."""
    events: set[str] = set()
    event, message = AsyncApp.event, AsyncApp.message

    def record_event(self: AsyncApp, kind: Any, *args: Any, **kwargs: Any) -> Any:
        events.add(kind if isinstance(kind, str) else str(kind.get("type")) if isinstance(kind, dict) else repr(kind))
        return event(self, kind, *args, **kwargs)

    def record_message(self: AsyncApp, *args: Any, **kwargs: Any) -> Any:
        events.add("message")
        return message(self, *args, **kwargs)

    monkeypatch.setattr(AsyncApp, "event", record_event)
    monkeypatch.setattr(AsyncApp, "message", record_message)
    async with FakeSlack() as slack:
        settings = make_settings(slack={"bot_token": slack.bot_token, "api_base": slack.api_base})
        feedback = FeedbackStore(tmp_path / "feedback.sqlite3")
        services = Services(settings, Any, Any, lambda _: [], feedback)  # type: ignore[arg-type]  # never asked
        try:
            yield build_app(services), slack, events
        finally:
            await services.close()
            feedback.close()


@pytest.fixture
async def slack_harness(
    tmp_path: Path, embedder: Any, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    opened: list[tuple[Harness, MilvusStore, FeedbackStore]] = []

    async def build(
        generator: Any,
        *,
        fake: dict[str, Any] | None = None,
        pipeline: Callable[[Retriever, Settings], Answering] | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> Harness:
        """``pipeline`` builds another answering path over the retriever (an engine still starting); ``clock`` is the
        time follow-ups are due by."""
        docs = tmp_path / "docs"
        docs.mkdir(exist_ok=True)
        for name, text in DOCS.items():
            (docs / name).write_text(text)
        slack = FakeSlack(**(fake or {}))
        await slack.__aenter__()
        slack.add_user(ADMIN, "ada", admin=True)
        slack.add_user(MEMBER, "max")
        slack.add_user(BOB, "bob")
        settings = make_settings(
            slack={
                "bot_token": slack.bot_token,
                "app_token": slack.app_token,
                "api_base": slack.api_base,
                **overrides.pop("slack", {}),
            },
            bot={"user_cooldown_s": 0, "edit_interval_s": 0.2, "reindex_cooldown_s": 0, **overrides.pop("bot", {})},
            **overrides,
        )
        inner = MilvusStore(settings.milvus_uri, settings.milvus)
        store = FailingStore(inner)
        source = FolderSource(id="docs", path=docs, base_url="https://docs.example/")
        indexer = make_indexer(settings, embedder, store)
        await indexer.run([FolderDocs(source)])
        retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
        answering = (
            pipeline(retriever, settings)
            if pipeline
            else AnswerPipeline(retriever, generator, settings.retrieval, settings.answer)
        )
        feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")

        def docs_only(source_id: str | None) -> list[DocumentSource]:
            return [FolderDocs(source)] if source_id in (None, "docs") else []

        sources = with_community(docs_only, settings.data_dir / LEARNED_FILE)

        services = Services(settings, answering, indexer, sources, feedback, clock=clock)
        harness = Harness(slack, services, store, lambda: running(services))
        await harness.start()
        opened.append((harness, inner, feedback))
        return harness

    yield build
    for harness, inner, feedback in reversed(opened):
        await harness.stop()
        await harness.services.close()
        await harness.slack.__aexit__(None, None, None)
        await inner.close()
        feedback.close()
