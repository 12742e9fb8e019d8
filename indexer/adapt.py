"""Adapt the embedder to the indexed docs (GPL / InPars style), as an operator command: ``python -m indexer adapt``.

General-purpose embedders have never read a project's own vocabulary, and bigger ones did not beat MiniLM on real
questions (issue 23). So the docs teach the model themselves:

1. a bounded number of indexed sections per page is picked (docs sources only: community answers are not docs);
2. a small instruct LLM writes a question per section as a user who hit the problem it solves would post it
   (``STYLES``: a how-to, an error, an "is it possible", a troubleshooting post or a quick chat question; the
   styles and sections are seeded, the words sampled); replies without a usable question, copying the section or
   parroting the prompt's example posts are dropped (``read_question``);
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
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.embedder import SentenceTransformerEmbedder
from rag.errors import ConfigError, GenerationTimeout, IndexMissing
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
PASSAGE_CHARS = 1200  # of a section shown to the question writer: enough to ask about; the prompt is most of
# a question's cost on a CPU
QUESTION_CHARS = 700  # a longer reply rambles: real posts are a title and a few sentences
MIN_WORDS = 4
COPY_NGRAM = 6  # a question sharing most of its 6-word runs with the section copied it
COPY_SHARE = 0.5
PARROT_NGRAM = 5  # a question holding any 5-word run of its style's example parrots the example
ADAPTED = "-adapted-"
WRITER_TIMEOUT_S = 900.0


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
class QuestionStyle:
    """One kind of post a user writes; every style shares the prompt of ``question_messages``."""

    name: str
    situation: str  # who the user is and what they ask, for the writer
    examples: tuple[str, ...]  # the posts in this style about the ``EXAMPLES`` sections, shown before the real one
    titled: bool = True  # a post with a short title and one or two sentences; else one chat line


# Made-up projects' sections, so no real docs or questions leak into the prompt. The small writer follows examples
# far better than a description: without any it wrote answers, tutorials and titles copied from headings; with one
# it copied the example's sentences, so there are two, on other subjects (and ``parrots`` drops a copy).
EXAMPLES: tuple[tuple[str, DocChunk], ...] = (
    (
        "acme",
        DocChunk(
            "example-1",
            "example",
            "example-1",
            "Client",
            "Timeouts",
            "Every request gives up after `timeout` seconds (default 10) and raises `acme.TimeoutError`. Pass "
            "`Client(timeout=60)` for slow endpoints, or `timeout=None` to wait as long as the server takes.",
        ),
    ),
    (
        "kite",
        DocChunk(
            "example-2",
            "example",
            "example-2",
            "Workers",
            "Concurrency",
            "A worker runs `concurrency` tasks at once (default: one per CPU core). Start it with "
            "`kite worker --concurrency 4`; the tasks beyond that wait in the queue until a slot is free.",
        ),
    ),
)
STYLES: tuple[QuestionStyle, ...] = (
    QuestionStyle(
        "how-to",
        "You want to do something this section explains, but you do not know how. Say what you are building and "
        "ask how to do it.",
        (
            "Title: Uploads of big files never finish\nI upload 2 GB files with acme and the call always fails "
            "after a while. How do I let one request run for several minutes?",
            "Title: Run more jobs in parallel\nOur box has 2 cores but the jobs mostly sleep on network calls. How "
            "can I get 50 of them going at the same time?",
        ),
    ),
    QuestionStyle(
        "error",
        "Your code fails or does something unexpected, and this section explains why. Say what you did and what "
        "happened, quoting a short error message or one line of code that fits the section, and ask why.",
        (
            "Title: acme.TimeoutError on the report endpoint\nOur report endpoint needs about 30 s and "
            "`client.get('/report')` fails with `acme.TimeoutError`. Why does it stop at 10 seconds?",
            "Title: Tasks stuck in PENDING\nI queue 50 tasks with `send_email.delay(user)` but only 2 run and the "
            "rest stay `PENDING` for minutes. Is the worker broken?",
        ),
    ),
    QuestionStyle(
        "is-it-possible",
        "You are not sure the project can do what this section describes. Say what you need and ask whether it "
        "is possible.",
        (
            "Title: Wait for a very slow service\nOne internal service sometimes takes many minutes to answer. Is "
            "it possible to make acme wait as long as it takes?",
            "Title: One task at a time\nOur tasks call an API that allows a single connection. Can a kite worker be "
            "limited to one task at once?",
        ),
    ),
    QuestionStyle(
        "troubleshooting",
        "You are stuck on a problem this section solves. Say what you tried that did not work, and ask for help.",
        (
            "Title: Long requests keep dying\nI wrapped the call in a retry loop and raised the server's limits, "
            "but requests still die after 10 seconds. What else can I try?",
            "Title: Queue keeps growing\nI restarted the worker twice and moved it to a bigger machine, yet most "
            "jobs just wait in the queue. What am I missing?",
        ),
    ),
    QuestionStyle(
        "chat",
        "You ask a quick question in the chat.",
        (
            "how do I make acme wait longer than 10 s for a response?",
            "does kite run tasks in parallel or one after the other?",
        ),
        titled=False,
    ),
)


@dataclass(frozen=True)
class Generated:
    """One question for one chunk: the writer's raw reply, and the question read from it (None, with ``why``,
    when the reply holds no usable one)."""

    chunk: DocChunk
    raw: str
    style: str = ""
    question: str | None = None
    why: str = ""

    @classmethod
    def read(cls, chunk: DocChunk, raw: str, style: QuestionStyle | None = None) -> Generated:
        question, why = read_question(raw, chunk.text, "\n".join(style.examples) if style else "")
        return cls(chunk, raw, style.name if style else "", question, why)


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
    mini_batch: int = 8  # > 0: the same loss, its gradients computed this many texts at a time (GradCache)
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
    per_section: int = 1  # questions per section, each in another style
    max_tokens: int = 96  # a title and two sentences with a code line; a longer reply is cut to whole sentences
    temperature: float = 0.8
    top_p: float = 0.95
    questions: str = ""  # an earlier run's synthetic.jsonl: train on its questions, write none
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
    peak_rss_mb: float  # ru_maxrss of this process over the whole run
    peak_rss_children_mb: float  # ru_maxrss of its biggest ended child: not the engine's worker, a grandchild
    config: AdaptConfig
    # per phase: the sampled peak of this process ("command") and of its children (the engine's processes, which
    # may linger a few seconds into filtering while they shut down)
    peak_rss_phases_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    styles: dict[str, dict[str, int]] = field(default_factory=dict)  # per style: questions written, kept

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


def pick_styles(chunk: DocChunk, count: int, seed: int) -> list[QuestionStyle]:
    """``count`` different styles for a chunk, drawn with ``seed`` and the chunk's id: a run repeats, whatever
    order the chunks come in."""
    return random.Random(f"{seed}:{chunk.chunk_id}").sample(STYLES, min(count, len(STYLES)))


def question_messages(chunk: DocChunk, project: str, style: QuestionStyle = STYLES[0]) -> list[dict[str, str]]:
    """The post of a user whose problem the section solves, in ``style``, after the same request about made-up
    sections answered with the style's examples: real questions come from users who have not read the page, in
    their own words, often with an error message or a line of code. The examples are the same for every section
    of a style, so the engine computes them once (prefix caching)."""
    messages = [
        {
            "role": "system",
            "content": "You are a developer. You post questions in the community chat and issues of the projects "
            "you use.",
        }
    ]
    for (name, section), example in zip(EXAMPLES, style.examples, strict=True):
        messages += [{"role": "user", "content": _ask(section, name, style)}, {"role": "assistant", "content": example}]
    return [*messages, {"role": "user", "content": _ask(chunk, project or "the project", style)}]


def _ask(chunk: DocChunk, name: str, style: QuestionStyle) -> str:
    text = chunk.text if len(chunk.text) <= PASSAGE_CHARS else chunk.text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
    where = " > ".join(part for part in (chunk.title, chunk.heading) if part)
    form = (
        "Reply in this form, and nothing else:\nTitle: <a short title>\n<one or two sentences>"
        if style.titled
        else "Reply with the one short question only."
    )
    return (
        f"Documentation of {name}, page {where}:\n\n{text}\n\n"
        f"Write the post of a user of {name} who has not read this page and whose problem it solves. "
        f"{style.situation} Use your own words, not the section's sentences nor its heading; do not mention the "
        f"documentation and do not answer the question.\n{form}"
    )


_LABEL = re.compile(
    r"^\s*(?:#+\s*|\d+[.)]\s*|[-*]\s+|\*\*(?=\w[^*]*\*\*\s*:?)|"
    r"(?:title|body|post|question|problem|q)\s*\d*\s*[:.]\s*(?:\*\*)?\s*)+",
    re.IGNORECASE,
)
_PREAMBLE = re.compile(r"^(?:sure|certainly|of course|here(?:'s| is| are)\b)[^\n]*$", re.IGNORECASE)
_ENDS = (".", "?", "!", ")", "`", '"', "'", "]", "}")
_WORD = re.compile(r"\w+")


def _line(text: str) -> str:
    text = " ".join(_LABEL.sub("", text).split())
    if text.startswith("**") and text.endswith("**"):
        text = text[2:-2]
    return text.strip().strip("\"'“”").strip()


def _ngrams(text: str, n: int = COPY_NGRAM) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def copies(question: str, passage: str) -> bool:
    """Most of the question's runs of six words are the section's own: it was copied, not asked."""
    runs = _ngrams(question)
    return bool(runs) and len(runs & _ngrams(passage)) / len(runs) > COPY_SHARE


def parrots(question: str, examples: str) -> bool:
    """The question repeats a phrase of an example post it was shown (a small writer often does)."""
    return bool(_ngrams(question, PARROT_NGRAM) & _ngrams(examples, PARROT_NGRAM))


def read_question(raw: str, passage: str = "", examples: str = "") -> tuple[str | None, str]:
    """The question in the writer's reply and, when there is none, why: a title line and the post's sentences
    (labels, a preamble, quotes and markup dropped; a last sentence cut off by the token limit removed), refused
    when shorter than four words, longer than ``QUESTION_CHARS``, copied from the section or parroting the
    example post."""
    lines = [_line(part) for part in raw.splitlines()]
    lines = [line for line in lines if line and not _PREAMBLE.match(line) and line.strip("`")]
    if lines and not lines[-1].endswith(_ENDS):  # the token limit cut it: keep its whole sentences
        cut = max(lines[-1].rfind(end) for end in ".?!")
        lines[-1] = lines[-1][: cut + 1] if cut > 0 else ""
        lines = [line for line in lines if line]
    if not lines:
        return None, "no question in the reply"
    question = "\n\n".join([lines[0], "\n".join(lines[1:])]) if len(lines) > 1 else lines[0]
    if len(question.split()) < MIN_WORDS:
        return None, "no question in the reply"
    if len(question) > QUESTION_CHARS:
        return None, f"longer than {QUESTION_CHARS} characters"
    if passage and copies(question, passage):
        return None, "copies the section"
    if examples and parrots(question, examples):
        return None, "parrots the example"
    return question, ""


def clean_question(raw: str, passage: str = "") -> str | None:
    return read_question(raw, passage)[0]


async def generate_questions(
    generator: Generator,
    chunks: Sequence[DocChunk],
    *,
    project: str = "",
    per_section: int = 1,
    seed: int = 0,
    concurrency: int = 8,
    status: Status,
) -> list[Generated]:
    """``per_section`` replies per chunk, each in another style, ``concurrency`` at a time (the engine batches
    them), in the chunks' order."""
    jobs = [(chunk, style) for chunk in chunks for style in pick_styles(chunk, per_section, seed)]
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(chunk: DocChunk, style: QuestionStyle) -> Generated:
        nonlocal done
        text = ""
        async with limit:
            try:
                async for so_far in generator.stream(question_messages(chunk, project, style)):
                    text = so_far  # the stream yields the reply so far, growing
            except GenerationTimeout:
                return Generated(chunk, text, style.name, None, "the writer timed out")  # one question lost
        done += 1
        if done % 50 == 0 or done == len(jobs):
            status(f"  {done}/{len(jobs)} questions written")
        return Generated.read(chunk, text, style)

    return list(await asyncio.gather(*(one(chunk, style) for chunk, style in jobs)))


