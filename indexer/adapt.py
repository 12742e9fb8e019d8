"""Adapt the embedder to the indexed docs (GPL / InPars style), as an operator command: ``python -m indexer adapt``.

General-purpose embedders have never read a project's own vocabulary, and bigger ones did not beat MiniLM on real
questions (issue 23). So the docs teach the model themselves:

1. a bounded number of indexed sections per page is picked (docs sources only: community answers are not docs);
2. a small instruct LLM writes one question per section (``generate_questions``);
3. a question is kept only if today's retrieval finds its own page in the top ``keep_top``: a question its passage
   does not answer, or that any page could answer, teaches nothing; the best-ranked chunk of another page in the
   same (hybrid BM25 + dense) search is its hard negative (``mine_triplets``);
4. the configured embedder is fine-tuned on the (question, passage, hard negative) triplets with
   ``MultipleNegativesRankingLoss`` on the CPU (``train_embedder``), into a new, versioned model folder.

Real questions (the benchmark's dev sets) never enter training: only the indexed docs do. Switching to the new
folder is the operator's choice (``embedding.model``), followed by an index run, which builds the new model's index
beside the old one: the old one answers (its questions embedded by the old model) until the run is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import resource
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.embedder import SentenceTransformerEmbedder
from rag.errors import ConfigError, IndexMissing
from rag.generator import Generator, VLLMGenerator
from rag.models import with_context
from rag.retrieval import Retriever
from rag.scope import SearchScope, is_community
from rag.settings import PACKAGED_MINILM, LLMSettings, Settings, prepare_process_env, resolve_embedding_model
from rag.store import MilvusStore, Store
from rag.switching import AnsweringEmbedder

logger = logging.getLogger(__name__)
Status = Callable[[str], None]
OpenGenerator = Callable[[LLMSettings], contextlib.AbstractAsyncContextManager[Generator]]

DOCS_ONLY = SearchScope(communities=())  # every docs source, no community answer: they are not docs
REPORT_FILE = "adapt.json"
SYNTHETIC_FILE = "synthetic.jsonl"
PASSAGE_CHARS = 2000  # of a section shown to the question writer: enough to ask about, a short prompt
QUESTION_CHARS = 300
ADAPTED = "-adapted-"


@dataclass(frozen=True)
class DocChunk:
    """One indexed section, as the store holds it."""

    chunk_id: str
    source_id: str
    page_id: str
    title: str
    heading: str
    text: str

    @property
    def passage(self) -> str:
        """What the embedder saw when indexing it (title and heading give a section its context)."""
        return with_context(self.title, self.heading, self.text)


@dataclass(frozen=True)
class Generated:
    """The question writer's raw reply for one chunk; ``question`` is None when the reply is not a usable one."""

    chunk: DocChunk
    raw: str

    @property
    def question(self) -> str | None:
        return clean_question(self.raw)


@dataclass(frozen=True)
class Triplet:
    question: str
    positive: str
    negative: str
    page_id: str  # the positive's page: a batch holds one triplet per page (see ``batches``)


@dataclass(frozen=True)
class Mined:
    """What the retrieval filter kept, and a record of every question for the model folder."""

    triplets: tuple[Triplet, ...]
    records: tuple[dict[str, Any], ...]

    @property
    def kept(self) -> int:
        return sum(1 for r in self.records if r["kept"])


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    max_steps: int = 0  # 0: every batch of every epoch
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup: float = 0.1  # share of the steps the learning rate rises over
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0: torch's default
    query_prefix: str = ""
    passage_prefix: str = ""


@dataclass(frozen=True)
class TrainReport:
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


@dataclass(frozen=True)
class AdaptConfig:
    per_page: int = 2
    max_pages: int = 0  # 0: every page
    keep_top: int = 5
    generator: str = ""  # the question writer's model folder; empty: llm.model
    seed: int = 0
    min_chars: int = 200  # shorter sections are asked about only when a page has no longer one
    max_tokens: int = 64
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class AdaptReport:
    folder: Path
    base_model: str
    generator_model: str
    chunks: int
    generated: int
    kept: int
    triplets: int
    engine_start_s: float
    generation_s: float
    filter_s: float
    training: TrainReport
    peak_rss_mb: float
    peak_rss_children_mb: float
    config: AdaptConfig

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


async def docs_chunks(store: Store) -> list[DocChunk]:
    """Every indexed section of the docs sources (windows repeat their section; community answers are no docs)."""
    rows = await store.scan(["id", "source_id", "page_id", "title", "heading", "text"], 'kind == "section"')
    return [
        DocChunk(str(r["id"]), str(r["source_id"]), str(r["page_id"]), r["title"] or "", r["heading"] or "", r["text"])
        for r in rows
        if not is_community(str(r["source_id"])) and (r["text"] or "").strip()
    ]


