"""How ``python -m indexer`` shows a long run: a live bar on a terminal (tqdm: pages read of pages known, chunks
embedded, embed rate, ETA), plain periodic lines when the output is a file or a pipe. Under ``--json`` it stays
quiet on stdout; the lines go to stderr either way."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rag.models import IndexReport

LINE_EVERY_PAGES = 50


class IndexProgress:
    def __init__(self, stream: TextIO = sys.stderr, *, live: bool | None = None) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._last_line = 0
        self._bar: Any = None

    def __call__(self, report: IndexReport) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = report.chunks_written / elapsed
        if self._live:
            self._show_bar(report, rate)
        elif report.pages_seen - self._last_line >= LINE_EVERY_PAGES:
            self._last_line = report.pages_seen
            print("  … " + line(report, rate, elapsed), file=self._stream, flush=True)

    def _show_bar(self, report: IndexReport, rate: float) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=report.pages_known or None, unit="page", file=self._stream, dynamic_ncols=True)
        if report.pages_known and report.pages_known != self._bar.total:
            self._bar.total = max(report.pages_known, report.pages_seen)
        self._bar.update(report.pages_seen - self._bar.n)
        self._bar.set_postfix_str(f"{report.chunks_written} chunks, {rate:.1f} chunks/s", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def line(report: IndexReport, rate: float, elapsed: float) -> str:
    """``120 of 265 pages read, 2,310 chunks embedded (45.2 chunks/s), ETA 1m 40s``."""
    known = max(report.pages_known, report.pages_seen)
    of = f" of {known}" if report.pages_known else ""
    text = f"{report.pages_seen}{of} pages read, {report.chunks_written:,} chunks embedded ({rate:.1f} chunks/s)"
    if report.pages_known and report.pages_seen:
        left = elapsed / report.pages_seen * (known - report.pages_seen)
        text += f", ETA {int(left // 60)}m {int(left % 60):02d}s"
    return text
