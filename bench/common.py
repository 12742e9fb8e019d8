"""What the benchmarks share: an isolated settings tree with the tiny model, and a slice of the shared corpus."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "milvus-docs"
DEVSET = ROOT / "bench" / "devset"


def bench_settings(work: Path, **overrides: Any) -> Any:
    """Settings in ``work``: Milvus Lite, the offline MiniLM on one thread, the tiny generated model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.settings import Settings, resolve_embedding_model
    from rag.tiny_model import write_tiny_model

    base: dict[str, Any] = {
        "data_dir": work / "data",
        "milvus": {"uri": str(work / "milvus.db")},
        "embedding": {"model": resolve_embedding_model("packaged:all-MiniLM-L6-v2"), "threads": 1},
        "llm": {"model": str(write_tiny_model(work / "tiny")), "max_tokens": 64, "kv_cache_gb": 1},
        "indexer": {"sources": [], "schedule_minutes": 0},
        "log_level": "ERROR",
    }
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return Settings(**base)


def corpus_source(work: Path, pages: int) -> Any:
    """The shared corpus as a folder source; with ``pages``, only its first N pages (copied into ``work``)."""
    from rag.settings import FolderSource

    source = FolderSource(id="milvus-docs", path=CORPUS, base_url="https://milvus.io/docs/", flatten=True)
    if not pages:
        return source
    subset = work / "docs"
    for path in sorted(CORPUS.rglob("*.md"))[:pages]:
        target = subset / path.relative_to(CORPUS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return source.model_copy(update={"path": subset})


def write_results(out: Path, results: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


def run_evaluation(
    evaluate: Callable[[argparse.Namespace, Any], Coroutine[Any, Any, int]], args: argparse.Namespace
) -> int:
    """An evaluation command's tail: settings from the usual DOCENT_ environment, quiet logs, exit codes."""
    from rag.entry import load_settings, run_command
    from rag.logs import configure_logging

    settings = load_settings()
    if settings is None:
        return 2
    configure_logging("WARNING")
    return run_command(evaluate(args, settings))
