"""What a long index run shows: a live bar on a terminal, plain lines with an ETA otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from indexer.local import FolderDocs
from indexer.progress import IndexProgress
from indexer.runner import Indexer
from rag.models import IndexReport
from rag.settings import FolderSource


def report(seen: int, known: int, chunks: int) -> IndexReport:
    return IndexReport(pages_new=seen, pages_known=known, chunks_written=chunks)


def test_plain_lines_every_fifty_pages_with_pages_known_and_an_eta() -> None:
    out = io.StringIO()
    progress = IndexProgress(out, live=False)
    for seen in range(1, 121):
        progress(report(seen, 200, seen * 10))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("  … 50 of 200 pages read, 500 chunks embedded (")
    assert "chunks/s), ETA " in lines[1]


def test_without_a_record_there_is_no_total_and_no_eta() -> None:
    out = io.StringIO()
    progress = IndexProgress(out, live=False)
    progress(report(50, 0, 7))
    assert out.getvalue().startswith("  … 50 pages read, 7 chunks embedded (") and "ETA" not in out.getvalue()


def test_a_terminal_gets_a_live_bar() -> None:
    out = io.StringIO()
    progress = IndexProgress(out, live=True)
    for seen in range(1, 4):
        progress(report(seen, 3, seen * 5))
    progress.close()
    assert "3/3" in out.getvalue() and "15 chunks" in out.getvalue() and "chunks/s" in out.getvalue()


@pytest.mark.integration
async def test_a_run_knows_how_many_pages_the_record_had(tmp_path: Path, embedder, store) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(3):
        (root / f"p{i}.md").write_text(f"# Page {i}\n\nText {i}.\n")
    source = FolderDocs(FolderSource(id="docs", path=root))
    first = await Indexer(embedder, store).run([source])
    second = await Indexer(embedder, store).run([source])
    assert first.pages_known == 0 and second.pages_known == 3
