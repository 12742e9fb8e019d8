#!/usr/bin/env python3
"""Validate bench/devset/real_questions.jsonl (the real-question dev set).

Run from anywhere:

    python bench/devset/check_real.py [--file PATH] [--corpus DIR] [--min-count N]

Checks every line for:
  - required keys and their types; evidence in {link, content}; excerpt <= 300 chars
  - gold pages exist in the corpus (paths relative to the corpus root)
  - no FAQ gold page (any path containing "faq", e.g. fragments/faq_*.md)
  - no source thread from the reserved GitHub organisation (github.com/milvus-io/...)
    and no Milvus FAQ page as a source
  - fold == int(sha256(source_url).hexdigest(), 16) % 5
  - no duplicate source_url, no duplicate question text
Then prints counts by origin, evidence, lang, fold and gold page.
Exit code 1 if any check fails or the set has fewer than --min-count questions.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = REPO_ROOT / "bench" / "devset" / "real_questions.jsonl"
DEFAULT_CORPUS = REPO_ROOT / ".." / "shared" / "corpora" / "milvus-docs"

REQUIRED = {
    "question": str,
    "gold_sources": list,
    "source_url": str,
    "origin": str,
    "answer_excerpt": str,
    "evidence": str,
    "lang": str,
    "fold": int,
}
EVIDENCE = {"link", "content"}
RESERVED_SOURCE = re.compile(r"^https?://(www\.)?github\.com/milvus-io/", re.I)
FAQ_SOURCE = re.compile(r"milvus\.io/docs/.*faq", re.I)


def fold_of(url: str) -> int:
    return int(hashlib.sha256(url.encode("utf-8")).hexdigest(), 16) % 5


def check(path: Path, corpus: Path) -> tuple[list[dict], list[str]]:
    errors: list[str] = []
    rows: list[dict] = []
    seen_urls: dict[str, int] = {}
    seen_questions: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not JSON ({exc})")
            continue
        for key, typ in REQUIRED.items():
            if key not in row:
                errors.append(f"{where}: missing key {key!r}")
            elif not isinstance(row[key], typ) or (typ is int and isinstance(row[key], bool)):
                errors.append(f"{where}: {key!r} should be {typ.__name__}")
        if any(e.startswith(where + ":") for e in errors):
            continue
        url = row["source_url"]
        where = f"line {lineno} ({url})"
        if not row["question"].strip():
            errors.append(f"{where}: empty question")
        if row["evidence"] not in EVIDENCE:
            errors.append(f"{where}: evidence must be one of {sorted(EVIDENCE)}")
        if len(row["answer_excerpt"]) > 300:
            errors.append(f"{where}: answer_excerpt has {len(row['answer_excerpt'])} chars (> 300)")
        if not row["answer_excerpt"].strip():
            errors.append(f"{where}: empty answer_excerpt")
        if not row["gold_sources"]:
            errors.append(f"{where}: no gold_sources")
        for gold in row["gold_sources"]:
            if not isinstance(gold, str):
                errors.append(f"{where}: gold source {gold!r} is not a string")
                continue
            if "faq" in gold.lower():
                errors.append(f"{where}: FAQ page {gold} is reserved and cannot be gold")
            if gold.startswith("/") or ".." in Path(gold).parts:
                errors.append(f"{where}: gold source {gold} must be relative to the corpus root")
            elif not (corpus / gold).is_file():
                errors.append(f"{where}: gold source {gold} not found in {corpus}")
        if RESERVED_SOURCE.search(url):
            errors.append(f"{where}: github.com/milvus-io threads are reserved for the held-out set")
        if FAQ_SOURCE.search(url):
            errors.append(f"{where}: Milvus FAQ pages are reserved for the held-out set")
        if row["fold"] != fold_of(url):
            errors.append(f"{where}: fold {row['fold']} != sha256(source_url) % 5 = {fold_of(url)}")
        if url in seen_urls:
            errors.append(f"{where}: duplicate source_url (first on line {seen_urls[url]})")
        seen_urls.setdefault(url, lineno)
        qkey = " ".join(row["question"].split()).lower()
        if qkey in seen_questions:
            errors.append(f"{where}: duplicate question (first on line {seen_questions[qkey]})")
        seen_questions.setdefault(qkey, lineno)
        rows.append(row)
    return rows, errors


def print_counts(title: str, counter: collections.Counter) -> None:
    print(f"{title}:")
    for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        print(f"  {n:4d}  {key}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="corpus root (default: ../shared/corpora/milvus-docs relative to the repo root)",
    )
    ap.add_argument(
        "--min-count", type=int, default=120, help="fail if the set has fewer questions than this (default 120)"
    )
    args = ap.parse_args(argv)

    corpus = args.corpus.resolve()
    if not corpus.is_dir():
        print(f"corpus not found: {corpus}", file=sys.stderr)
        return 1
    if not args.file.is_file():
        print(f"file not found: {args.file}", file=sys.stderr)
        return 1

    rows, errors = check(args.file, corpus)
    print(f"file:   {args.file}")
    print(f"corpus: {corpus}")
    print(f"questions: {len(rows)}")
    print_counts("by origin", collections.Counter(r["origin"] for r in rows))
    print_counts("by evidence", collections.Counter(r["evidence"] for r in rows))
    print_counts("by lang", collections.Counter(r["lang"] for r in rows))
    print_counts("by fold", collections.Counter(r["fold"] for r in rows))
    print_counts("by gold page", collections.Counter(g for r in rows for g in r["gold_sources"]))

    if len(rows) < args.min_count:
        errors.append(f"only {len(rows)} questions; at least {args.min_count} required")
    if errors:
        print(f"\n{len(errors)} problem(s):")
        for e in errors:
            print(f"  - {e}")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
