"""Scoring retrieval by page rank: the library under ``python -m bench.eval`` and ``python -m bench.cv``.

Questions come from JSONL, one per line: {"question": str, "gold_sources": [paths relative to the docs folder]},
optionally "history" (earlier questions of the conversation), "style", "split", "fold" and "lang". A question is
found at rank r when the r-th distinct page retrieved is one of its gold pages. Questions with no gold pages are
out of scope: they measure refusals.

The index is built into <data_dir>/eval/, keyed by the corpus content and every setting that changes what is
indexed, so repeated runs (and runs that only change retrieval settings) skip straight to the questions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT
from indexer.build import make_indexer
from indexer.chunking import CHUNKER_VERSION, Granularity, chunk_id
from indexer.local import FolderDocs
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.lexical import LEXICAL_VERSION
from rag.models import Chunk
from rag.rerank import CrossEncoderReranker, Reranker
from rag.retrieval import Retriever
from rag.settings import FolderSource, RetrievalSettings, Settings, TuningSettings, prepare_process_env
from rag.store import SCHEMA_FIELDS, MilvusStore

logger = logging.getLogger(__name__)
REFERENCE_CHARS = 512
REFERENCE_OVERLAP = 51  # 10%


@dataclass(frozen=True)
class Question:
    text: str
    gold: frozenset[str]
    history: tuple[str, ...] = ()
    style: str = ""
    split: str = ""
    fold: int = 0  # real-question sets: a fixed 5-fold split (a hash of the thread's URL)
    lang: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


@dataclass
class Outcome:
    question: Question
    pages: list[str]
    confidence: float
    latency_ms: float

    def rank(self, k: int) -> int | None:
        for position, page in enumerate(self.pages[:k], start=1):
            if page in self.question.gold:
                return position
        return None


@dataclass
class Scores:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def metrics(self, k: int, min_score: float) -> dict[str, Any]:
        answerable = [o for o in self.outcomes if o.question.answerable]
        out_of_scope = [o for o in self.outcomes if not o.question.answerable]
        ranks = [o.rank(k) for o in answerable]
        latencies = sorted(o.latency_ms for o in self.outcomes)
        n = max(1, len(answerable))
        return {
            "name": self.name,
            "questions": len(answerable),
            "recall@1": round(sum(1 for r in ranks if r == 1) / n, 4),
            f"recall@{k}": round(sum(1 for r in ranks if r) / n, 4),
            f"mrr@{k}": round(sum(1 / r for r in ranks if r) / n, 4),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
            "p95_ms": round(percentile(latencies, 95), 1),
            "min_score": min_score,
            "false_refusals": sum(1 for o in answerable if o.confidence < min_score),
            "out_of_scope": len(out_of_scope),
            "correct_refusals": sum(1 for o in out_of_scope if o.confidence < min_score),
        }


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def load_questions(paths: Sequence[Path], split: str = "") -> list[Question]:
    questions: list[Question] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                question = Question(
                    text=str(row["question"]),
                    gold=frozenset(row.get("gold_sources") or ()),
                    history=tuple(row.get("history") or ()),
                    style=str(row.get("style", "")),
                    split=str(row.get("split", "")),
                    fold=int(row.get("fold", 0)),
                    lang=str(row.get("lang", "")),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{number}: not a question line ({exc})") from exc
            if not split or question.split in ("", split):
                questions.append(question)
    return questions


def corpus_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def index_key(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:12]


# The code that decides what is indexed: extraction, chunking, the lexical text and the row layout. Its source is
# part of every eval index key, so a changed parser or chunker is never scored on an index the old code built.
INDEX_CODE = ("indexer/extract", "indexer/chunking.py", "indexer/local.py", "rag/lexical.py", "rag/models.py")


def code_digest(paths: Sequence[str] = INDEX_CODE, root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in paths:
        target = root / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


class CachedEmbedder:
    """An embedder that remembers passage vectors by text, on disk: rebuilding an eval index for another
    indexing recipe re-embeds only the passages that recipe changed. Queries are never cached (latency)."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self._inner = inner
        self._path = path
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self._vectors: dict[str, list[float]] = {}
        self._dirty = False
        if path.exists():
            try:
                with np.load(path) as saved:
                    self._vectors = dict(zip(saved["keys"].tolist(), saved["vectors"].tolist(), strict=True))
            except (ValueError, OSError, KeyError):
                logger.warning("embedding cache %s is unreadable; starting afresh", path)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    async def embed_query(self, text: str) -> list[float]:
        return await self._inner.embed_query(text)

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            fresh = await self._inner.embed_passages([first[k] for k in missing])
            self._vectors.update(zip(missing, fresh, strict=True))
            self._dirty = True
        return [self._vectors[k] for k in keys]

    def remember(self, vectors: Mapping[str, Sequence[float]]) -> None:
        """Vectors computed elsewhere, by text hash (``key``), for texts this cache does not hold yet."""
        fresh = {key: [float(x) for x in vector] for key, vector in vectors.items() if key not in self._vectors}
        if fresh:
            self._vectors.update(fresh)
            self._dirty = True

    def save(self) -> None:
        if self._dirty:
            tmp = self._path.with_name(self._path.name + ".tmp.npz")
            keys = list(self._vectors)
            np.savez(tmp, keys=np.array(keys), vectors=np.array([self._vectors[k] for k in keys], dtype=np.float32))
            tmp.replace(self._path)
            self._dirty = False


