"""Indexing throughput, the embedding model's raw encode limit, and retrieval latency at 1x and Nx corpus size.

    python -m bench.retrieval [--docs DIR] [--scale 10] [--out bench/results/retrieval.json]

Everything runs in one process on a fresh temporary Milvus Lite, with the configured (DOCENT_*) settings:
1. a full index of DIR, then an unchanged re-index (pages/s, chunks/s, peak RSS);
2. the raw encode throughput of the same chunk texts in one ``SentenceTransformer.encode`` call, which is the
   physical limit of indexing on this machine;
3. retrieval latency (embed + search, the production ``Retriever``) for the dev-set questions, at the corpus
   size and with the corpus duplicated ``--scale`` times (same vectors, new page ids; nothing re-embedded).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CORPUS, DEVSET, ROOT, write_results

QUESTIONS = [DEVSET / "milvus_questions.jsonl", DEVSET / "out_of_scope.jsonl"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarise(latencies: list[float]) -> dict[str, float]:
    from bench.scoring import percentile

    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
    }


async def latency(retriever: Any, questions: list[Any], rounds: int) -> dict[str, Any]:
    return (await interleaved({"one": retriever}, questions, rounds))["one"]


async def interleaved(retrievers: dict[str, Any], questions: list[Any], rounds: int) -> dict[str, dict[str, Any]]:
    """Latency of each retriever on the same questions, taken in turn question by question, so a busy moment of
    the machine (or of Lite finishing an index) falls on all of them alike."""
    for question in questions[:5]:  # warm-up
        for retriever in retrievers.values():
            await retriever.retrieve(question.text, question.history)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in retrievers}
    for _ in range(rounds):
        for question in questions:
            for name, retriever in retrievers.items():
                started = time.perf_counter()
                result = await retriever.retrieve(question.text, question.history)
                total = (time.perf_counter() - started) * 1000
                samples[name].append((total, result.timings_ms["embed_ms"], result.timings_ms["search_ms"]))
    out: dict[str, dict[str, Any]] = {}
    for name, rows in samples.items():
        total_ms, embed, search = ([row[i] for row in rows] for i in range(3))
        out[name] = {
            **summarise(total_ms),
            "embed_p50_ms": round(statistics.median(embed), 1),
            "search_p50_ms": round(statistics.median(search), 1),
            "search_p95_ms": round(sorted(search)[int(0.95 * (len(search) - 1))], 1),
            "samples": len(total_ms),
        }
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from indexer.build import make_indexer
    from indexer.local import FolderDocs
    from rag.embedder import SentenceTransformerEmbedder
    from rag.models import with_context
    from rag.settings import FolderSource, Settings, prepare_process_env
    from rag.store import MilvusStore

    work = Path(tempfile.mkdtemp(prefix="docent-bench-retrieval-"))
    settings = Settings(data_dir=work, milvus={"uri": str(work / "milvus.db")})
    prepare_process_env(settings)
    embedder = SentenceTransformerEmbedder(settings.embedding, settings.embedding_cache)
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    indexer = make_indexer(settings, embedder, store)
    source = FolderDocs(FolderSource(id="bench", path=args.docs))
    results: dict[str, Any] = {"corpus": str(args.docs), "embedding_model": settings.embedding.model}
    try:
        print("full index…", file=sys.stderr)
        full = await indexer.run([source])
        pages = full.pages_new + full.pages_changed
        results["full_index"] = {
            "pages": pages,
            "chunks": full.chunks_written,
            "seconds": round(full.seconds, 2),
            "pages_per_s": round(pages / full.seconds, 2),
            "chunks_per_s": round(full.chunks_written / full.seconds, 2),
            "peak_rss_mb": round(peak_rss_mb()),
        }
        print("unchanged re-index…", file=sys.stderr)
        again = await indexer.run([source])
        results["unchanged_reindex"] = {
            "pages": again.pages_unchanged,
            "chunks_written": again.chunks_written,
            "seconds": round(again.seconds, 2),
            "pages_per_s": round(again.pages_unchanged / max(again.seconds, 1e-9), 1),
            "fraction_of_full": round(again.seconds / full.seconds, 4),
        }

        rows = await store.scan(["id", "source_id", "page_id", "ordinal", "url", "title", "heading", "text", "vector"])
        texts = [with_context(r["title"], r["heading"], r["text"]) for r in rows]
        print(f"raw encode of {len(texts)} chunks…", file=sys.stderr)
        started = time.perf_counter()
        embedder.encode(texts)  # the same loaded model and backend, called directly: no executor, no ordering
        seconds = time.perf_counter() - started
        raw = len(texts) / seconds
        results["raw_encode"] = {"chunks": len(texts), "seconds": round(seconds, 2), "chunks_per_s": round(raw, 2)}
        results["full_index"]["fraction_of_raw_encode"] = round(results["full_index"]["chunks_per_s"] / raw, 3)

        results.update(await latencies(settings, embedder, store, rows, args.scale, args.index_types.split(",")))
        results["peak_rss_mb"] = round(peak_rss_mb())
    finally:
        await store.close()
        embedder.close()
    return results


def rotated(vectors: list[list[float]], seed: int) -> list[list[float]]:
    import numpy as np

    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(vectors[0]), len(vectors[0]))))
    out: list[list[float]] = (np.asarray(vectors, dtype=np.float32) @ rotation.astype(np.float32)).tolist()
    return out


async def latencies(
    settings: Any, embedder: Any, store: Any, rows: list[dict[str, Any]], scale: int, index_types: list[str]
) -> dict[str, Any]:
    """Retrieval latency on ``store`` (1x), then on ``scale`` copies of its rows under each vector index type,
    with each vector index's recall@5 of chunks against the first type (FLAT: exact) on the same questions."""
    from bench.scoring import load_questions
    from rag.models import Chunk
    from rag.retrieval import Retriever
    from rag.store import MilvusStore

    questions = load_questions([p for p in QUESTIONS if p.exists()])
    results: dict[str, Any] = {}
    print(f"retrieval latency at 1x ({len(rows)} chunks)…", file=sys.stderr)
    lite = MilvusStore(settings.milvus_uri, settings.milvus.model_copy(update={"bm25": "milvus"}))
    both = await interleaved(
        {
            "local": Retriever(embedder, store, settings.retrieval, settings.tuning),
            "lite": Retriever(embedder, lite, settings.retrieval, settings.tuning),
        },
        questions,
        2,
    )
    await lite.close()
    results["latency_1x"] = {"chunks": len(rows), **both["local"], "milvus_bm25_p95_ms": both["lite"]["p95_ms"]}
    exact: list[list[str]] = []
    for index_type in index_types:
        name = f"scaled_{index_type.lower()}"
        scaled_settings = settings.milvus.model_copy(update={"collection": name, "index_type": index_type})
        scaled = MilvusStore(settings.milvus_uri, scaled_settings)
        await scaled.ensure_collection(embedder.dimension)
        print(f"building the {scale}x collection ({index_type})…", file=sys.stderr)
        started = time.perf_counter()
        for copy in range(scale):
            # Copies after the first are turned by a fixed random rotation: as many vectors as a corpus this
            # size, but no exact duplicates, which would make "the nearest" a tie that ANN and FLAT break apart.
            vectors = [r["vector"] for r in rows] if not copy else rotated([r["vector"] for r in rows], copy)
            chunks = [
                Chunk(
                    f"{r['id'][:30]}{copy:04d}",
                    r["source_id"],
                    f"{r['page_id']}#copy{copy}" if copy else r["page_id"],
                    r["ordinal"],
                    r["url"],
                    r["title"],
                    r["heading"],
                    r["text"],
                    "",
                )
                for r in rows
            ]
            for start in range(0, len(chunks), 1024):
                await scaled.upsert(chunks[start : start + 1024], vectors[start : start + 1024])
        await scaled.flush()
        count = await scaled.count()
        build_s = time.perf_counter() - started
        print(f"retrieval latency at {scale}x ({count} chunks, {index_type})…", file=sys.stderr)
        lite = MilvusStore(settings.milvus_uri, scaled_settings.model_copy(update={"bm25": "milvus"}))
        dense_tuning = settings.tuning.model_copy(update={"mode": "dense"})
        measures = await interleaved(
            {
                "hybrid": Retriever(embedder, scaled, settings.retrieval, settings.tuning),
                "lite": Retriever(embedder, lite, settings.retrieval, settings.tuning),
                "dense": Retriever(embedder, scaled, settings.retrieval, dense_tuning),
            },
            questions,
            1,
        )
        await lite.close()
        measured, dense, lite_bm25 = measures["hybrid"], measures["dense"], measures["lite"]["p95_ms"]
        # The vector index's own recall: its top 5 chunks against exact search's, on the same questions.
        nearest = [
            [hit.chunk_id for hit in await scaled.search(await embedder.embed_query(q.text), 5)] for q in questions
        ]
        if not exact:
            exact = nearest
        overlap = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(nearest, exact, strict=True)]
        key = f"latency_{scale}x" if index_type == index_types[0] else f"latency_{scale}x_{index_type.lower()}"
        results[key] = {
            "chunks": count,
            "index_type": index_type,
            "build_s": round(build_s, 1),
            "recall_at_5_vs_exact": round(statistics.mean(overlap), 4),
            "dense_only_p95_ms": dense["p95_ms"],
            "milvus_bm25_p95_ms": lite_bm25,
            **measured,
        }
        await scaled.close()
    if index_types[0] == "FLAT":  # index_type=auto's one-time move of a grown FLAT collection to IVF_FLAT
        grown = MilvusStore(
            settings.milvus_uri, settings.milvus.model_copy(update={"collection": "scaled_flat", "index_type": "auto"})
        )
        asking = Retriever(embedder, grown, settings.retrieval, settings.tuning)
        answered: list[float] = []
        failed: list[str] = []
        moving = asyncio.Event()

        async def keep_asking() -> None:  # the answering gap while the alias moves: searches never stop
            while not moving.is_set():
                for question in questions:
                    try:
                        if (await asking.retrieve(question.text)).hits:
                            answered.append(time.perf_counter())
                        else:
                            failed.append("no hits")
                    except Exception as exc:
                        failed.append(str(exc))
                    if moving.is_set():
                        break

        await grown.warm()  # the gap of the move, not of reading BM25 at the first search
        asker = asyncio.create_task(keep_asking())
        started = time.perf_counter()
        moved = await grown.fit_index()
        finished = time.perf_counter()
        moving.set()
        await asker
        marks = [started, *[t for t in answered if started <= t <= finished], finished]
        results["auto_index_switch"] = {
            "to": moved,
            "seconds": round(finished - started, 1),
            "answers_meanwhile": len(marks) - 2,
            "failed_meanwhile": len(failed),
            "longest_gap_s": round(max(b - a for a, b in itertools.pairwise(marks)), 2),
        }
        await grown.close()
    return results


