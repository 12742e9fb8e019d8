"""The command lines exactly as a person runs them: `python -m indexer` then `python -m bot ask`.

Only the test that asks the real engine is ``slow``; the others start no model.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import format_answer
from rag.models import Answer, Citation
from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def cli_env(process_env: dict[str, str]) -> dict[str, str]:
    return process_env


@pytest.mark.slow
@pytest.mark.integration
def test_index_then_ask(tmp_path: Path, cli_env: dict[str, str]) -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present")
    docs = tmp_path / "docs"
    for relative in ["reference/index.md", "reference/metric.md", "userGuide/manage-collections.md"]:
        (docs / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / relative, docs / relative)
    index_args = ["-m", "indexer", "--dir", str(docs), "--base-url", "https://milvus.io/docs/", "--flatten", "--json"]

    first = run(index_args, cli_env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["pages_new"] == 3 and report["pages_failed"] == 0 and report["chunks_written"] > 3
    assert {"pages_changed", "pages_unchanged", "pages_removed", "seconds"} <= set(report)

    second = run(index_args, cli_env)
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert (again["pages_unchanged"], again["chunks_written"]) == (3, 0)

    asked = run(["-m", "bot", "ask", "--json", "What do the parameters for HNSW mean?"], cli_env)
    assert asked.returncode == 0, asked.stderr[-3000:]
    answer = json.loads(asked.stdout.strip().splitlines()[-1])
    assert answer["sources"], answer
    assert any(s["url"].startswith("https://milvus.io/docs/index.md") for s in answer["sources"])
    assert {s["url"] for s in answer["sources"]} <= {r["url"] for r in answer["retrieved"]}

    pretty = run(["-m", "bot", "ask", "What do the parameters for HNSW mean?"], cli_env)
    assert pretty.returncode == 0
    assert "Sources:" in pretty.stdout and "https://milvus.io/docs/index.md" in pretty.stdout
    assert "Loading the embedding model" in pretty.stderr


@pytest.mark.integration
def test_missing_token_is_one_clear_line(cli_env: dict[str, str]) -> None:
    result = run(["-m", "bot"], cli_env, timeout=120)
    assert result.returncode == 2
    assert "DOCENT_DISCORD__TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_indexer_with_no_such_folder_reports_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run(["-m", "indexer", "--dir", str(tmp_path / "missing"), "--json"], cli_env)
    assert result.returncode == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sources_failed"] and "does not exist" in report["sources_failed"][0]["reason"]


def test_a_source_without_url_prints_no_link_line() -> None:
    answer = Answer("q", "It works [1][2].", (Citation(1, "Local page", ""), Citation(2, "Web", "https://x/p")))
    out = format_answer(answer, io.StringIO())
    assert out.splitlines() == [
        "It works [1][2].",
        "",
        "Sources:",
        "  [1] Local page",
        "  [2] Web",
        "      https://x/p",
    ]


def test_engine_start_progress_is_a_live_bar_on_a_terminal_and_lines_elsewhere() -> None:
    import io

    from bot.cli import StatusPrinter
    from rag.starting import Progress, progress_line

    def feed(printer: StatusPrinter) -> None:
        printer("Loading the embedding model…")
        for done in (5.0, 10.0, 15.0):
            printer(Progress(progress_line("m", done, 30.0), done=done, total=30.0))
        printer("Language model ready (31.0s).")

    terminal = io.StringIO()
    feed(StatusPrinter(terminal, live=True))
    shown = terminal.getvalue()
    assert "Starting the language model" in shown and "15.0/30.0" in shown and "Still starting" not in shown
    assert shown.rstrip().endswith("Language model ready (31.0s).")

    log = io.StringIO()
    feed(StatusPrinter(log, live=False))
    assert log.getvalue().splitlines() == [
        "Loading the embedding model…",
        "Still starting the language model m: 5 s so far, about 25 s left…",
        "Still starting the language model m: 10 s so far, about 20 s left…",
        "Still starting the language model m: 15 s so far, about 15 s left…",
        "Language model ready (31.0s).",
    ]


HOSTILE = "\x1b[2K\x1b[1A\r\x9b31m\x1b]8;;https://evil.example\x07\u202e\x7f"  # erase, move up, CSI, link, RTL


def shows_no_control(text: str) -> bool:
    """Nothing a terminal acts on: no C0 (but newline and tab), DEL, C1 or bidirectional override."""
    return not any(
        (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in text
    )


def test_answers_sources_and_status_reach_the_terminal_without_control_sequences() -> None:
    from bot.cli import StatusPrinter

    answer = Answer("q", f"Set it{HOSTILE} like so [1].", (Citation(1, f"Guide{HOSTILE}", f"https://x/p{HOSTILE}"),))
    out = format_answer(answer, io.StringIO())
    assert shows_no_control(out) and "Set it" in out and "like so [1]." in out and "Guide" in out

    status = io.StringIO()
    StatusPrinter(status, live=False)(f"cannot read {HOSTILE}/data")
    assert shows_no_control(status.getvalue()) and "/data" in status.getvalue()