class EvalIndex:
    """One Milvus Lite database per corpus and embedding model, one collection per indexing recipe."""

    def __init__(self, settings: Settings, docs: Path, embedder: Embedder) -> None:
        self.settings = settings
        self.docs = docs
        self.embedder = embedder
        corpus = corpus_digest(docs)
        # torch vectors keep the key they always had; any other backend's vectors are kept apart.
        backend = () if settings.embedding.backend == "torch" else (settings.embedding.backend,)
        self.root = settings.data_dir / "eval" / index_key(corpus, settings.embedding.model, *backend)
        self.root.mkdir(parents=True, exist_ok=True)
        # What passages are embedded after: a configured prefix, or the model's own document prompt.
        self.prompt: str = getattr(embedder, "document_prompt", settings.embedding.passage_prefix)
        self.passages = CachedEmbedder(embedder, self.root / f"vectors-{index_key(self.prompt)}.npz")
        self.uri = str(self.root / "milvus.db")
        self._corpus = corpus
        self._code = code_digest()  # read once per corpus, not once per indexing recipe
        self._stores: list[MilvusStore] = []

    def store(self, collection: str) -> MilvusStore:
        store = MilvusStore(self.uri, self.settings.milvus.model_copy(update={"collection": collection}))
        self._stores.append(store)
        return store

    async def production(self, settings: Settings | None = None) -> MilvusStore:
        """The configured chunker, embedder and schema (or those of ``settings``): what the bot would search."""
        settings = settings or self.settings
        name = "docent_" + index_key(
            self._code,
            CHUNKER_VERSION,
            LEXICAL_VERSION,
            sorted(SCHEMA_FIELDS),
            self.embedder.max_tokens,
            settings.indexer.chunk_overlap_tokens,
            Granularity.from_settings(settings.tuning).tag,
            self.prompt,
        )
        store = self.store(name)
        done = self.root / f"{name}.json"
        if not done.exists():
            print(f"Indexing {self.docs} into {self.uri} ({name}); later runs reuse it…", file=sys.stderr)
            indexer = make_indexer(
                settings.model_copy(update={"data_dir": self.root}), self.passages, store, collection=name
            )
            report = await indexer.run([FolderDocs(FolderSource(id="eval", path=self.docs))])
            await asyncio.to_thread(self.passages.save)
            print(f"Indexed: {report.summary()}", file=sys.stderr)
            done.write_text(json.dumps(report.as_dict()))
        return store

    async def reference(self) -> MilvusStore:
        """The reference recipe: fixed 512-character windows of each file with 10% overlap, no context."""
        name = "reference_" + index_key(REFERENCE_CHARS, REFERENCE_OVERLAP, self.prompt)
        store = self.store(name)
        done = self.root / f"{name}.json"
        if not done.exists():
            print(f"Indexing the reference recipe into {name}…", file=sys.stderr)
            await store.ensure_collection(self.embedder.dimension)
            chunks = reference_chunks(self.docs)
            for start in range(0, len(chunks), 256):
                batch = chunks[start : start + 256]
                await store.upsert(batch, await self.passages.embed_passages([c.text for c in batch]))
            await store.flush()
            await asyncio.to_thread(self.passages.save)
            done.write_text(json.dumps({"chunks": len(chunks)}))
        return store

    async def close(self) -> None:
        for store in self._stores:
            await store.close()


