"""Retrieval quality on real questions, 5-fold cross-validated, over every real-question set.

python -m bench.cv [--sets milvus,fastapi,pydantic] [--k 5] [--json-out PATH]

A command line only: the study is bench/crossval.py (``python -m bench.eval`` without ``--docs`` runs it too).
"""

from __future__ import annotations

from bench.crossval import main

if __name__ == "__main__":
    raise SystemExit(main())
