"""Slack mentions end to end: the real slack-bolt app over the fake Slack, real Milvus Lite and MiniLM retrieval,
a scripted generator (the shared vLLM engine is for the slow e2e suite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.slack.app import build_app
from bot.slack.ask import SEARCHING, question_text
from rag.pipeline import AnswerPipeline
from rag.retrieval import Retriever
from rag.settings import Settings
from tests.bot.slack.fake_slack import FakeSlack, Posted
from tests.conftest import index_pages
from tests.scripted import ScriptedGenerator

DOCS = {"index.md": "# Index\n\n## HNSW\n\nHNSW builds a graph. `M` is the maximum degree of a node.\n"}


def test_the_question_is_the_mention_text_without_the_mention_and_escapes() -> None:
    assert question_text("<@UBOT> is a &lt; b &amp;&amp; c?") == "is a < b && c?"


@asynccontextmanager
async def running(slack: FakeSlack, settings: Settings, pipeline: AnswerPipeline) -> AsyncIterator[None]:
    app = build_app(settings, pipeline)
    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=app.client)
    await handler.connect_async()
    try:
        yield
    finally:
        await handler.close_async()


async def _final(slack: FakeSlack, thread: str) -> Posted:
    async def done() -> Posted:
        while True:
            for message in slack.messages.values():
                if message.thread_ts == thread and message.blocks:
                    return message
            await slack.changed()

    return await asyncio.wait_for(done(), 30)


@pytest.mark.integration
async def test_a_mention_gets_a_threaded_answer_with_sources_and_no_pings(
    tmp_path: Path, embedder, store, make_settings: Callable[..., Settings]
) -> None:
    await index_pages(tmp_path / "docs", DOCS, embedder, store, base_url="https://docs.example/")
    generator = ScriptedGenerator(["<!channel> HNSW ", "<!channel> HNSW is a graph index <@U999> [1]."])
    async with FakeSlack() as slack:
        settings = make_settings(slack={"bot_token": slack.bot_token, "api_base": slack.api_base})
        pipeline = AnswerPipeline(Retriever(embedder, store, settings.retrieval), generator, settings.retrieval)
        async with running(slack, settings, pipeline):
            envelope = await slack.mention("C1", "U1", "<@UBOT> what is HNSW?")
            await slack.wait_acked(envelope)
            answer = await _final(slack, envelope.payload["event"]["ts"])
    assert answer.versions >= 2, f"posted as {SEARCHING!r} first, then edited"
    texts = [b["text"]["text"] for b in answer.blocks if b["type"] == "section"]
    assert "HNSW is a graph index" in texts[0]
    assert "<https://docs.example/index.md#hnsw|Index › HNSW>" in texts[-1]
    assert not any(b["type"] == "actions" for b in answer.blocks), "no buttons until their clicks are recorded"
    assert slack.notifications == [], "nothing the bot posted can notify anyone"
    assert "what is HNSW?" in generator.prompts[0][-1]["content"]


@pytest.mark.integration
async def test_a_store_outage_ends_as_a_worded_message_and_the_next_mention_is_answered(
    embedder, make_settings: Callable[..., Settings]
) -> None:
    from rag.settings import MilvusSettings
    from rag.store import MilvusStore

    broken = MilvusStore("http://127.0.0.1:9", MilvusSettings(timeout_s=2))
    async with FakeSlack() as slack:
        settings = make_settings(slack={"bot_token": slack.bot_token, "api_base": slack.api_base})
        pipeline = AnswerPipeline(
            Retriever(embedder, broken, settings.retrieval), ScriptedGenerator(), settings.retrieval
        )
        async with running(slack, settings, pipeline):
            for question in ("what is HNSW?", "and IVF?"):
                envelope = await slack.mention("C1", "U1", f"<@UBOT> {question}")
                thread = envelope.payload["event"]["ts"]

                async def worded(thread: str = thread) -> str:
                    while True:
                        for message in slack.messages.values():
                            if message.thread_ts == thread and "error id" in message.text:
                                return message.text
                        await slack.changed()

                text = await asyncio.wait_for(worded(), 30)
                assert text != SEARCHING and "`" in text