def earlier_questions(path: Path, chunks: Sequence[DocChunk]) -> tuple[list[Generated], int]:
    """The questions of an earlier run's ``synthetic.jsonl`` (kept or not: today's index filters them again),
    on the sections still indexed; and how many were dropped because their section is no longer."""
    by_id = {chunk.chunk_id: chunk for chunk in chunks}
    found: list[Generated] = []
    gone = 0
    for line in path.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        question = record.get("question")
        if not question:
            continue
        chunk = by_id.get(str(record.get("chunk_id")))
        if chunk is None:
            gone += 1
            continue
        found.append(Generated(chunk, question, str(record.get("style", "")), question))
    return found, gone


async def mine_triplets(
    retriever: Retriever, generated: Sequence[Generated], *, keep_top: int, scope: SearchScope = DOCS_ONLY
) -> Mined:
    """Keep a question if retrieval ranks its own page in the top ``keep_top`` pages; its hard negative is the
    best-ranked chunk of another page in the same search (dense and BM25 fused, as the bot searches)."""
    triplets: list[Triplet] = []
    records: list[dict[str, Any]] = []
    for item in generated:
        question = item.question
        record: dict[str, Any] = {
            "page_id": item.chunk.page_id,
            "chunk_id": item.chunk.chunk_id,
            "style": item.style,
            "question": question,
        }
        if question is None:
            records.append({**record, "kept": False, "why": item.why or "no question in the reply", "raw": item.raw})
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
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = SentenceTransformer(base, device="cpu")
    # The plain loss keeps every text's activations of a step (3 x batch_size texts of up to 256 tokens: the
    # attention maps and dropout masks of 48 texts, 5.3 GB at a step of 16 triplets); the cached one embeds them
    # mini_batch at a time without them, then replays each mini-batch with gradients (2.5 GB, no more CPU).
    loss = (
        CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch)
        if config.mini_batch
        else MultipleNegativesRankingLoss(model)
    )
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


