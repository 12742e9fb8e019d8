"""Latency a Discord user sees: interaction arrival -> deferral, and -> final answer.

The production bot runs against the loopback fake Discord with real Milvus Lite, MiniLM and the vLLM CPU
engine (tiny model, so generation time is the engine's floor, not a real model's).

    python -m bench.bot_latency [--questions 40] [--concurrency 4]

Prints a table and writes bench/results/bot_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, bench_settings, corpus_source, write_results
from bench.eval import percentile

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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bot.client import DocentBot
    from indexer.build import make_indexer
    from indexer.local import FolderDocs
    from rag.feedback import FeedbackStore
    from rag.generator import VLLMGenerator
    from rag.pipeline import AnswerPipeline
    from rag.retrieval import Retriever
    from rag.settings import prepare_process_env
    from rag.store import MilvusStore
    from tests.bot.fake_discord import FakeDiscord

    work = Path(tempfile.mkdtemp(prefix="docent-bench-"))
    settings = bench_settings(work, bot={"user_cooldown_s": 0, "max_concurrent_answers": args.concurrency})
    prepare_process_env(settings)
    from rag.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(settings.embedding)
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    source = corpus_source(work, args.pages)
    indexer = make_indexer(settings, embedder, store)
    report = await indexer.run([FolderDocs(source)])
    generator = await VLLMGenerator.start(settings.llm)
    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    pipeline = AnswerPipeline(Retriever(embedder, store, settings.retrieval), generator, settings.retrieval)
    bot = DocentBot(settings, pipeline, indexer, lambda _id: [], feedback, guild_ready_timeout=0.1)
    users = [700000000000000000 + i for i in range(args.questions)]
    deferral: list[float] = []
    final: list[float] = []
    try:
        async with FakeDiscord() as fake:
            for user in users:
                fake.add_member(user, f"user{user % 1000}")
            async with fake.run_bot(bot):
                await fake.slash("ask", {"question": "warm-up question"}, user_id=users[0])
                await asyncio.sleep(3)
                started = time.monotonic()
                sent = []
                for i, user in enumerate(users):
                    sent.append(await fake.slash("ask", {"question": QUESTIONS[i % len(QUESTIONS)]}, user_id=user))
                    await asyncio.sleep(args.gap)
                for ix in sent:

                    def answered(ix: Any = ix) -> bool:
                        return ix.original is not None and any("AI-generated" in c for c in ix.original.contents)

                    await fake.wait_for(answered, timeout=300)
                    assert ix.deferred_at is not None and ix.original is not None
                    done = next(t for t, text in ix.original.history if "AI-generated" in text)
                    deferral.append((ix.deferred_at - ix.created_at) * 1000)
                    final.append((done - ix.created_at) * 1000)
                wall = time.monotonic() - started
    finally:
        await generator.close()
        await store.close()
        feedback.close()
        embedder.close()
    return {
        "questions": args.questions,
        "concurrency": args.concurrency,
        "gap_s": args.gap,
        "pages_indexed": report.pages_new,
        "deferral_ms": {"p50": percentile(deferral, 50), "p95": percentile(deferral, 95), "max": max(deferral)},
        "final_ms": {"p50": percentile(final, 50), "p95": percentile(final, 95), "max": max(final)},
        "mean_final_ms": statistics.fmean(final),
        "wall_s": wall,
        "peak_queue": bot.admission.peak_waiting,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4, help="bot.max_concurrent_answers")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between arrivals")
    parser.add_argument("--pages", type=int, default=60, help="index only the first N corpus pages (0: all)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"\n{'metric':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for key, label in (("deferral_ms", "arrival -> deferral sent"), ("final_ms", "arrival -> final answer")):
        row = result[key]
        print(f"{label:<34}{row['p50']:>10.0f}{row['p95']:>10.0f}{row['max']:>10.0f}")
    print(
        f"\n{result['questions']} questions, concurrency {result['concurrency']}, "
        f"{result['pages_indexed']} pages, peak queue {result['peak_queue']}, wall {result['wall_s']:.1f}s"
    )
    write_results(ROOT / "bench" / "results" / "bot_latency.json", result)


if __name__ == "__main__":
    main()
