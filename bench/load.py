"""Load: N questions at once through the real pipeline, against the same N asked one at a time.

    python -m bench.load [--questions 100] [--pages 60] [--tokens 64]

Real Milvus Lite, MiniLM and the in-process vLLM engine (tiny model; every answer generates exactly
``--tokens`` tokens, and the refusal threshold is off, so each question costs one full generation).
Continuous batching should make the concurrent run several times faster than the sequential one.
Prints a table and writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DEVSET, ROOT, bench_settings, corpus_source, write_results
from bench.scoring import load_questions, percentile


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "answered": len(latencies),
        "wall_s": round(wall, 2),
        "throughput_qps": round(len(latencies) / wall, 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from indexer.build import make_indexer
    from indexer.local import FolderDocs
    from rag.pipeline import AnswerPipeline
    from rag.runtime import open_core

    work = Path(tempfile.mkdtemp(prefix="docent-bench-load-"))
    settings = bench_settings(work, llm={"max_tokens": args.tokens, "timeout_s": 600}, tuning={"min_score": -1.0})
    questions = load_questions([DEVSET / "milvus_questions.jsonl"])[: args.questions]
    async with open_core(settings, with_llm=True) as core:
        report = await make_indexer(settings, core.embedder, core.store).run(
            [FolderDocs(corpus_source(work, args.pages))]
        )
        assert core.generator is not None
        # Every answer exactly --tokens long (the engine is told to ignore its end token): the same work each time.
        fixed_length = core.generator.with_settings(settings.llm, ignore_eos=True)
        pipeline = AnswerPipeline(core.retriever, fixed_length, settings.retrieval, settings.answer)
        for question in questions[:3]:  # warm-up: first engine steps, embedder, Milvus load
            await pipeline.ask(question.text)

        print(f"{len(questions)} questions one at a time…", file=sys.stderr)
        sequential: list[float] = []
        started = time.perf_counter()
        for question in questions:
            t0 = time.perf_counter()
            answer = await pipeline.ask(question.text)
            assert not answer.refused
            sequential.append((time.perf_counter() - t0) * 1000)
        sequential_wall = time.perf_counter() - started

        print(f"{len(questions)} questions at once…", file=sys.stderr)
        peak = 0
        done = asyncio.Event()

        generator = core.generator
        assert generator is not None

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, generator.unfinished_requests())
                await asyncio.sleep(0.01)

        async def timed(text: str) -> float:
            t0 = time.perf_counter()
            answer = await pipeline.ask(text)
            assert answer.text and not answer.refused
            return (time.perf_counter() - t0) * 1000

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        concurrent = await asyncio.gather(*(timed(q.text) for q in questions))
        concurrent_wall = time.perf_counter() - started
        done.set()
        await sampler

        async def first_token(text: str) -> float:
            """Milliseconds until the model's first streamed text (retrieval, queueing and prefill included)."""
            t0 = time.perf_counter()
            first = 0.0
            async for update in pipeline.stream(text):
                if update.raw and not first:
                    first = (time.perf_counter() - t0) * 1000
            return first

        ttft: dict[str, dict[str, float]] = {}
        for level in args.ttft_levels:
            batch = [questions[i % len(questions)].text for i in range(level)]
            if level == 1:  # one at a time, 20 samples that never overlap
                measured = [await first_token(q.text) for q in questions[:20]]
            else:
                measured = list(await asyncio.gather(*(first_token(text) for text in batch)))
            print(f"time to first token at {level} concurrent: p95 {percentile(measured, 95):.0f} ms", file=sys.stderr)
            ttft[str(level)] = {
                "p50_ms": round(statistics.median(measured), 1),
                "p95_ms": round(percentile(measured, 95), 1),
                "samples": len(measured),
            }

    result = {
        "questions": len(questions),
        "pages_indexed": report.pages_new,
        "tokens_per_answer": args.tokens,
        "sequential": summary(sequential, sequential_wall),
        "concurrent": {**summary(list(concurrent), concurrent_wall), "peak_engine_queue": peak},
        "ttft": ttft,
    }
    result["speedup"] = round(sequential_wall / concurrent_wall, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--pages", type=int, default=60, help="index only the first N corpus pages (0: all)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per answer")
    parser.add_argument("--ttft-levels", type=lambda v: [int(x) for x in v.split(",")], default=[1, 10, 100])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    from rag.logs import configure_logging

    configure_logging("WARNING")
    result = asyncio.run(run(args))
    seq, con = result["sequential"], result["concurrent"]
    print(f"\n{'run':<12}{'answered':>9}{'wall s':>9}{'q/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'peak queue':>12}")
    print(
        f"{'sequential':<12}{seq['answered']:>9}{seq['wall_s']:>9.1f}{seq['throughput_qps']:>8.2f}"
        f"{seq['p50_ms']:>9.0f}{seq['p95_ms']:>9.0f}{1:>12}"
    )
    print(
        f"{'concurrent':<12}{con['answered']:>9}{con['wall_s']:>9.1f}{con['throughput_qps']:>8.2f}"
        f"{con['p50_ms']:>9.0f}{con['p95_ms']:>9.0f}{con['peak_engine_queue']:>12}"
    )
    for level, data in result["ttft"].items():
        print(f"time to first token at {level:>3} concurrent: p50 {data['p50_ms']:.0f} ms, p95 {data['p95_ms']:.0f} ms")
    print(f"\nall {con['answered']} answered; concurrent is {result['speedup']:.1f}x faster than one at a time")
    write_results(args.out, result)


if __name__ == "__main__":
    main()
