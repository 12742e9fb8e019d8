"""The ``python -m bench.eval`` command line: one docs folder scored, or the cross-validated report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = {
    "guide/install.md": "# Install\n\nRun Milvus with Docker Compose: download the compose file, then "
    "`docker compose up -d`.\n",
    "guide/index.md": "# Indexes\n\n## HNSW\n\nHNSW builds a graph. `M` is the maximum degree and "
    "`efConstruction` the build-time search range.\n",
    "guide/backup.md": "# Backup\n\nUse milvus-backup to copy collections to object storage and restore them.\n",
}


@pytest.mark.slow
@pytest.mark.integration
def test_eval_cli_reports_ranks_and_ends_with_a_json_line(tmp_path: Path, process_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    questions = tmp_path / "q.jsonl"
    rows = [
        {"question": "how do i start it with docker", "gold_sources": ["guide/install.md"], "style": "howto"},
        {"question": "hnsw M meaning?", "gold_sources": ["guide/index.md"], "extra": "ignored"},
        {
            "question": "and how do I restore it?",
            "history": ["backing up collections"],
            "gold_sources": ["guide/backup.md"],
        },
        {"question": "best pizza in naples", "gold_sources": []},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    command = [sys.executable, "-m", "bench.eval", "--docs", str(docs), "--questions", str(questions)]

    first = subprocess.run(
        [*command, "--baseline", "reference", "--ablations", "--calibrate"],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["questions"] == 3 and result["out_of_scope"] == 1
    assert result["recall@5"] == 1.0 and result["recall@1"] == 1.0
    assert {"mrr@5", "p50_ms", "p95_ms", "false_refusals", "correct_refusals", "calibration"} <= set(result)
    names = [v["name"] for v in result["variants"]]
    assert names[0] == "reference recipe" and "dense, chunk order" in names
    assert "   1 " in first.stdout and "best pizza" in first.stdout
    assert "Indexing" in first.stderr

    again = subprocess.run([*command, "--k", "1"], env=process_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Indexing" not in again.stderr, "the index is cached by corpus content and settings"
    assert json.loads(again.stdout.strip().splitlines()[-1])["recall@1"] == 1.0


def test_without_docs_bench_eval_runs_the_cross_validated_real_question_report(capsys) -> None:
    from bench.eval import main

    with pytest.raises(SystemExit) as stopped:
        main(["--sets", "no-such-set"])  # bench.cv's own argument check answers
    assert stopped.value.code == 2
    assert "unknown set(s): no-such-set" in capsys.readouterr().err


def test_bench_cv_runs_the_same_report(capsys) -> None:
    from bench.cv import main

    with pytest.raises(SystemExit) as stopped:
        main(["--sets", "no-such-set"])
    assert stopped.value.code == 2
    assert "unknown set(s): no-such-set" in capsys.readouterr().err
