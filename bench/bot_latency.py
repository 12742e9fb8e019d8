"""Latency a chat user sees, on Discord or on Slack: question arrival -> first sign of life, and -> final answer.

The production front-end runs against its loopback fake (``loopback.discord``, ``loopback.slack``) with real
Milvus Lite, MiniLM and the vLLM CPU engine: the tiny model by default (generation time is then the engine's floor),
or a real one with ``--model`` (a ``bench.models`` name or a folder).

    python -m bench.bot_latency [--platform discord|slack] [--questions 40] [--concurrency 4] [--model NAME]

Discord (a /ask interaction): arrival -> deferral sent, -> first words of the answer, and -> final answer. Slack (an
@-mention over Socket Mode): arrival -> envelope acked, -> placeholder posted in the thread, -> first words, and ->
final answer. "First words" is the first edit (or stream append) that shows the model's text; the pipeline's own
time to first token is reported beside it, so the difference is what the front-end's pacing adds. Prints a table
and writes bench/results/bot_latency[_slack][-MODEL].json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import ROOT, bench_settings, corpus_source, write_results
from bench.scoring import percentile

if TYPE_CHECKING:
    from indexer.runner import Indexer
    from loopback.slack import FakeSlack
    from rag.feedback import FeedbackStore
    from rag.pipeline import AnswerPipeline
    from rag.settings import Settings

QUESTIONS = [
    "What do the parameters for HNSW mean?",
    "How do I install Milvus with Docker Compose?",
    "How do I create a collection?",
    "What metric types are supported?",
    "How do I delete entities by filter?",
    "What is a partition key?",
    "How can I speed up search?",
    "What does consistency level mean?",
]
WARM_UP = "warm-up question"
MENTION = "<@UBOT>"  # the fake Slack's bot user
ANSWER_TIMEOUT_S = 300
RESULTS = {"discord": "bot_latency.json", "slack": "bot_latency_slack.json"}
ROWS = {  # result key -> table label, per platform
    "discord": {
        "deferral_ms": "arrival -> deferral sent",
        "first_token_ms": "pipeline: first token",
        "first_words_ms": "arrival -> first words shown",
        "final_ms": "arrival -> final answer",
    },
    "slack": {
        "ack_ms": "arrival -> envelope acked",
        "first_reply_ms": "arrival -> placeholder posted",
        "first_token_ms": "pipeline: first token",
        "first_words_ms": "arrival -> first words shown",
        "final_ms": "arrival -> final answer",
    },
}


@dataclass
class Core:
    """What both platforms share: one settings tree, index, engine and feedback store."""

    settings: Settings
    pipeline: Timed
    indexer: Indexer
    feedback: FeedbackStore
    pages_indexed: int


class Timed:
    """The pipeline, keeping each answer's time to first token (measured by the pipeline from its start)."""

    def __init__(self, inner: AnswerPipeline) -> None:
        self.inner = inner
        self.first_token_ms: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stream(self, question: str, **options: Any) -> AsyncIterator[Any]:
        async for update in self.inner.stream(question, **options):
            if question == WARM_UP:  # answered or refused (a real model's relevance check may refuse it): not timed
                yield update
                continue
            if update.answer is not None and "first_token_ms" in update.answer.timings_ms:
                self.first_token_ms.append(update.answer.timings_ms["first_token_ms"])
            yield update


