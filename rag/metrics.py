"""Prometheus metrics for one Docent process, in its own registry (no globals), plus what /healthz reports."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rag.errors import BadQuestion, DocentError, Overloaded, StartingUp
from rag.models import Answer, IndexReport
from rag.resolution import STATES, Resolution

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
# The busiest (platform, space, channel)s get a series of their own; the rest are summed into their space's
# "other" channel, or, for a space with no series of its own, into the platform's "other" space. So however many
# servers, workspaces and channels there are, the resolution gauge has at most 2 x MAX_SERIES + 2 label sets per
# state.
MAX_SERIES = 50
DIRECT = "direct"  # the space label of direct messages
NO_CHANNEL = "none"  # the channel label of questions with no channel (direct messages, rows before channels)
OTHER = "other"


@dataclass
class LastIndexRun:
    finished_at: float
    ok: bool
    summary: str


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.questions = Counter(
            "docent_questions",
            "Questions by outcome (answered, refused, bad_question, busy, starting, error).",
            ["outcome"],
            registry=r,
        )
        self.answer_seconds = Histogram(
            "docent_answer_seconds", "Question to final answer.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.retrieval_seconds = Histogram(
            "docent_retrieval_seconds", "Embedding plus search per question.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.feedback = Counter("docent_feedback", "Votes on answers.", ["vote"], registry=r)
        self.index_chunks = Gauge("docent_index_chunks", "Chunks in the index after the last run.", registry=r)
        self.index_runs = Counter(
            "docent_index_runs", "Index runs by result (ok, partial, failed).", ["result"], registry=r
        )
        self.index_last_run = Gauge("docent_index_last_run_timestamp_seconds", "End of the last index run.", registry=r)
        self.index_last_ok = Gauge("docent_index_last_run_ok", "1 if the last index run had no failures.", registry=r)
        self.index_last_seconds = Gauge("docent_index_last_run_seconds", "Duration of the last index run.", registry=r)
        self.index_pages = Gauge(
            "docent_index_last_run_pages", "Pages of the last run by state.", ["state"], registry=r
        )
        self.support = Counter(
            "docent_support",
            "Support-channel questions nobody asked Docent, by platform and outcome (answered, handed_off, solved).",
            ["platform", "outcome"],
            registry=r,
        )
        self.resolution_questions = Gauge(
            "docent_resolution_questions",
            "Questions by what became of them (state: resolved, handed_off, unresolved; see rag.resolution), per "
            f"platform, space and channel, read from the feedback store at each scrape. Beyond the {MAX_SERIES} "
            f"busiest channels, channels are summed as '{OTHER}'; space '{DIRECT}': direct messages.",
            ["platform", "space", "channel", "state"],
            registry=r,
        )
        self.last_index: LastIndexRun | None = None

    def answered(self, answer: Answer, seconds: float) -> None:
        self.questions.labels("refused" if answer.refused else "answered").inc()
        self.answer_seconds.observe(seconds)
        retrieval_ms = answer.timings_ms.get("embed_ms", 0.0) + answer.timings_ms.get("search_ms", 0.0)
        self.retrieval_seconds.observe(retrieval_ms / 1000)

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, BadQuestion):
            outcome = "bad_question"
        elif isinstance(exc, Overloaded):
            outcome = "busy"
        elif isinstance(exc, StartingUp):
            outcome = "starting"
        else:
            outcome = "error"
        self.questions.labels(outcome).inc()

    def vote(self, helpful: bool) -> None:
        self.feedback.labels("up" if helpful else "down").inc()

    def index_run(self, report: IndexReport, chunks: int | None) -> None:
        ok = not report.pages_failed and not report.sources_failed
        result = "ok" if ok else ("failed" if report.sources_failed and not report.pages_seen else "partial")
        self.index_runs.labels(result).inc()
        self.index_last_run.set(time.time())
        self.index_last_ok.set(1 if ok else 0)
        self.index_last_seconds.set(report.seconds)
        for state in ("new", "changed", "unchanged", "removed", "failed", "repaired"):
            self.index_pages.labels(state).set(getattr(report, f"pages_{state}"))
        if chunks is not None:
            self.index_chunks.set(chunks)
        self.last_index = LastIndexRun(time.time(), ok, report.summary())

    def index_failed(self, exc: DocentError) -> None:
        self.index_runs.labels("failed").inc()
        self.index_last_run.set(time.time())
        self.index_last_ok.set(0)
        self.last_index = LastIndexRun(time.time(), False, f"failed: {exc}")

    def resolution(self, rows: Sequence[Resolution]) -> None:
        """Set the resolution gauge to ``rows`` (busiest first, as the store gives them), within ``MAX_SERIES``."""
        counts: dict[tuple[str, str, str], list[int]] = {}
        spaces: set[tuple[str, str]] = set()
        for index, row in enumerate(rows):
            space = DIRECT if row.space is None else str(row.space)
            channel = row.channel or NO_CHANNEL
            if index < MAX_SERIES:
                spaces.add((row.platform, space))
            elif (row.platform, space) in spaces:
                channel = OTHER
            else:
                space, channel = OTHER, OTHER
            summed = counts.setdefault((row.platform, space, channel), [0, 0, 0])
            for i, value in enumerate((row.resolved, row.handed_off, row.unresolved)):
                summed[i] += value
        self.resolution_questions.clear()
        for (platform, space, channel), values in counts.items():
            for state, value in zip(STATES, values, strict=True):
                self.resolution_questions.labels(platform, space, channel, state).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
