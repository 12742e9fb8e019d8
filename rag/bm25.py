"""BM25 in the bot's own process, for Milvus Lite.

Lite's full-text search is a pure-Python loop over posting lists, plus a pass over every primary key of the
collection per search: about 120 ms p95 a question at 43k chunks, three times its vector search
(``bench.perf`` retrieval at 10x). The same scoring over numpy arrays takes about a millisecond. A Milvus server
runs BM25 in C++ and keeps it; this module is used only for Lite, where the writer and the searcher are one process
by construction, so the index here sees every write.

The index is built from the collection on the first search and then follows the store's writes (upserts and the
deletes by page); Milvus stays the one durable copy. Scores follow Lite's: BM25 with k1 1.5 and b 0.75 over the
``\\w+`` lowercased terms of the text (``rag.lexical`` has already stemmed it), with statistics over the whole
collection rather than per segment.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.scope import EVERYTHING, SearchScope

_TERM = re.compile(r"\w+", re.UNICODE)
# Writes arrive a batch at a time while an index run goes on; searches meanwhile see the arrays of up to this many
# seconds ago (deleted rows are masked at once), rather than a rebuild per search.
_REBUILD_EVERY_S = 1.0


@dataclass(frozen=True)
class Row:
    """What the index keeps of a chunk: its key, what deletes and filters match, and its lexical text."""

    pk: str
    source_id: str
    page_key: str
    ordinal: int
    text: str


@dataclass(frozen=True)
class _Postings:
    """Term-major arrays: the rows holding term t are ``docs[starts[t]:starts[t + 1]]``, with their BM25 weights."""

    starts: np.ndarray
    docs: np.ndarray
    weights: np.ndarray
    idf: np.ndarray
    slots: int
    average: float  # mean row length, in terms
    rare_idf: float  # the idf of a term no row held at build time: for rows written since


class LocalBM25:
    """One field's BM25 index. Thread-safe: searches run on Milvus' worker threads while the indexer writes."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self._k1, self._b = k1, b
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._slot_of: dict[str, int] = {}
        self._rows: list[Row | None] = []
        self._terms: list[tuple[np.ndarray, np.ndarray]] = []
        self._by_page: dict[str, set[int]] = {}
        self._alive = np.zeros(0, dtype=bool)
        self._source_ids: dict[str, int] = {}
        self._sources = np.zeros(0, dtype=np.int32)
        self._postings: _Postings | None = None
        self._built_at = 0.0
        self._dirty = False

    def __len__(self) -> int:
        return len(self._slot_of)

    def put(self, rows: Iterable[Row]) -> None:
        """Add rows, replacing any with the same key (an upsert)."""
        with self._lock:
            for row in rows:
                self._drop(self._slot_of.get(row.pk))
                slot = len(self._rows)
                self._grow(slot + 1)
                counts = Counter(_TERM.findall(row.text.lower()))
                ids = np.fromiter((self._vocab.setdefault(t, len(self._vocab)) for t in counts), np.int32, len(counts))
                self._terms.append((ids, np.fromiter(counts.values(), np.float32, len(counts))))
                self._rows.append(row)
                self._slot_of[row.pk] = slot
                self._by_page.setdefault(row.page_key, set()).add(slot)
                self._alive[slot] = True
                self._sources[slot] = self._source_ids.setdefault(row.source_id, len(self._source_ids))
            self._dirty = True

    def delete_pages(self, page_keys: Iterable[str], *, source_id: str | None = None, from_ordinal: int = 0) -> None:
        """Drop the rows of these pages (from ``from_ordinal`` on), as the store's deletes by page do."""
        with self._lock:
            for key in page_keys:
                for slot in list(self._by_page.get(key, ())):
                    row = self._rows[slot]
                    if row is not None and row.ordinal >= from_ordinal and source_id in (None, row.source_id):
                        self._drop(slot)
            self._dirty = True

    def search(self, text: str, limit: int, scope: SearchScope = EVERYTHING) -> list[str]:
        """Keys of the best ``limit`` rows for ``text`` by BM25, best first; rows sharing no term are left out."""
        query = Counter(_TERM.findall(text.lower()))
        with self._lock:  # about a millisecond; writes wait that long at most
            if self._postings is None or (self._dirty and time.monotonic() - self._built_at >= _REBUILD_EVERY_S):
                self._compact()
                self._postings = self._build()
                self._built_at = time.monotonic()
                self._dirty = False
            postings, slots = self._postings, len(self._rows)
            terms = [(self._vocab[term], count) for term, count in query.items() if term in self._vocab]
            scores = np.zeros(slots, dtype=np.float32)
            for t, count in terms:
                if t < len(postings.idf):
                    start, end = postings.starts[t], postings.starts[t + 1]
                    scores[postings.docs[start:end]] += postings.idf[t] * count * postings.weights[start:end]
            for slot in range(postings.slots, slots):  # rows written since the arrays were built
                if self._alive[slot]:
                    scores[slot] = self._score(slot, terms, postings)
            keep = self._alive[:slots].copy()
            if scope != EVERYTHING:
                wanted = [number for source, number in self._source_ids.items() if scope.admits(source)]
                keep &= np.isin(self._sources[:slots], wanted)
            scores[~keep] = 0.0
            found = int(np.count_nonzero(scores))
            if not found or limit <= 0:
                return []
            k = min(limit, found)
            best = np.argpartition(-scores, k - 1)[:k]
            best = best[np.lexsort((best, -scores[best]))]  # ties: the earlier row, as Lite
            return [row.pk for row in (self._rows[int(i)] for i in best) if row is not None]

    def _score(self, slot: int, terms: list[tuple[int, int]], postings: _Postings) -> float:
        """One row's BM25, with the statistics of the last build."""
        ids, tfs = self._terms[slot]
        length, k1, b = float(tfs.sum()), self._k1, self._b
        score = 0.0
        for t, count in terms:
            found = np.flatnonzero(ids == t)
            if found.size:
                tf = float(tfs[found[0]])
                idf = float(postings.idf[t]) if t < len(postings.idf) else postings.rare_idf
                score += idf * count * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * length / postings.average))
        return score

    def _compact(self) -> None:
        """Renumber the live rows once replaced and deleted ones outnumber them (a long-running bot re-indexes)."""
        live = [slot for slot, row in enumerate(self._rows) if row is not None]
        if len(self._rows) - len(live) <= max(len(live), 1024):
            return
        rows = [self._rows[slot] for slot in live]
        self._terms = [self._terms[slot] for slot in live]
        self._sources = self._sources[live].astype(np.int32)
        self._rows = rows
        self._alive = np.ones(len(rows), dtype=bool)
        self._slot_of, self._by_page = {}, {}
        for slot, row in enumerate(rows):
            assert row is not None
            self._slot_of[row.pk] = slot
            self._by_page.setdefault(row.page_key, set()).add(slot)

    def _build(self) -> _Postings:
        """BM25 weights of every live row, grouped by term (O(total terms), numpy)."""
        slots = np.flatnonzero(self._alive[: len(self._rows)])
        vocabulary = len(self._vocab)
        n = float(len(slots))
        rare_idf = math.log((n + 0.5) / 1.5 + 1.0)
        if not len(slots):  # no statistics: every row written from now on is scored as new
            empty = np.zeros(0, np.int64)
            return _Postings(
                empty, empty, np.zeros(0, np.float32), np.zeros(0, np.float32), len(self._rows), 1.0, rare_idf
            )
        pairs = [self._terms[s] for s in slots]
        lengths = np.fromiter((len(ids) for ids, _ in pairs), np.int64, len(pairs))
        docs = np.repeat(slots, lengths)
        terms = np.concatenate([ids for ids, _ in pairs])
        tfs = np.concatenate([tf for _, tf in pairs])
        doc_len = np.zeros(len(self._rows), dtype=np.float32)
        doc_len[slots] = np.fromiter((float(tf.sum()) for _, tf in pairs), np.float32, len(pairs))
        average = float(doc_len[slots].mean()) or 1.0
        order = np.argsort(terms, kind="stable")
        docs, terms, tfs = docs[order], terms[order], tfs[order]
        df = np.bincount(terms, minlength=vocabulary).astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        idf = np.log((n - df + 0.5) / (df + 0.5) + 1.0).astype(np.float32)
        k1, b = self._k1, self._b
        weights = tfs * (k1 + 1.0) / (tfs + k1 * (1.0 - b + b * doc_len[docs] / average))
        return _Postings(starts, docs, weights.astype(np.float32), idf, len(self._rows), average, rare_idf)

    def _drop(self, slot: int | None) -> None:
        if slot is None or self._rows[slot] is None:
            return
        row = self._rows[slot]
        assert row is not None
        self._rows[slot] = None
        self._terms[slot] = (np.zeros(0, np.int32), np.zeros(0, np.float32))
        self._alive[slot] = False
        self._slot_of.pop(row.pk, None)
        page = self._by_page.get(row.page_key)
        if page is not None:
            page.discard(slot)
            if not page:
                del self._by_page[row.page_key]

    def _grow(self, size: int) -> None:
        if size > len(self._alive):
            capacity = max(size, 2 * len(self._alive), 1024)
            self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._alive), bool)])
            self._sources = np.concatenate([self._sources, np.zeros(capacity - len(self._sources), np.int32)])


def fuse(ranked: Sequence[Sequence[str]], k: int, limit: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion as Milvus' RRFRanker: each key scores the sum of 1/(k + rank), rank from 1; ties go
    to the smaller key, as Milvus' sort operator breaks them."""
    scores: dict[str, float] = {}
    for keys in ranked:
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