def reference_chunks(root: Path) -> list[Chunk]:
    chunks: list[Chunk] = []
    step = REFERENCE_CHARS - REFERENCE_OVERLAP
    for path in sorted(p for p in root.rglob("*.md") if p.is_file()):
        page_id = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for ordinal, start in enumerate(range(0, max(1, len(text) - REFERENCE_OVERLAP), step)):
            piece = text[start : start + REFERENCE_CHARS]
            if piece.strip():
                chunks.append(
                    Chunk(chunk_id("reference", page_id, ordinal), "reference", page_id, ordinal, "", "", "", piece, "")
                )
    return chunks


class ReferenceRetriever:
    """Dense cosine top-k over the reference chunks; pages in order of their first chunk."""

    def __init__(self, embedder: Embedder, store: MilvusStore, k: int) -> None:
        self._embedder = embedder
        self._store = store
        self._k = k

    async def pages(self, question: Question) -> tuple[list[str], float]:
        vector = await self._embedder.embed_query(" ".join([*question.history, question.text]))
        hits = await self._store.search(vector, self._k * 4)
        return list(dict.fromkeys(hit.page_id for hit in hits)), max((h.similarity for h in hits), default=0.0)


async def run_questions(name: str, retrieve: Any, questions: Sequence[Question]) -> Scores:
    """``retrieve(question) -> (pages, confidence)``; three warm-up calls are not timed."""
    for question in questions[:3]:
        await retrieve(question)
    scores = Scores(name)
    for question in questions:
        started = time.perf_counter()
        pages, confidence = await retrieve(question)
        scores.outcomes.append(Outcome(question, pages, confidence, (time.perf_counter() - started) * 1000))
    return scores


def production_retrieve(retriever: Retriever) -> Any:
    async def retrieve(question: Question) -> tuple[list[str], float]:
        result = await retriever.retrieve(question.text, question.history)
        return result.pages, result.confidence

    return retrieve


def ablations(
    base: RetrievalSettings, tuning: TuningSettings, reranker: Reranker | None
) -> list[tuple[str, RetrievalSettings, TuningSettings, bool]]:
    """Each technique switched on in turn, from plain dense chunk ranking to the configured pipeline."""
    variants = [
        ("dense, chunk order", base, tuning.model_copy(update={"mode": "dense", "page_bonus": 0.0}), False),
        ("dense + page aggregation", base, tuning.model_copy(update={"mode": "dense"}), False),
        ("hybrid BM25, chunk order", base, tuning.model_copy(update={"mode": "hybrid", "page_bonus": 0.0}), False),
        ("hybrid + page aggregation", base, tuning.model_copy(update={"mode": "hybrid"}), False),
        (
            "hybrid + aggregation, no follow-up context",
            base.model_copy(update={"history_questions": 0}),
            tuning,
            False,
        ),
    ]
    if reranker is not None:
        variants.append(("hybrid + aggregation + rerank", base, tuning, True))
    return variants


def print_outcomes(scores: Scores, k: int, min_score: float) -> None:
    for outcome in scores.outcomes:
        q = outcome.question
        if q.answerable:
            rank = outcome.rank(k)
            mark = f"{rank:>4}" if rank else "MISS"
        else:
            mark = "OOS " if outcome.confidence < min_score else "OOS!"
        top = ", ".join(outcome.pages[:3])
        gold = "" if not q.answerable or outcome.rank(k) else f"  gold: {', '.join(sorted(q.gold))}"
        print(f"{mark} {outcome.confidence:.3f} [{q.style or '-'}] {q.text[:70]!r} -> {top}{gold}")