def pick_chunks(
    chunks: Sequence[DocChunk], *, per_page: int, max_pages: int, seed: int, min_chars: int
) -> list[DocChunk]:
    """At most ``per_page`` sections of each page (of at most ``max_pages`` pages), chosen at random with ``seed``
    so a run repeats: long pages must not outweigh short ones, and the bound keeps generation affordable."""
    pages: dict[tuple[str, str], list[DocChunk]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.source_id, c.page_id, c.chunk_id)):
        pages.setdefault((chunk.source_id, chunk.page_id), []).append(chunk)
    rng = random.Random(seed)
    keys = list(pages)
    if max_pages and len(keys) > max_pages:
        keys = sorted(rng.sample(keys, max_pages))
    picked: list[DocChunk] = []
    for key in keys:
        sections = pages[key]
        long = [c for c in sections if len(c.text) >= min_chars]
        pool = long or sorted(sections, key=lambda c: -len(c.text))[:1]  # a short page still gets one question
        picked.extend(rng.sample(pool, min(per_page, len(pool))))
    return picked


def question_messages(chunk: DocChunk, project: str) -> list[dict[str, str]]:
    """InPars-style: the passage, then a request for the one question a user would ask that it answers."""
    name = project or "the project"
    text = chunk.text if len(chunk.text) <= PASSAGE_CHARS else chunk.text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
    where = " > ".join(part for part in (chunk.title, chunk.heading) if part)
    return [
        {
            "role": "system",
            "content": f"You write the questions that users of {name} ask in its community chat.",
        },
        {
            "role": "user",
            "content": f"Documentation page: {where}\n\n{text}\n\n"
            "Write one question a user could ask that this documentation answers. Ask it as a user would, in "
            "one sentence, without mentioning the documentation or the page. Reply with the question only.",
        },
    ]


_LABEL = re.compile(r"^\s*(?:\d+[.)]\s*|[-*]\s*|(?:question|q)\s*\d*\s*[:.]\s*)+", re.IGNORECASE)


def clean_question(raw: str) -> str | None:
    """The question in the writer's reply: its first line, without a label, quotes or markup; None when too short
    to be one (fewer than three words)."""
    line = next((part for part in raw.splitlines() if part.strip()), "")
    text = _LABEL.sub("", line).strip().strip("*`\"'“”").strip()
    text = " ".join(text.split())
    if len(text) > QUESTION_CHARS:
        text = text[:QUESTION_CHARS].rsplit(" ", 1)[0]
    return text if len(text.split()) >= 3 else None


async def generate_questions(
    generator: Generator, chunks: Sequence[DocChunk], *, project: str = "", concurrency: int = 8, status: Status
) -> list[Generated]:
    """One reply per chunk, ``concurrency`` at a time (the engine batches them), in the chunks' order."""
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(chunk: DocChunk) -> Generated:
        nonlocal done
        text = ""
        async with limit:
            async for so_far in generator.stream(question_messages(chunk, project)):
                text = so_far  # the stream yields the reply so far, growing
        done += 1
        if done % 50 == 0 or done == len(chunks):
            status(f"  {done}/{len(chunks)} questions written")
        return Generated(chunk, text)

    return list(await asyncio.gather(*(one(chunk) for chunk in chunks)))


async def mine_triplets(
    retriever: Retriever, generated: Sequence[Generated], *, keep_top: int, scope: SearchScope = DOCS_ONLY
) -> Mined:
    """Keep a question if retrieval ranks its own page in the top ``keep_top`` pages; its hard negative is the
    best-ranked chunk of another page in the same search (dense and BM25 fused, as the bot searches)."""
    triplets: list[Triplet] = []
    records: list[dict[str, Any]] = []
    for item in generated:
        question = item.question
        record: dict[str, Any] = {"page_id": item.chunk.page_id, "chunk_id": item.chunk.chunk_id, "question": question}
        if question is None:
            records.append({**record, "kept": False, "why": "no question in the reply", "raw": item.raw[:200]})
            continue
        retrieval = await retriever.retrieve(question, scope=scope)
        pages = retrieval.pages[:keep_top]
        rank = pages.index(item.chunk.page_id) + 1 if item.chunk.page_id in pages else None
        negative = next(
            (hit for hit in retrieval.hits if hit.page_id != item.chunk.page_id and hit.text != item.chunk.text), None
        )
        if rank is None:
            records.append({**record, "kept": False, "why": f"its page is not in the top {keep_top}"})
        elif negative is None:
            records.append({**record, "kept": False, "rank": rank, "why": "no other page was retrieved"})
        else:
            triplets.append(Triplet(question, item.chunk.passage, negative.context_text, item.chunk.page_id))
            records.append({**record, "kept": True, "rank": rank, "negative_page_id": negative.page_id})
    return Mined(tuple(triplets), tuple(records))


