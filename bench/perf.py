"""Every performance target of issue 13 in one run, each against a baseline measured in the same run.

    make bench            # = python -m bench.perf
    python -m bench.perf [--docs DIR] [--baseline-commit 4020139] [--only index,encoders,retrieval,ready,load]

Sections (each writes bench/results/perf-<section>.json; the whole table goes to bench/results/perf.json):
- index: a full index of DIR by ``python -m indexer --dir DIR --json`` on a fresh store, in a child process, for
  the baseline commit's code (``git archive``), today's defaults, and today's code on the torch backend. Wall
  time and the child's peak RSS (``wait4``).
- encoders: every embedding backend on the same chunk texts (taken from today's index): export and load time,
  encode chunks/s, query embed p50, cosine to torch fp32; recall@5 and MRR@5 from ``bench.cv`` results per backend
  (``python -m bench.perf --quality`` runs them, and they are reused otherwise).
- retrieval: embed + search latency at 1x and at ``--scale``x (the corpus duplicated, nothing re-embedded) with
  FLAT and with each ANN index Milvus Lite builds, and the ANN index's recall@5 of pages against FLAT.
- ready: ``python -m bot`` (no platform tokens, ops server on) to the first ``/healthz`` "ok", for the baseline
  start-up code and today's.
- load: ``python -m bench.load`` (100 concurrent questions against one at a time; time to first token).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CORPUS, DEVSET, ROOT, write_results
from rag.encoders import BACKENDS  # torch first: the baseline

RESULTS = ROOT / "bench" / "results"
SECTIONS = ("index", "encoders", "retrieval", "ready", "load")
BASELINE_COMMIT = "4020139"  # "today's code" when issue 13 was filed
READY_BASELINE = "5ca73a8"  # the last commit that loaded the models one after the other before connecting


def checkout(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (no .git), so its ``python -m indexer`` runs that commit's code."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_child(args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a child to completion: wall seconds, its peak RSS in MB (``wait4``: the child, or a descendant it waited
    for, whichever was largest), and its last stdout line. stderr goes to ``log``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, log.open("w") as err:
        child = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.strip()]
    if child.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({child.returncode}); see {log}")
    return {"seconds": seconds, "stdout_last": lines[-1] if lines else "", "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def child_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCENT_")}
    env.update(HF_HUB_OFFLINE="1", DOCENT_DATA_DIR=str(data), DOCENT_MILVUS__URI=str(data / "milvus.db"), **extra)
    return env


def timed_index(code: Path, docs: Path, data: Path, **extra: str) -> dict[str, Any]:
    env = child_env(data, **extra)
    data.mkdir(parents=True, exist_ok=True)
    result = run_child(
        [sys.executable, "-m", "indexer", "--dir", str(docs), "--json"], cwd=code, env=env, log=data / "log"
    )
    chunks = json.loads(result["stdout_last"]).get("chunks_written", 0)
    seconds = result["seconds"]
    return {
        "seconds": round(seconds, 1),
        "chunks": chunks,
        "chunks_per_s": round(chunks / seconds, 1),
        "peak_rss_mb": result["peak_rss_mb"],
    }


# What the first start on a new model does before anything else: export the embedding backend into the cache.
EXPORT = (
    "from rag.embedder import SentenceTransformerEmbedder; from rag.settings import Settings; "
    "s = Settings(); SentenceTransformerEmbedder(s.embedding, s.embedding_cache).close()"
)


def index_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    baseline = checkout(args.baseline_commit, work / "baseline-code")
    runs: dict[str, Any] = {}
    print(f"full index: the baseline ({args.baseline_commit})…", file=sys.stderr)
    runs["baseline"] = timed_index(baseline, args.docs, work / "index-baseline")
    models = work / "models"
    shutil.rmtree(models, ignore_errors=True)
    print("embedding export (once per model, then cached)…", file=sys.stderr)
    export = run_child(
        [sys.executable, "-c", EXPORT],
        cwd=ROOT,
        env=child_env(work / "export", DOCENT_EMBEDDING__CACHE_DIR=str(models)),
        log=work / "export.log",
    )
    runs["export"] = {"seconds": round(export["seconds"], 1), "peak_rss_mb": export["peak_rss_mb"]}
    print("full index: today's defaults…", file=sys.stderr)
    runs["today"] = timed_index(ROOT, args.docs, work / "index-today", DOCENT_EMBEDDING__CACHE_DIR=str(models))
    print("full index: today's code, torch backend…", file=sys.stderr)
    runs["today_torch"] = timed_index(ROOT, args.docs, work / "index-torch", DOCENT_EMBEDDING__BACKEND="torch")
    runs["speedup"] = round(runs["baseline"]["seconds"] / runs["today"]["seconds"], 2)
    runs["baseline_commit"] = args.baseline_commit
    return runs


async def chunk_texts(data: Path) -> list[str]:
    from rag.models import with_context
    from rag.settings import Settings
    from rag.store import MilvusStore

    settings = Settings(data_dir=data, milvus={"uri": str(data / "milvus.db")})
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        rows = await store.scan(["title", "heading", "text"])
    finally:
        await store.close()
    return [with_context(r["title"], r["heading"], r["text"]) for r in rows]


def encoders_section(args: argparse.Namespace, work: Path, texts: list[str]) -> dict[str, Any]:
    import numpy as np

    from bench.scoring import load_questions
    from rag.embedder import SentenceTransformerEmbedder
    from rag.settings import EmbeddingSettings

    sample = texts[:: max(1, len(texts) // args.encode_sample)][: args.encode_sample]
    # Short questions, as people type them in chat (the set bench.retrieval times); not the long issue bodies.
    questions = [q.text for q in load_questions([DEVSET / "milvus_questions.jsonl", DEVSET / "out_of_scope.jsonl"])]
    out: dict[str, Any] = {"chunks": len(sample)}
    reference: Any = None
    for backend in args.backends.split(","):
        cache = work / f"models-{backend}"
        settings = EmbeddingSettings(backend=backend, threads=args.threads)
        try:
            started = time.perf_counter()
            SentenceTransformerEmbedder(settings, cache).close()
            first_load = time.perf_counter() - started
            started = time.perf_counter()
            model = SentenceTransformerEmbedder(settings, cache)
            load = time.perf_counter() - started
        except Exception as exc:  # a backend whose runtime isn't installed is reported, not fatal
            out[backend] = {"error": str(exc)}
            continue
        print(f"encoders: {backend}…", file=sys.stderr)
        model.encode(sample[:32])  # warm-up
        started = time.perf_counter()
        vectors = np.array(model.encode(sample))
        seconds = time.perf_counter() - started
        query_ms = []
        for text in questions:
            t0 = time.perf_counter()
            model.encode([text], queries=True)
            query_ms.append((time.perf_counter() - t0) * 1000)
        model.close()
        if reference is None:
            reference = vectors
        cosine = (vectors * reference).sum(axis=1)
        out[backend] = {
            "export_and_load_s": round(first_load, 1),
            "load_s": round(load, 1),
            "chunks_per_s": round(len(sample) / seconds, 1),
            "query_embed_p50_ms": round(statistics.median(query_ms), 2),
            "cosine_to_torch_min": round(float(cosine.min()), 5),
            "cosine_to_torch_mean": round(float(cosine.mean()), 5),
        }
    torch_rate = out["torch"]["chunks_per_s"]
    for backend in args.backends.split(","):
        if "chunks_per_s" in out[backend]:
            out[backend]["speedup"] = round(out[backend]["chunks_per_s"] / torch_rate, 2)
    out["quality"] = quality(args)
    return out


QUALITY_SETS = {  # name: (corpus, questions); real questions asked in public, and the synthetic regression set
    "milvus real": (CORPUS, DEVSET / "real_questions.jsonl"),
    "fastapi real": (ROOT / "bench" / "corpora" / "fastapi-docs", DEVSET / "fastapi_real_questions.jsonl"),
    "pydantic real": (ROOT / "bench" / "corpora" / "pydantic-docs", DEVSET / "pydantic_real_questions.jsonl"),
    "milvus synthetic": (CORPUS, DEVSET / "milvus_questions.jsonl"),
}
QUALITY = RESULTS / "quality-backends.json"


def quality(args: argparse.Namespace) -> dict[str, Any]:
    """recall@5 / MRR@5 of the configured pipeline per backend and question set, by ``bench.eval`` (its indexes are
    cached under data_dir/eval per backend). Run with ``--quality``; otherwise the last saved figures are shown."""
    found: dict[str, Any] = json.loads(QUALITY.read_text()) if QUALITY.exists() else {}
    if not args.quality:
        return found
    for backend in ("torch", _default_backend()):
        for name, (corpus, questions) in QUALITY_SETS.items():
            out = Path(tempfile.mkdtemp()) / "eval.json"
            json_out = ["--json-out", str(out)]
            print(f"quality: {name} on {backend}…", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "bench.eval", "--docs", str(corpus), "--questions", str(questions), *json_out],
                cwd=ROOT,
                env={**os.environ, "DOCENT_EMBEDDING__BACKEND": backend, "HF_HUB_OFFLINE": "1"},
                check=True,
                stdout=subprocess.DEVNULL,
            )
            row = json.loads(out.read_text())
            found.setdefault(backend, {})[name] = {k: row[k] for k in ("questions", "recall@5", "mrr@5")}
    write_results(QUALITY, found)
    return found


async def retrieval_section(data: Path, models: Path, scale: int, index_types: list[str]) -> dict[str, Any]:
    """Latency at 1x on today's index, and at ``scale``x under FLAT and the ANN indexes, with their recall."""
    from bench.retrieval import latencies
    from rag.embedder import SentenceTransformerEmbedder
    from rag.settings import Settings
    from rag.store import MilvusStore

    settings = Settings(data_dir=data, milvus={"uri": str(data / "milvus.db")}, embedding={"cache_dir": models})
    embedder = SentenceTransformerEmbedder(settings.embedding, settings.embedding_cache)
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        fields = ["id", "source_id", "page_id", "ordinal", "url", "title", "heading", "text", "vector"]
        rows = await store.scan(fields)
        return await latencies(settings, embedder, store, rows, scale, index_types)
    finally:
        await store.close()
        embedder.close()