def print_table(rows: Sequence[dict[str, Any]], k: int) -> None:
    header = f"{'variant':<44} {'recall@1':>8} {f'recall@{k}':>8} {f'mrr@{k}':>7} {'p50 ms':>7} {'p95 ms':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<44} {row['recall@1']:>8.3f} {row[f'recall@{k}']:>8.3f} {row[f'mrr@{k}']:>7.3f} "
            f"{row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f}"
        )


def by_style(scores: Scores, k: int) -> dict[str, dict[str, float]]:
    styles: dict[str, list[Outcome]] = {}
    for outcome in scores.outcomes:
        if outcome.question.answerable:
            styles.setdefault(outcome.question.style or "-", []).append(outcome)
    return {
        style: {"n": len(items), f"recall@{k}": round(sum(1 for o in items if o.rank(k)) / len(items), 3)}
        for style, items in sorted(styles.items())
    }


def calibration(scores: Scores) -> list[dict[str, float]]:
    """False refusals (answerable) and correct refusals (out of scope) for a sweep of thresholds."""
    answerable = [o.confidence for o in scores.outcomes if o.question.answerable]
    out_of_scope = [o.confidence for o in scores.outcomes if not o.question.answerable]
    rows = []
    for step in range(0, 25):
        threshold = round(0.20 + step * 0.02, 2)
        rows.append(
            {
                "threshold": threshold,
                "false_refusal_rate": round(sum(c < threshold for c in answerable) / max(1, len(answerable)), 3),
                "correct_refusal_rate": round(sum(c < threshold for c in out_of_scope) / max(1, len(out_of_scope)), 3),
            }
        )
    return rows


async def score_corpus(
    settings: Settings,
    docs: Path,
    questions: Sequence[Question],
    *,
    k: int,
    reference_baseline: bool = False,
    with_ablations: bool = False,
    calibrate: bool = False,
) -> dict[str, Any]:
    """Index ``docs`` as configured, score ``questions`` (printing each outcome and the tables) and return the
    metrics: the configured pipeline's, with the baseline and ablation rows as ``variants`` when asked."""
    prepare_process_env(settings)
    embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache)
    reranker = None
    if settings.retrieval.rerank_model:
        reranker = await asyncio.to_thread(
            CrossEncoderReranker, settings.retrieval.rerank_model, device=settings.embedding.device
        )
    index = EvalIndex(settings, docs, embedder)
    min_score = settings.tuning.min_score
    rows: list[dict[str, Any]] = []
    try:
        store = await index.production()
        configured = await run_questions(
            "configured pipeline",
            production_retrieve(Retriever(embedder, store, settings.retrieval, settings.tuning, reranker)),
            questions,
        )
        print_outcomes(configured, k, min_score)
        if reference_baseline:
            reference = ReferenceRetriever(embedder, await index.reference(), k)
            rows.append((await run_questions("reference recipe", reference.pages, questions)).metrics(k, 0.0))
        if with_ablations:
            for name, variant, tuning, rerank in ablations(settings.retrieval, settings.tuning, reranker):
                retriever = Retriever(embedder, store, variant, tuning, reranker if rerank else None)
                rows.append((await run_questions(name, production_retrieve(retriever), questions)).metrics(k, 0))
        result = configured.metrics(k, min_score)
        rows.append(result)
    finally:
        await index.close()
        embedder.close()
        if reranker is not None:
            reranker.close()
    print()
    print_table(rows, k)
    styles = by_style(configured, k)
    summary = ", ".join(f"{s} {v[f'recall@{k}']:.2f} (n={v['n']})" for s, v in styles.items())
    print(f"\nrecall@{k} by style: {summary}")
    result["by_style"] = styles
    if len(rows) > 1:
        result["variants"] = rows[:-1]
    if calibrate:
        sweep = calibration(configured)
        result["calibration"] = sweep
        print("\nthreshold  false refusals  correct refusals")
        for row in sweep:
            print(f"{row['threshold']:>9.2f}  {row['false_refusal_rate']:>14.3f}  {row['correct_refusal_rate']:>16.3f}")
    return result