class MemoryWatch:
    """The peak resident memory of this process and of its children, per phase, sampled every ``interval``
    seconds in a thread. ``ru_maxrss`` cannot tell phases apart, misses the engine's worker (a grandchild), and
    a forked child's starts at its parent's size."""

    def __init__(self, interval: float = 0.5) -> None:
        self.peaks: dict[str, dict[str, float]] = {}
        self._phase = ""
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adapt-memory", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def phase(self, name: str) -> None:
        self._phase = name
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        import psutil

        if not self._phase:
            return
        me = psutil.Process()
        children = 0
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                children += child.memory_info().rss
        row = self.peaks.setdefault(self._phase, {"command": 0.0, "children": 0.0})
        row["command"] = max(row["command"], round(me.memory_info().rss / (1 << 20), 1))
        row["children"] = max(row["children"], round(children / (1 << 20), 1))


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


def check_questions(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"--questions {path!r} is not a file (an earlier run's {SYNTHETIC_FILE})")


@contextlib.asynccontextmanager
async def start_generator(settings: LLMSettings) -> AsyncIterator[Generator]:
    async with await VLLMGenerator.start(settings) as engine:
        yield engine


def writer_settings(settings: Settings, config: AdaptConfig) -> LLMSettings:
    """The engine for questions: short replies, sampled (varied; not repeatable: vLLM's per-request seed fails on
    the CPU once a prompt's prefill is split, "CPU Generator does not use offset"), short prompts."""
    return settings.llm.model_copy(
        update={
            "model": config.generator or settings.llm.model,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_model_len": min(settings.llm.max_model_len, 2048),
            # A batch job on a busy CPU: a question may wait behind the others for minutes; no user is waiting.
            "timeout_s": max(settings.llm.timeout_s, WRITER_TIMEOUT_S),
        }
    )


