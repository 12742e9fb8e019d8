"""The retrieval benchmark runs from one command and reports every figure the README quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_benchmark_runs_on_a_small_corpus(tmp_path: Path, process_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        (docs / f"page{n}.md").write_text(f"# Page {n}\n\n## Part\n\nText about topic {n}. " * 3)
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.retrieval",
            "--docs",
            str(docs),
            "--scale",
            "3",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["full_index"]["pages"] == 6 and result["unchanged_reindex"]["chunks_written"] == 0
    assert result["latency_3x"]["chunks"] == 3 * result["latency_1x"]["chunks"]
    assert result["raw_encode"]["chunks"] == result["full_index"]["chunks"]
    assert "full index / raw encode" in done.stdout and "p50 / p95 ms" in done.stdout
