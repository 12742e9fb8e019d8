"""``make bench`` runs from one command and prints one table with a baseline and a ratio for each item."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_perf_bench_prints_the_table_on_a_small_corpus(tmp_path: Path, process_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        (docs / f"page{n}.md").write_text(f"# Page {n}\n\n## Part\n\nText about topic {n} and its index. " * 3)
    out = tmp_path / "perf.json"
    options = ["--scale", "2", "--encode-sample", "20", "--out", str(out), "--backends", "torch,openvino"]
    options += ["--index-types", "FLAT,HNSW"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.perf", "--docs", str(docs), "--only", "encoders,retrieval", *options],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    encoders = result["encoders"]
    assert encoders["torch"]["speedup"] == 1.0
    assert encoders["openvino"]["cosine_to_torch_min"] > 0.999
    retrieval = result["retrieval"]
    assert retrieval["latency_2x"]["chunks"] == 2 * retrieval["latency_1x"]["chunks"]
    assert retrieval["latency_2x"]["recall_at_5_vs_exact"] == 1.0  # FLAT against itself
    assert "latency_2x_hnsw" in retrieval
    for line in ("encode chunks/s openvino", "query embed p50 ms (openvino)", "retrieval p95 ms 2x HNSW"):
        assert line in done.stdout
    assert "baseline" in done.stdout and "ratio" in done.stdout