def style_counts(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        row = counts.setdefault(record.get("style") or "-", {"written": 0, "usable": 0, "kept": 0})
        row["written"] += 1
        row["usable"] += record["question"] is not None
        row["kept"] += bool(record["kept"])
    return counts


async def adapt(
    settings: Settings,
    config: AdaptConfig,
    *,
    open_generator: OpenGenerator = start_generator,
    status: Status = logger.info,
    now: datetime | None = None,
) -> AdaptReport:
    """The whole run: pick, write questions (or read an earlier run's), filter and mine, fine-tune, write the
    folder with ``adapt.json``. The engine is shut down before the embedder is loaded."""
    writer = writer_settings(settings, config)
    if config.questions:
        check_questions(config.questions)
    else:
        check_generator(writer.model)
    base = settings.embedding.model
    folder = model_folder(settings.data_dir, base, now or datetime.now(UTC))
    prepare_process_env(settings)
    with MemoryWatch() as memory:
        mined, generated, picked, times, prompts = await _mine(settings, config, writer, open_generator, status, memory)
        engine_start_s, generation_s, filter_s = times
        if not mined.triplets:
            raise ConfigError(
                f"none of the {len(generated)} questions found its own page in the top {config.keep_top}: nothing "
                "to train on (is --generator an instruct model?)"
            )
        status(f"Fine-tuning {base} on {len(mined.triplets)} triplets…")
        memory.phase("training")
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        train = replace(
            config.train,
            query_prefix=prompts[0],  # trained with the prompts it is searched with
            passage_prefix=prompts[1],
            threads=config.train.threads or settings.embedding.threads,
        )
        base_path = resolve_embedding_model(base)
        training = await asyncio.to_thread(train_embedder, base_path, mined.triplets, partial, train)
        memory.sample()
    report = AdaptReport(
        folder=folder,
        base_model=base,
        generator_model="" if config.questions else writer.model,
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
        peak_rss_phases_mb=memory.peaks,
        styles=style_counts(mined.records),
    )
    (partial / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    (partial / SYNTHETIC_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mined.records))
    partial.rename(folder)  # the folder appears whole or not at all
    return report


async def _mine(
    settings: Settings,
    config: AdaptConfig,
    writer: LLMSettings,
    open_generator: OpenGenerator,
    status: Status,
    memory: MemoryWatch,
) -> tuple[Mined, list[Generated], list[DocChunk], tuple[float, float, float], tuple[str, str]]:
    """Pick the sections and write their questions (or read an earlier run's), then filter and mine them; the
    engine is shut down before the embedder is loaded. Also the embedder's query and document prompts."""
    engine_start_s = generation_s = 0.0
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    try:
        await store.require_index()
        chunks = await docs_chunks(store)
        if config.questions:
            generated, gone = earlier_questions(Path(config.questions), chunks)
            picked = list({g.chunk.chunk_id: g.chunk for g in generated}.values())
            status(
                f"Read {len(generated)} questions from {config.questions}"
                + (f" ({gone} on sections no longer indexed, skipped)" if gone else "")
            )
        else:
            picked = pick_chunks(
                chunks,
                per_page=config.per_page,
                max_pages=config.max_pages,
                seed=config.seed,
                min_chars=config.min_chars,
            )
        if not picked:
            raise IndexMissing("the index holds no docs sections: run `python -m indexer` first")
        if not config.questions:
            pages = len({(c.source_id, c.page_id) for c in picked})
            status(f"Writing {len(picked) * config.per_section} questions ({pages} pages) with {writer.model}…")
            memory.phase("generation")
            started = time.perf_counter()
            async with open_generator(writer) as generator:
                engine_start_s = time.perf_counter() - started
                started = time.perf_counter()
                generated = await generate_questions(
                    generator,
                    picked,
                    project=settings.answer.project,
                    per_section=config.per_section,
                    seed=config.seed,
                    concurrency=writer.max_num_seqs,
                    status=status,
                )
                generation_s = time.perf_counter() - started
        status(f"Filtering {len(generated)} questions by retrieval (own page in the top {config.keep_top})…")
        memory.phase("filtering")
        started = time.perf_counter()
        embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache)
        # While a switch of model is re-indexed, the old index answers: its own model embeds the questions.
        queries = AnsweringEmbedder(embedder, settings.embedding, store, cache_dir=settings.embedding_cache)
        prompts = embedder.query_prompt, embedder.document_prompt
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
    return mined, generated, picked, (engine_start_s, generation_s, filter_s), prompts


