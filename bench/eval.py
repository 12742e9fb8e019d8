"""Retrieval evaluation: index a docs folder with the configured pipeline, then score questions by page rank.

python -m bench.eval [bench.cv options]       real questions, every technique, 5-fold cross-validated (bench.cv)
python -m bench.eval --docs DIR --questions FILE.jsonl [--questions MORE.jsonl] [--k 5]
                   [--baseline reference] [--ablations] [--calibrate] [--split dev] [--json-out PATH]

Each JSONL line is {"question": str, "gold_sources": [paths relative to DIR]}, optionally "history" (earlier
questions of the conversation), "style" and "split". A question is found at rank r when the r-th distinct page
retrieved is one of its gold pages. Questions with no gold pages are out of scope: they measure refusals.
The last line printed is one JSON object with the metrics. Settings come from the usual DOCENT_ environment.

The index is built into <data_dir>/eval/, keyed by the corpus content and every setting that changes what is
indexed, so repeated runs (and runs that only change retrieval settings) skip straight to the questions.

A command line only: the scoring is bench/scoring.py, the cross-validated report bench/crossval.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import crossval
from bench.common import run_evaluation
from bench.scoring import load_questions, score_corpus
from rag.settings import Settings


async def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    questions = load_questions(args.questions, args.split)
    if not questions:
        print("No questions to evaluate.", file=sys.stderr)
        return 2
    result = await score_corpus(
        settings,
        args.docs.resolve(),
        questions,
        k=args.k,
        reference_baseline=args.baseline == "reference",
        with_ablations=args.ablations,
        calibrate=args.calibrate,
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, required=True, help="folder of markdown/HTML docs")
    parser.add_argument("--questions", type=Path, action="append", required=True, help="JSONL file (repeatable)")
    parser.add_argument("--k", type=int, default=5, help="pages that count as retrieved (default 5)")
    parser.add_argument("--baseline", choices=["reference"], help="also run the reference recipe")
    parser.add_argument("--ablations", action="store_true", help="also run each technique switched on in turn")
    parser.add_argument("--calibrate", action="store_true", help="print refusal rates for a sweep of thresholds")
    parser.add_argument("--split", default="", help="only questions whose split is this (or unset)")
    parser.add_argument("--json-out", type=Path, help="also write the result JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if "--docs" not in arguments and "--questions" not in arguments and not {"-h", "--help"} & set(arguments):
        return crossval.main(arguments)  # the headline: real questions over every real corpus, cross-validated
    args = parse_args(argv)
    if not args.docs.is_dir():
        print(f"--docs {args.docs} is not a folder", file=sys.stderr)
        return 2
    return run_evaluation(evaluate, args)


if __name__ == "__main__":
    raise SystemExit(main())