@contextlib.asynccontextmanager
async def open_core(args: argparse.Namespace, **overrides: Any) -> AsyncIterator[Core]:
    """Settings in a fresh directory (no cooldown, no per-server rate: each question must be answered, not turned
    away), MiniLM, Milvus Lite with the first ``--pages`` pages indexed, the vLLM engine and the feedback store;
    closed in reverse order. ``overrides`` are more settings sections (the fake Slack's tokens)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from indexer.build import make_indexer
    from indexer.local import FolderDocs
    from rag.feedback import FeedbackStore
    from rag.generator import VLLMGenerator
    from rag.pipeline import AnswerPipeline
    from rag.retrieval import Retriever
    from rag.settings import prepare_process_env
    from rag.store import MilvusStore

    work = Path(tempfile.mkdtemp(prefix="docent-bench-"))
    bot = {"user_cooldown_s": 0, "guild_questions_per_minute": 0, "max_concurrent_answers": args.concurrency}
    if args.model:
        from bench.answers import model_path
        from rag.settings import LLMSettings

        real = {"model": model_path(args.model, ROOT / ".data"), "timeout_s": 600.0, "max_num_seqs": args.concurrency}
        overrides["llm"] = {**LLMSettings().model_dump(), **real, "kv_cache_gb": None}
        overrides["answer"] = {"project": "Milvus"}
    settings = bench_settings(work, bot=bot, **overrides)
    prepare_process_env(settings)
    from rag.embedder import SentenceTransformerEmbedder

    async with contextlib.AsyncExitStack() as stack:
        embedder = SentenceTransformerEmbedder(settings.embedding, settings.embedding_cache)
        stack.callback(embedder.close)
        store = MilvusStore(settings.milvus_uri, settings.milvus)
        stack.push_async_callback(store.close)
        indexer = make_indexer(settings, embedder, store)
        report = await indexer.run([FolderDocs(corpus_source(work, args.pages))])
        generator = await VLLMGenerator.start(settings.llm)
        stack.push_async_callback(generator.close)
        feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
        stack.callback(feedback.close)
        pipeline = AnswerPipeline(
            Retriever(embedder, store, settings.retrieval, settings.tuning),
            generator,
            settings.retrieval,
            settings.answer,
        )
        yield Core(settings, Timed(pipeline), indexer, feedback, report.pages_new)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def results(
    args: argparse.Namespace, core: Core, rows: dict[str, list[float]], *, wall: float, peak_queue: int
) -> dict[str, Any]:
    rows = {**rows, "first_token_ms": core.pipeline.first_token_ms}
    return {
        "platform": args.platform,
        "model": args.model or "tiny",
        "questions": args.questions,
        "concurrency": args.concurrency,
        "gap_s": args.gap,
        "pages_indexed": core.pages_indexed,
        **{key: summary(values) for key, values in rows.items()},
        "mean_final_ms": statistics.fmean(rows["final_ms"]),
        "wall_s": wall,
        "peak_queue": peak_queue,
    }


# -- Discord ---------------------------------------------------------------------------------------------------------


async def run_discord(args: argparse.Namespace) -> dict[str, Any]:
    from bot.discord.client import DocentBot
    from bot.services import Services
    from loopback.discord import FakeDiscord

    users = [700000000000000000 + i for i in range(args.questions)]
    deferral: list[float] = []
    words: list[float] = []
    final: list[float] = []
    async with open_core(args) as core, FakeDiscord() as fake:
        services = Services(core.settings, core.pipeline, core.indexer, lambda _id: [], core.feedback)
        bot = DocentBot(services, own_services=True, guild_ready_timeout=0.1)
        for user in users:
            fake.add_member(user, f"user{user % 1000}")
        async with fake.run_bot(bot):
            await fake.slash("ask", {"question": WARM_UP}, user_id=users[0])
            await asyncio.sleep(3)
            started = time.monotonic()
            sent = []
            for i, user in enumerate(users):
                sent.append(await fake.slash("ask", {"question": QUESTIONS[i % len(QUESTIONS)]}, user_id=user))
                await asyncio.sleep(args.gap)
            for ix in sent:

                def answered(ix: Any = ix) -> bool:
                    return ix.original is not None and any("AI-generated" in c for c in ix.original.contents)

                await fake.wait_for(answered, timeout=ANSWER_TIMEOUT_S)
                assert ix.deferred_at is not None and ix.original is not None
                done = next(t for t, text in ix.original.history if "AI-generated" in text)
                shown = next(t for t, text in ix.original.history if text.endswith("▌") or "AI-generated" in text)
                deferral.append((ix.deferred_at - ix.created_at) * 1000)
                words.append((shown - ix.created_at) * 1000)
                final.append((done - ix.created_at) * 1000)
            wall = time.monotonic() - started
        rows = {"deferral_ms": deferral, "first_words_ms": words, "final_ms": final}
        return results(args, core, rows, wall=wall, peak_queue=bot.services.admission.peak_waiting)


# -- Slack -----------------------------------------------------------------------------------------------------------


def is_final(blocks: list[dict[str, Any]]) -> bool:
    """The finished answer: its context block carries the AI notice (progress edits are plain text)."""
    return any(
        block.get("type") == "context"
        and any("AI-generated" in str(e.get("text", "")) for e in block.get("elements", []))
        for block in blocks
    )


def shows_words(message: Any) -> bool:
    """The model's text is visible: streamed words, or an edit of the placeholder ending in the typing mark."""
    return bool(message.streaming and message.text.strip()) or message.text.endswith(" …")


