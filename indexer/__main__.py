"""Index the configured docs sources (or one folder or site) into Milvus.

python -m indexer                      # every configured source, once
python -m indexer --dir PATH           # one local folder
python -m indexer --url URL            # one website
python -m indexer --watch              # repeat on the configured schedule
python -m indexer --json               # last line: the run report as JSON
python -m indexer --no-wait            # exit at once if another indexer is running
python -m indexer adapt [--per-page 2] [--per-section 1] [--max-pages N] [--generator PATH] [--keep-top 5]
                        [--epochs 1] [--max-steps N] [--batch-size 16] [--questions synthetic.jsonl]
                                       # fine-tune the embedder on the indexed docs

Only one indexer runs at a time across processes (a lock on <data_dir>/indexer.lock); a second one waits for it
unless --no-wait is given.

Exit codes: 0 done; 1 every source failed; 2 bad settings or no sources; 3 another indexer is running (--no-wait).
``adapt`` (indexer/adapt.py) writes a new model folder under <data_dir>/embedders/ and changes no setting: 0 done;
1 no index yet; 2 bad settings or no usable question.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from indexer.adapt import AdaptConfig, TrainConfig, adapt, summary
from indexer.build import folder_source_for, http_session, make_indexer, make_source
from indexer.lock import IndexerBusy
from indexer.progress import IndexProgress
from rag.entry import load_settings, run_command
from rag.errors import ConfigError
from rag.logs import configure_logging
from rag.models import IndexReport
from rag.runtime import open_core
from rag.settings import FolderSource, Settings, WebsiteSource

logger = logging.getLogger("indexer")
BUSY = 3  # exit code: another indexer holds the lock and --no-wait was given


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m indexer", description="Index docs into Milvus.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--dir", type=Path, help="index one local folder of markdown/HTML")
    target.add_argument("--url", help="index one website from this start URL")
    target.add_argument("--source", help="index only the configured source with this id")
    parser.add_argument("--base-url", default="", help="with --dir: URL prefix the pages are published under")
    parser.add_argument("--flatten", action="store_true", help="with --base-url: publish a/b/x.md as <base-url>x.md")
    parser.add_argument(
        "--strip-suffix", action="store_true", help="with --base-url: publish a/x.md as <base-url>a/x (MkDocs sites)"
    )
    parser.add_argument("--watch", action="store_true", help="repeat on the configured schedule")
    parser.add_argument("--json", action="store_true", help="print the run report as JSON on the last line")
    parser.add_argument(
        "--no-wait", action="store_true", help=f"exit (code {BUSY}) instead of waiting if another indexer is running"
    )
    return parser.parse_args(argv)


def choose_sources(args: argparse.Namespace, settings: Settings) -> list[FolderSource | WebsiteSource]:
    if args.dir:
        return [folder_source_for(args.dir, settings.indexer, args.base_url, args.flatten, args.strip_suffix)]
    if args.url:
        return [WebsiteSource(start_url=args.url)]
    configured = settings.indexer.sources
    if args.source:
        configured = [s for s in configured if s.source_id() == args.source]
        if not configured:
            raise ConfigError(f"no configured source has id {args.source!r}")
    return list(configured)


def report_line(report: IndexReport) -> str:
    data = report.as_dict()
    data["failures"] = report.failures[:50]
    return json.dumps(data)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    configs = choose_sources(args, settings)
    if not configs:
        print("No sources configured: pass --dir or --url, or add sources to config/sources.toml.", file=sys.stderr)
        return 2
    progress = IndexProgress(live=False if args.json else None)  # a live bar on a terminal, plain lines otherwise

    status = (lambda _: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    async with open_core(settings, with_llm=False, status=status) as core, http_session(settings.indexer) as session:
        indexer = make_indexer(settings, core.embedder, core.store)
        while True:
            sources = [make_source(config, settings.indexer, session) for config in configs]
            try:
                try:
                    report = await indexer.run(sources, progress=progress, wait=not args.no_wait)
                finally:
                    progress.close()
            except IndexerBusy:
                print(f"Another indexer is running (it holds {settings.data_dir / 'indexer.lock'}).", file=sys.stderr)
                if not args.watch or settings.indexer.schedule_minutes <= 0:
                    return BUSY
                await asyncio.sleep(settings.indexer.schedule_minutes * 60)  # --watch: skip this round
                continue
            print(f"Indexed: {report.summary()}", file=sys.stderr)
            for failure in report.failures[:20]:
                print(f"  failed: {failure['page']}: {failure['reason']}", file=sys.stderr)
            for failure in report.sources_failed:
                print(f"  source failed: {failure['source']}: {failure['reason']}", file=sys.stderr)
            if args.json:
                print(report_line(report), flush=True)
            if not args.watch or settings.indexer.schedule_minutes <= 0:
                return 1 if report.sources_failed and len(report.sources_failed) == len(sources) else 0
            await asyncio.sleep(settings.indexer.schedule_minutes * 60)


def parse_adapt_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m indexer adapt",
        description="Fine-tune the embedder on synthetic questions about the indexed docs (a new model folder).",
    )
    parser.add_argument("--per-page", type=int, default=2, help="sections of each page asked about (default 2)")
    parser.add_argument(
        "--per-section", type=int, default=1, help="questions per section, each in another style (default 1)"
    )
    parser.add_argument("--max-pages", type=int, default=0, help="pages sampled at most (default: all)")
    parser.add_argument("--generator", default="", help="model folder of the question writer (default: llm.model)")
    parser.add_argument(
        "--keep-top", type=int, default=5, help="keep a question if its page is in this many retrieved (default 5)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="passes over the triplets (default 1)")
    parser.add_argument("--max-steps", type=int, default=0, help="training steps at most (default: all)")
    parser.add_argument("--batch-size", type=int, default=16, help="triplets per step (default 16)")
    parser.add_argument("--learning-rate", type=float, default=2e-5, help="AdamW learning rate (default 2e-5)")
    parser.add_argument(
        "--mini-batch",
        type=int,
        default=8,
        help="compute a step's gradients this many texts at a time: the same loss in bounded memory (default 8; "
        "0: all at once, about twice the memory)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling and shuffling seed (default 0)")
    parser.add_argument(
        "--questions",
        default="",
        help="train on an earlier run's synthetic.jsonl instead of writing questions (no --generator needed)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on the last line")
    args = parser.parse_args(argv)
    for name in ("per_page", "per_section", "keep_top", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.mini_batch < 0:
        parser.error("--mini-batch must be 0 (off) or more")
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 (the other triplets are the in-batch negatives)")
    return args


def adapt_config(args: argparse.Namespace) -> AdaptConfig:
    return AdaptConfig(
        per_page=args.per_page,
        per_section=args.per_section,
        max_pages=args.max_pages,
        questions=args.questions,
        keep_top=args.keep_top,
        generator=args.generator,
        seed=args.seed,
        train=TrainConfig(
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            mini_batch=args.mini_batch,
            seed=args.seed,
        ),
    )


async def run_adapt(args: argparse.Namespace, settings: Settings) -> int:
    report = await adapt(settings, adapt_config(args), status=lambda msg: print(msg, file=sys.stderr))
    print(summary(report), file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict()), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["adapt"]:
        adapt_args = parse_adapt_args(arguments[1:])
        settings = load_settings()
        if settings is None:
            return 2
        configure_logging("WARNING" if adapt_args.json else settings.log_level)
        return run_command(run_adapt(adapt_args, settings))
    args = parse_args(argv)
    settings = load_settings()
    if settings is None:
        return 2
    configure_logging("WARNING" if args.json else settings.log_level)
    return run_command(run(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