def ready_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.ready import bot_env, ready_section
    from rag.tiny_model import write_tiny_model

    trees = {"baseline": checkout(args.ready_baseline, work / "ready-baseline-code"), "today": ROOT}
    env = bot_env(dict(os.environ), write_tiny_model(work / "tiny-model"), work / "models")
    result = ready_section(trees, work / "index-today", env)
    result["baseline_commit"] = args.ready_baseline
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=CORPUS)
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT, help="the code a full index is compared with")
    parser.add_argument(
        "--ready-baseline", default=READY_BASELINE, help="the start-up code time to ready is compared with"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--encode-sample", type=int, default=1000, help="chunks encoded per backend")
    parser.add_argument("--threads", type=int, default=0, help="embedding threads (0: the runtime's default)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="embedding backends; torch is the baseline")
    parser.add_argument("--index-types", default="FLAT,HNSW,IVF_FLAT", help="vector indexes at scale; FLAT first")
    parser.add_argument("--quality", action="store_true", help="run bench.cv per backend (slow the first time)")
    parser.add_argument("--out", type=Path, default=RESULTS / "perf.json")
    args = parser.parse_args()
    args.docs = args.docs.resolve()  # the children run in other folders
    from rag.logs import configure_logging

    configure_logging("WARNING")
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="docent-bench-perf-"))
    # Sections not run this time keep their last figures, so one table always shows every item.
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "index" in only:
        results["index"] = index_section(args, work)
    data = work / "index-today"
    if {"encoders", "retrieval", "ready"} & only and not (data / "milvus.db").exists():
        print("indexing with today's defaults…", file=sys.stderr)
        timed_index(ROOT, args.docs, data, DOCENT_EMBEDDING__CACHE_DIR=str(work / "models"))
    if "encoders" in only:
        results["encoders"] = encoders_section(args, work, asyncio.run(chunk_texts(data)))
    if "retrieval" in only:
        results["retrieval"] = asyncio.run(
            retrieval_section(data, work / "models", args.scale, args.index_types.split(","))
        )
    if "ready" in only:
        results["ready"] = ready_run(args, work)
    if "load" in only:
        results["load"] = load_section()
    print_table(results, args.scale)
    write_results(args.out, results)