class SlackTimeline:
    """When each of the bot's messages first appeared in the fake Slack, and when its final answer did: the fake
    keeps only each message's last version, so a task woken by every post and edit stamps them as they happen."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.first: dict[str, float] = {}  # message ts -> when it was first seen
        self.words: dict[str, float] = {}  # message ts -> when it first showed the model's text
        self.final: dict[str, float] = {}  # message ts -> when it was first seen finished
        self._scanned = asyncio.Event()  # set (and replaced) after every scan
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SlackTimeline:
        self._task = asyncio.create_task(self._watch(), name="slack-timeline")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:  # no await between the scan and changed(): no write can slip between them unseen
            now = time.monotonic()
            for ts, message in self.slack.messages.items():
                self.first.setdefault(ts, now)
                if ts not in self.words and (shows_words(message) or is_final(message.blocks)):
                    self.words[ts] = now
                if ts not in self.final and is_final(message.blocks):
                    self.final[ts] = now
            self._scanned.set()
            self._scanned = asyncio.Event()
            await self.slack.changed()

    async def until(self, done: Callable[[], bool], what: Callable[[], str]) -> None:
        """Until ``done()`` holds, checked after every scan; TimeoutError, saying ``what()``, after a while."""
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                while not done():
                    await self._scanned.wait()
        except TimeoutError:
            raise TimeoutError(f"not done after {ANSWER_TIMEOUT_S} s: {what()}") from None

    def _in_thread(self, thread: str) -> list[str]:
        return [ts for ts, message in self.slack.messages.items() if str(message.thread_ts) == thread]

    def first_reply(self, thread: str) -> float | None:
        return min((self.first[ts] for ts in self._in_thread(thread) if ts in self.first), default=None)

    def first_words(self, thread: str) -> float | None:
        return min((self.words[ts] for ts in self._in_thread(thread) if ts in self.words), default=None)

    def answered(self, thread: str) -> float | None:
        return min((self.final[ts] for ts in self._in_thread(thread) if ts in self.final), default=None)


async def stamp(event: asyncio.Event) -> float:
    await event.wait()
    return time.monotonic()


async def run_slack(args: argparse.Namespace) -> dict[str, Any]:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.services import Services
    from bot.slack.app import build_app
    from loopback.slack import FakeSlack

    users = [f"U{i:05d}" for i in range(args.questions)]
    ack: list[float] = []
    first: list[float] = []
    words: list[float] = []
    final: list[float] = []
    async with FakeSlack() as slack:
        tokens = {"bot_token": slack.bot_token, "app_token": slack.app_token, "api_base": slack.api_base}
        async with (
            open_core(args, slack=tokens) as core,
            Services(core.settings, core.pipeline, core.indexer, lambda _id: [], core.feedback) as services,
            SlackTimeline(slack) as timeline,
        ):
            app = build_app(services)
            handler = AsyncSocketModeHandler(app, slack.app_token, web_client=app.client)
            await handler.connect_async()
            try:
                await slack.wait_connected()
                await slack.mention("C1", users[0], f"{MENTION} {WARM_UP}")
                await asyncio.sleep(3)
                started = time.monotonic()
                asked = []  # (arrival, thread, when acked)
                for i, user in enumerate(users):
                    arrival = time.monotonic()
                    question = QUESTIONS[i % len(QUESTIONS)]
                    envelope = await slack.mention("C1", user, f"{MENTION} {question}")
                    acked = asyncio.create_task(stamp(envelope.acked))
                    asked.append((arrival, str(envelope.payload["event"]["ts"]), acked))
                    await asyncio.sleep(args.gap)
                await timeline.until(
                    lambda: all(timeline.answered(thread) is not None for _, thread, _ in asked),
                    lambda: f"{sum(timeline.answered(t) is not None for _, t, _ in asked)}/{len(asked)} answered",
                )
                wall = time.monotonic() - started
                for arrival, thread, acked in asked:
                    replied, answered = timeline.first_reply(thread), timeline.answered(thread)
                    shown = timeline.first_words(thread)
                    assert replied is not None and answered is not None and shown is not None
                    ack.append((await acked - arrival) * 1000)
                    first.append((replied - arrival) * 1000)
                    words.append((shown - arrival) * 1000)
                    final.append((answered - arrival) * 1000)
            finally:
                await handler.close_async()
            rows = {"ack_ms": ack, "first_reply_ms": first, "first_words_ms": words, "final_ms": final}
            return results(args, core, rows, wall=wall, peak_queue=services.admission.peak_waiting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--platform", choices=sorted(RESULTS), default="discord", help="front-end to measure")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4, help="bot.max_concurrent_answers")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between arrivals")
    parser.add_argument("--pages", type=int, default=60, help="index only the first N corpus pages (0: all)")
    parser.add_argument("--model", default="", help="a bench.models name or a model folder (default: the tiny model)")
    args = parser.parse_args()
    result = asyncio.run(run_slack(args) if args.platform == "slack" else run_discord(args))
    print(f"\n{'metric':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for key, label in ROWS[args.platform].items():
        row = result[key]
        print(f"{label:<34}{row['p50']:>10.0f}{row['p95']:>10.0f}{row['max']:>10.0f}")
    print(
        f"\n{args.platform}: {result['questions']} questions, concurrency {result['concurrency']}, "
        f"{result['pages_indexed']} pages, peak queue {result['peak_queue']}, wall {result['wall_s']:.1f}s"
    )
    name = RESULTS[args.platform]
    if args.model:
        name = name.replace(".json", f"-{Path(args.model).name}.json")
    write_results(ROOT / "bench" / "results" / name, result)


if __name__ == "__main__":
    main()