def summary(report: AdaptReport) -> str:
    t = report.training
    return "\n".join(
        [
            f"Adapted {report.base_model} into {report.folder}",
            f"  sections {report.chunks}, questions {report.generated}, kept {report.kept}, triplets {report.triplets}"
            + (f" (questions of {report.config.questions})" if report.config.questions else ""),
            f"  engine start {report.engine_start_s:.0f}s, generation {report.generation_s:.0f}s, "
            f"filtering {report.filter_s:.0f}s, training {t.seconds:.0f}s ({t.steps} steps, loss {t.first_loss:.3f} "
            f"-> {t.last_loss:.3f})",
            "  peak RSS (MiB, this process + its children, the engine): "
            + ", ".join(
                f"{phase} {row['command']:.0f} + {row['children']:.0f}"
                for phase, row in report.peak_rss_phases_mb.items()
            ),
            "To switch, measure it first (DOCENT_EMBEDDING__MODEL=<folder> python -m bench.cv), then set",
            f"  DOCENT_EMBEDDING__MODEL={report.folder}",
            "and re-index (python -m indexer, or restart the bot: its index runs do it). Every page is embedded again",
            "into a new collection behind the alias; the old index keeps answering, with questions embedded by the",
            "old model, until the run is complete, so answering has no gap.",
        ]
    )