def batches(triplets: Sequence[Triplet], size: int, rng: random.Random) -> list[list[Triplet]]:
    """Shuffled batches with one triplet per page: in-batch negatives are the other triplets' passages, and
    a passage of the question's own page among them would teach it that its page is wrong."""
    order = list(triplets)
    rng.shuffle(order)
    out: list[tuple[set[str], list[Triplet]]] = []
    for triplet in order:
        home = next((b for b in out if len(b[1]) < size and triplet.page_id not in b[0]), None)
        if home is None:
            home = (set(), [])
            out.append(home)
        home[0].add(triplet.page_id)
        home[1].append(triplet)
    return [batch for _, batch in out if len(batch) > 1]  # a batch of one has no negative but its own


def train_embedder(base: str, triplets: Sequence[Triplet], out: Path, config: TrainConfig) -> TrainReport:
    """Fine-tune the sentence-transformers model at ``base`` on the CPU and save it to ``out`` (blocking: call it
    in a thread). A plain loop over the loss, so no dataset library is needed and ``max_steps`` bounds the cost."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = SentenceTransformer(base, device="cpu")
    loss = MultipleNegativesRankingLoss(model)
    plan = [batch for _ in range(config.epochs) for batch in batches(triplets, config.batch_size, rng)]
    if config.max_steps:
        plan = plan[: config.max_steps]
    if not plan:
        raise ConfigError(f"{len(triplets)} triplet(s) make no training batch: generate more questions")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    warmup = max(1, math.ceil(config.warmup * len(plan)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / max(1, len(plan) - warmup)))
    )
    started = time.perf_counter()
    losses: list[float] = []
    model.train()
    for number, batch in enumerate(plan, 1):
        features = [
            model.preprocess([config.query_prefix + t.question for t in batch]),
            model.preprocess([config.passage_prefix + t.positive for t in batch]),
            model.preprocess([config.passage_prefix + t.negative for t in batch]),
        ]
        value = loss(features, torch.empty(0))
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(value.detach()))
        if number % 10 == 0 or number == len(plan):
            logger.info("step %d/%d: loss %.4f", number, len(plan), losses[-1])
    model.eval()
    model.save(str(out))
    return TrainReport(len(plan), time.perf_counter() - started, losses[0], losses[-1])


def base_name(model: str) -> str:
    """The folder-name stem of a model: its last path part, without an earlier adaptation's suffix."""
    name = "all-MiniLM-L6-v2" if model == PACKAGED_MINILM else model.rstrip("/").split("/")[-1].split(":")[-1]
    return name.split(ADAPTED)[0] or "embedder"


def model_folder(data_dir: Path, model: str, now: datetime) -> Path:
    return data_dir / "embedders" / f"{base_name(model)}{ADAPTED}{now.strftime('%Y%m%dT%H%M%SZ')}"


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def check_generator(model: str) -> None:
    """A generator given as a path must be a model folder; say how to fetch the small one otherwise."""
    path = Path(model).expanduser()
    looks_local = path.is_absolute() or model.startswith((".", "~")) or path.exists()
    if looks_local and not (path / "config.json").is_file():
        raise ConfigError(
            f"the question writer {model!r} is not a model folder (no config.json). Fetch the small one with "
            "`python -m bench.models fetch qwen2.5-coder-0.5b` and pass "
            "--generator $(python -m bench.models path qwen2.5-coder-0.5b)"
        )


@contextlib.asynccontextmanager
async def start_generator(settings: LLMSettings) -> AsyncIterator[Generator]:
    async with await VLLMGenerator.start(settings) as engine:
        yield engine


def writer_settings(settings: Settings, config: AdaptConfig) -> LLMSettings:
    """The engine for questions: short replies, greedy (repeatable), short prompts."""
    return settings.llm.model_copy(
        update={
            "model": config.generator or settings.llm.model,
            "max_tokens": config.max_tokens,
            "temperature": 0.0,
            "max_model_len": min(settings.llm.max_model_len, 2048),
        }
    )


