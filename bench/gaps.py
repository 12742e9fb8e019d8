"""The gap report (``rag.gaps``) on the dev set's unanswerable questions, as a maintainer would read it.

    python -m bench.gaps [--distance 0.75] [--pages 0] [--json OUT]

In a temporary folder (removed after): the Milvus docs corpus (``bench.common.CORPUS``, its FAQ pages left out: they
are reserved for evaluation) is indexed with the configured (``DOCENT_*``) embedder into Milvus Lite; each question of
``bench/devset/out_of_scope.jsonl`` is retrieved as the bot would (its confidence is the retriever's) and recorded in
a fresh feedback database as a refused question in one server, one every 11 hours back from now, so the report has
a this-week and a last-week; then the gap report of that server is printed (and written as JSON with ``--json``).
``--pages N`` indexes only the first N pages (a quick look); 0, the default, indexes all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CORPUS, DEVSET

QUESTIONS = DEVSET / "out_of_scope.jsonl"
# The corpus's FAQ pages (any page whose path names "faq"): reserved for the held-out evaluation, never indexed here.
RESERVED = ["*faq*", "*FAQ*", "*Faq*"]
SERVER = 1
SPACING_S = 11 * 3600.0


def read_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reserved(relative: str) -> bool:
    """Whether a corpus path is one of its FAQ pages (never indexed here)."""
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in RESERVED)


def docs_source(work: Path, pages: int = 0) -> Any:
    """The corpus as a folder source, its FAQ pages excluded; with ``pages``, its first N other pages (copied)."""
    from rag.settings import FolderSource

    docs = CORPUS
    if pages:
        docs = work / "docs"
        for path in sorted(p for p in CORPUS.rglob("*.md") if not reserved(p.relative_to(CORPUS).as_posix()))[:pages]:
            target = docs / path.relative_to(CORPUS)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return FolderSource(
        id="milvus-docs",
        path=docs,
        base_url="https://milvus.io/docs/",
        flatten=True,
        strip_suffix=True,
        exclude=RESERVED,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from indexer.build import make_indexer
    from indexer.local import FolderDocs
    from rag.embedder import SentenceTransformerEmbedder
    from rag.feedback import FeedbackStore, View
    from rag.gaps import GapFinder
    from rag.models import Answer
    from rag.retrieval import Retriever
    from rag.settings import Settings, prepare_process_env
    from rag.store import MilvusStore

    work = Path(tempfile.mkdtemp(prefix="docent-bench-gaps-"))
    settings = Settings(data_dir=work, milvus={"uri": str(work / "milvus.db")}, indexer={"sources": []})
    if args.distance is not None:
        settings = settings.model_copy(
            update={"gaps": settings.gaps.model_copy(update={"cluster_distance": args.distance})}
        )
    prepare_process_env(settings)
    source = docs_source(work, args.pages)
    embedder = SentenceTransformerEmbedder(settings.embedding, settings.embedding_cache)
    store = MilvusStore(settings.milvus_uri, settings.milvus)
    now = time.time()
    clock = [now]
    feedback = FeedbackStore(work / "feedback.sqlite3", clock=lambda: clock[0])
    try:
        print(f"indexing {source.path} (FAQ pages left out)…", file=sys.stderr)
        indexed = await make_indexer(settings, embedder, store).run([FolderDocs(source)])
        print(f"  {indexed.summary()}", file=sys.stderr)
        retriever = Retriever(embedder, store, settings.retrieval, settings.tuning)
        questions = read_questions()
        for number, item in enumerate(questions):
            retrieval = await retriever.retrieve(item["question"])
            clock[0] = now - number * SPACING_S
            answer = Answer(
                item["question"], "refused", (), True, (), f"q{number}", {}, confidence=retrieval.confidence
            )
            await feedback.record_answer(answer, f"asker{number}", guild_id=SERVER)
        clock[0] = now
        finder = GapFinder(feedback, embedder, settings.gaps, pages=store, clock=lambda: now)
        report = await finder.report(View.of_space("discord", SERVER))
    finally:
        feedback.close()
        await store.close()
        embedder.close()
        shutil.rmtree(work, ignore_errors=True)
    styles = {item["question"]: item["style"] for item in read_questions()}
    print(f"Gap report of {len(styles)} unanswerable dev-set questions ({QUESTIONS.name}):\n")
    print(report.as_text())
    print("\nThe dev set's own labels (style) of the questions shown, for comparison:")
    for number, cluster in enumerate(report.clusters, start=1):
        print(f"  {number}. {', '.join(styles.get(q, '?') for q in cluster.representatives)}")
    return report.as_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gaps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--distance", type=float, help="gaps.cluster_distance to cluster at (default: the setting)")
    parser.add_argument("--pages", type=int, default=0, help="index only the first N docs pages (0: all)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    from rag.logs import configure_logging

    configure_logging("WARNING")
    result = asyncio.run(run(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