def print_table(results: dict[str, Any], scale: int) -> None:
    full, again, raw = results["full_index"], results["unchanged_reindex"], results["raw_encode"]
    print(f"{'measure':<44} {'value':>12}")
    print("-" * 57)
    lines = [
        ("full index: pages / chunks", f"{full['pages']} / {full['chunks']}"),
        ("full index: seconds", f"{full['seconds']:.1f}"),
        ("full index: pages/s", f"{full['pages_per_s']:.2f}"),
        ("full index: chunks/s", f"{full['chunks_per_s']:.1f}"),
        ("raw encode: chunks/s (same chunks)", f"{raw['chunks_per_s']:.1f}"),
        ("full index / raw encode", f"{full['fraction_of_raw_encode']:.0%}"),
        ("full index: peak RSS (MB)", f"{full['peak_rss_mb']}"),
        ("unchanged re-index: seconds", f"{again['seconds']:.2f}"),
        ("unchanged re-index / full index", f"{again['fraction_of_full']:.2%}"),
    ]
    for name in [k for k in results if k.startswith("latency_")]:
        data = results[name]
        label = f"retrieval {name.split('_', 1)[1]} ({data['chunks']} chunks)"
        lines.append((f"{label}: p50 / p95 ms", f"{data['p50_ms']:.0f} / {data['p95_ms']:.0f}"))
        lines.append((f"{label}: embed / search p50 ms", f"{data['embed_p50_ms']:.0f} / {data['search_p50_ms']:.0f}"))
    for name, value in lines:
        print(f"{name:<44} {value:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=CORPUS)
    parser.add_argument("--scale", type=int, default=10, help="corpus copies for the scaled latency run")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions at 1x")
    parser.add_argument(
        "--index-types", default="FLAT,HNSW,IVF_FLAT", help="vector indexes for the scaled run; the first is exact"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()
    from rag.logs import configure_logging

    configure_logging("WARNING")
    results = asyncio.run(run(args))
    print_table(results, args.scale)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
