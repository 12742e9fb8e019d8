"""The dashboard's load time with 100k stored questions (issue 24: under 300 ms a page).

    python -m bench.dashboard [--questions 100000] [--loads 30] [--no-screenshot]

Fills a temporary data dir: 100k questions spread over 90 days (growing, quieter at weekends) on Discord (three
servers and DMs) and Slack (two workspaces and DMs), repeated questions, refusals, private questions, support
channels with hand-offs and solved threads, votes, citations of 300 docs pages, pending community answers and 120
index runs. Then the real ops server serves the dashboard on a loopback port and each page is loaded ``--loads``
times by an HTTP client (the bearer token): median and p95 per page, a table, and bench/results/dashboard.json.
Last, headless Chromium logs in through the form and takes a screenshot of the overview:
bench/results/dashboard-overview.png.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT

RESULTS = ROOT / "bench" / "results"
PAGES = ("/", "/questions", "/gaps", "/sources", "/community", "/index")
GOAL_MS = 300.0
TOKEN = "bench-dashboard-token"
# Where questions come from, and each place's share of them.
SPACES: tuple[tuple[str, int | str | None, float], ...] = (
    ("discord", 880011223344556677, 0.40),
    ("discord", 880011223344556688, 0.15),
    ("discord", 880011223344556699, 0.06),
    ("discord", None, 0.05),
    ("slack", "T01ACME", 0.22),
    ("slack", "T02GLOBEX", 0.09),
    ("slack", None, 0.03),
)
_TOPICS = (
    "a collection",
    "an index",
    "HNSW",
    "IVF_FLAT",
    "a partition",
    "the schema",
    "a dynamic field",
    "BM25",
    "hybrid search",
    "a range search",
    "the consistency level",
    "a replica",
    "the memory limit",
    "a backup",
    "Milvus Lite",
    "the Python SDK",
    "an alias",
    "a scalar filter",
    "a sparse vector",
    "RBAC",
    "TLS",
    "bulk insert",
    "a segment",
    "compaction",
    "the query node",
    "Kubernetes",
    "Docker Compose",
    "an embedding",
)
_ACTIONS = (
    "create",
    "drop",
    "rename",
    "load",
    "release",
    "tune",
    "back up",
    "upgrade",
    "monitor",
    "filter by",
    "speed up",
    "debug",
    "configure",
    "secure",
    "delete from",
    "insert into",
    "search",
    "paginate",
)
_ENDINGS = ("", " in production", " with Python", " on Kubernetes", " after an upgrade", " from the CLI")


def question_pool(rng: random.Random, size: int = 4000) -> list[str]:
    pool = {f"How do I {rng.choice(_ACTIONS)} {rng.choice(_TOPICS)}{rng.choice(_ENDINGS)}?" for _ in range(size * 3)}
    ordered = sorted(pool)
    rng.shuffle(ordered)
    return ordered[:size]


def zipf_index(rng: random.Random, n: int, s: float = 1.1) -> int:
    """An index in [0, n) with Zipf-like popularity: a few questions and pages are asked and cited a lot."""
    return min(n - 1, int(n ** rng.random() ** s) - 1)


def docs_pages(count: int = 300) -> list[tuple[str, str, str]]:
    """(page id, title, url) of the docs pages."""
    pages = []
    for n in range(count):
        topic = _TOPICS[n % len(_TOPICS)]
        slug = f"{topic.replace(' ', '-').lower()}-{n}"
        pages.append((f"{slug}.md", f"{topic.capitalize()} ({n})", f"https://docs.example.org/{slug}"))
    return pages


def fill_feedback(path: Path, questions: int, *, now: float, days: int = 90, seed: int = 0) -> None:
    """``questions`` answers (and their votes and solved threads) written straight into the feedback database,
    whose schema ``FeedbackStore`` made."""
    from rag.feedback import FeedbackStore

    FeedbackStore(path).close()  # the schema, indexes and salt
    rng = random.Random(seed)
    pool = question_pool(rng)
    pages = docs_pages()
    users = [f"{rng.getrandbits(96):024x}" for _ in range(6000)]
    words = "the index collection vector search field query segment node memory partition replica".split()
    weights = [share for _, _, share in SPACES]
    answers: list[tuple[Any, ...]] = []
    votes: list[tuple[Any, ...]] = []
    solved: list[tuple[Any, ...]] = []
    for n in range(questions):
        place = rng.choices(range(len(SPACES)), weights)[0]
        platform, space, _ = SPACES[place]
        # More questions lately (the bot got popular), fewer at weekends.
        while True:
            age = days * DAY_S * (1 - math.sqrt(rng.random()))
            asked_at = now - age
            if time.gmtime(asked_at).tm_wday < 5 or rng.random() < 0.5:
                break
        text = pool[zipf_index(rng, len(pool))]
        if rng.random() < 0.05:
            text = text.lower()
        private = space is None or rng.random() < 0.05
        unasked = space is not None and not private and rng.random() < 0.12
        refused = rng.random() < (0.3 if unasked else 0.14)
        cited = [] if refused else [pages[zipf_index(rng, len(pages), 1.4)] for _ in range(rng.randint(1, 3))]
        sources = json.dumps([{"title": title, "url": url} for _, title, url in dict.fromkeys(cited)])
        answer = "" if refused else " ".join(rng.choice(words) for _ in range(rng.randint(60, 160)))
        latency = None if rng.random() < 0.02 else round(rng.lognormvariate(math.log(2500), 0.5), 1)
        channel = f"C{place}{rng.randint(1, 4)}" if unasked else None  # channel ids are unique across spaces
        thread = f"t{n}" if unasked else None
        answer_id = f"{n:012x}"
        answers.append(
            (answer_id, asked_at, rng.choice(users), text, answer, sources, int(refused), latency, space,
             int(private), platform, channel, thread, int(unasked))
        )  # fmt: skip
        if rng.random() < 0.08:
            votes.append((answer_id, rng.choice(users), int(rng.random() < 0.75), asked_at + 60, space, platform))
        if unasked and not refused and rng.random() < 0.4:
            solved.append((platform, thread, channel, None if space is None else str(space), asked_at + 600))
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO answers (id, asked_at, user_hash, question, answer, sources, refused, latency_ms, guild_id, "
            "private, platform, channel, thread, unasked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            answers,
        )
        db.executemany("INSERT OR IGNORE INTO votes VALUES (?, ?, ?, ?, ?, ?)", votes)
        db.executemany("INSERT OR IGNORE INTO solved VALUES (?, ?, ?, ?, ?)", solved)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


DAY_S = 86_400