def load_section() -> dict[str, Any]:
    out = RESULTS / "load.json"
    subprocess.run([sys.executable, "-m", "bench.load", "--out", str(out)], cwd=ROOT, check=True)
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def _row(item: str, baseline: Any, now: Any, ratio: str, target: str) -> tuple[str, str, str, str, str]:
    return item, str(baseline), str(now), ratio, target


def rows(results: dict[str, Any], scale: int) -> list[tuple[str, str, str, str, str]]:
    """One row per target: the item, its baseline, today's figure, the ratio, the target."""
    out: list[tuple[str, str, str, str, str]] = []
    index = results.get("index")
    if index:
        base, now, torch = index["baseline"], index["today"], index["today_torch"]
        out.append(
            _row(
                f"full index s ({now['chunks']} chunks)",
                base["seconds"],
                now["seconds"],
                f"{base['seconds'] / now['seconds']:.2f}x",
                ">= 1.8x",
            )
        )
        out.append(
            _row(
                "full index s, today's code on torch",
                base["seconds"],
                torch["seconds"],
                f"{base['seconds'] / torch['seconds']:.2f}x",
                "(reference)",
            )
        )
        out.append(
            _row(
                "full index peak RSS MB",
                base["peak_rss_mb"],
                now["peak_rss_mb"],
                f"{now['peak_rss_mb'] / base['peak_rss_mb']:.2f}",
                "<= 1000 MB",
            )
        )
        if "export" in index:
            out.append(
                _row(
                    "one-time embedding export: s / peak RSS MB",
                    "",
                    f"{index['export']['seconds']} / {index['export']['peak_rss_mb']}",
                    "",
                    "(first start only)",
                )
            )
    enc = results.get("encoders")
    if enc:
        torch = enc["torch"]
        for backend, data in enc.items():
            if backend in ("chunks", "quality", "torch") or not isinstance(data, dict):
                continue
            if "error" in data:
                out.append(_row(f"encode {backend}", "", data["error"][:40], "", ""))
                continue
            out.append(
                _row(
                    f"encode chunks/s {backend} (cos min {data['cosine_to_torch_min']:.3f})",
                    torch["chunks_per_s"],
                    data["chunks_per_s"],
                    f"{data['speedup']:.2f}x",
                    ">= 2.0x",
                )
            )
        default = _default_backend()
        out.append(
            _row(
                f"query embed p50 ms ({default})",
                torch["query_embed_p50_ms"],
                enc[default]["query_embed_p50_ms"],
                "",
                "<= 6 ms",
            )
        )
        quality = enc.get("quality", {})
        for name, scores in quality.get("torch", {}).items():
            mine = quality.get(default, {}).get(name)
            for metric in ("recall@5", "mrr@5") if mine else ():
                delta = mine[metric] - scores[metric]
                label = f"{metric} {name}, n={scores['questions']} ({default} vs torch)"
                out.append(_row(label, scores[metric], mine[metric], f"{delta:+.4f}", "within 0.01"))
    retrieval = results.get("retrieval")
    if retrieval:
        one = retrieval["latency_1x"]
        lite = one.get("milvus_bm25_p95_ms", "")
        ratio = f"{lite / one['p95_ms']:.2f}x" if lite else ""
        label = f"retrieval p95 ms 1x ({one['chunks']} chunks; baseline: Lite's BM25)"
        out.append(_row(label, lite, one["p95_ms"], ratio, "<= 40 ms"))
        out.append(_row("query embed p50 ms, in retrieval at 1x", "", one["embed_p50_ms"], "", "<= 6 ms"))
        flat = retrieval.get(f"latency_{scale}x")
        for key, data in retrieval.items():
            if key.startswith(f"latency_{scale}x") and flat:
                out.append(
                    _row(
                        f"retrieval p95 ms {scale}x {data['index_type']} (recall@5 vs FLAT "
                        f"{data['recall_at_5_vs_exact']:.3f})",
                        flat["p95_ms"],
                        data["p95_ms"],
                        f"{flat['p95_ms'] / data['p95_ms']:.2f}x",
                        "<= 100 ms",
                    )
                )
                if "milvus_bm25_p95_ms" in data:
                    lite = data["milvus_bm25_p95_ms"]
                    label = f"  same, BM25 in Milvus Lite instead of local {data['index_type']}"
                    out.append(_row(label, lite, data["p95_ms"], f"{lite / data['p95_ms']:.2f}x", "(before)"))
                if "dense_only_p95_ms" in data:
                    label = f"  same, dense only (no BM25) {data['index_type']}"
                    dense = data["dense_only_p95_ms"]
                    out.append(_row(label, flat["dense_only_p95_ms"], dense, "", "(where time goes)"))
        switch = retrieval.get("auto_index_switch")
        if switch and switch.get("to"):
            label = f"one-time move of the {scale}x FLAT collection to {switch['to']} (index_type=auto), s"
            out.append(_row(label, "", switch["seconds"], "", "(no re-embedding)"))
            if "longest_gap_s" in switch:
                label = f"  answering meanwhile: {switch['answers_meanwhile']} answers, failed; longest gap s"
                out.append(_row(label, "", f"{switch['failed_meanwhile']}; {switch['longest_gap_s']}", "", "0 failed"))
    ready = results.get("ready")
    if ready:
        base, now = ready["baseline"], ready["today"]
        out.append(
            _row(
                "time to first reply s",
                base["first_reply_s"],
                now["first_reply_s"],
                f"{base['first_reply_s'] / now['first_reply_s']:.2f}x",
                "(starting up notice)",
            )
        )
        out.append(
            _row(
                "time to ready s", base["ready_s"], now["ready_s"], f"{base['ready_s'] / now['ready_s']:.2f}x", "faster"
            )
        )
    load = results.get("load")
    if load:
        out.append(
            _row(
                f"{load['questions']} concurrent vs serial, throughput",
                load["sequential"]["throughput_qps"],
                load["concurrent"]["throughput_qps"],
                f"{load['speedup']:.2f}x",
                ">= 5x",
            )
        )
        for level, data in load.get("ttft", {}).items():
            out.append(_row(f"time to first token p95 ms at {level}", "", data["p95_ms"], "", "(measured)"))
    return out


def _default_backend() -> str:
    from rag.settings import EmbeddingSettings

    return EmbeddingSettings().backend


def print_table(results: dict[str, Any], scale: int) -> None:
    table = rows(results, scale)
    headers = ("item", "baseline", "today", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [headers, *table]) for i in range(5)]
    for line in [headers, tuple("-" * w for w in widths), *table]:
        print(
            "  ".join(
                str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i]) for i, cell in enumerate(line)
            )
        )


if __name__ == "__main__":
    main()