async def adapt(
    settings: Settings,
    config: AdaptConfig,
    *,
    open_generator: OpenGenerator = start_generator,
    status: Status = logger.info,
    now: datetime | None = None,
) -> AdaptReport:
    """The whole run: pick, write questions, filter and mine, fine-tune, write the folder with ``adapt.json``."""
    writer = writer_settings(settings, config)
    check_generator(writer.model)
    base = settings.embedding.model
    folder = model_folder(settings.data_dir, base, now or datetime.now(UTC))
    prepare_process_env(settings)
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.require_index()
        picked = pick_chunks(
            await docs_chunks(store),
            per_page=config.per_page,
            max_pages=config.max_pages,
            seed=config.seed,
            min_chars=config.min_chars,
        )
        if not picked:
            raise IndexMissing("the index holds no docs sections: run `python -m indexer` first")
        pages = len({(c.source_id, c.page_id) for c in picked})
        status(f"Writing {len(picked)} questions ({pages} pages) with {writer.model}…")
        started = time.perf_counter()
        async with open_generator(writer) as generator:
            engine_start_s = time.perf_counter() - started
            started = time.perf_counter()
            generated = await generate_questions(
                generator, picked, project=settings.answer.project, concurrency=writer.max_num_seqs, status=status
            )
            generation_s = time.perf_counter() - started
        status(f"Filtering {len(generated)} questions by retrieval (own page in the top {config.keep_top})…")
        started = time.perf_counter()
        embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache)
        # While a switch of model is re-indexed, the old index answers: its own model embeds the questions.
        queries = AnsweringEmbedder(embedder, settings.embedding, store, cache_dir=settings.embedding_cache)
        prompts = embedder.query_prompt, embedder.document_prompt  # trained with the prompts it is searched with
        try:
            retrieval = settings.retrieval.model_copy(update={"top_k": max(config.keep_top, 2)})
            mined = await mine_triplets(
                Retriever(queries, store, retrieval, settings.tuning), generated, keep_top=config.keep_top
            )
        finally:
            queries.close()
            embedder.close()
        filter_s = time.perf_counter() - started
    finally:
        await store.close()
    if not mined.triplets:
        raise ConfigError(
            f"none of the {len(generated)} questions found its own page in the top {config.keep_top}: nothing to "
            "train on (is --generator an instruct model?)"
        )
    status(f"Fine-tuning {base} on {len(mined.triplets)} triplets…")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    train = replace(
        config.train,
        query_prefix=prompts[0],
        passage_prefix=prompts[1],
        threads=config.train.threads or settings.embedding.threads,
    )
    training = await asyncio.to_thread(train_embedder, resolve_embedding_model(base), mined.triplets, partial, train)
    report = AdaptReport(
        folder=folder,
        base_model=base,
        generator_model=writer.model,
        chunks=len(picked),
        generated=sum(1 for g in generated if g.question is not None),
        kept=mined.kept,
        triplets=len(mined.triplets),
        engine_start_s=round(engine_start_s, 1),
        generation_s=round(generation_s, 1),
        filter_s=round(filter_s, 1),
        training=training,
        peak_rss_mb=round(peak_rss_mb(), 1),
        peak_rss_children_mb=round(peak_rss_mb(resource.RUSAGE_CHILDREN), 1),
        config=replace(config, train=train),
    )
    (partial / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    (partial / SYNTHETIC_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mined.records))
    partial.rename(folder)  # the folder appears whole or not at all
    return report


def summary(report: AdaptReport) -> str:
    t = report.training
    return "\n".join(
        [
            f"Adapted {report.base_model} into {report.folder}",
            f"  sections {report.chunks}, questions {report.generated}, kept {report.kept}, triplets {report.triplets}",
            f"  engine start {report.engine_start_s:.0f}s, generation {report.generation_s:.0f}s, "
            f"filtering {report.filter_s:.0f}s, training {t.seconds:.0f}s ({t.steps} steps, loss {t.first_loss:.3f} "
            f"-> {t.last_loss:.3f}), peak RSS {report.peak_rss_mb:.0f} MiB (engine process "
            f"{report.peak_rss_children_mb:.0f} MiB)",
            "To switch, measure it first (DOCENT_EMBEDDING__MODEL=<folder> python -m bench.cv), then set",
            f"  DOCENT_EMBEDDING__MODEL={report.folder}",
            "and re-index (python -m indexer, or restart the bot: its index runs do it). Every page is embedded again",
            "into a new collection behind the alias; the old index keeps answering, with questions embedded by the",
            "old model, until the run is complete, so answering has no gap.",
        ]
    )
