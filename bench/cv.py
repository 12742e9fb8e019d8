"""Retrieval quality on real questions, 5-fold cross-validated, over every real-question set.

python -m bench.cv [--sets milvus,fastapi,pydantic] [--k 5] [--json-out PATH]

Each set is real questions asked in public with gold pages taken from the answers given there
(bench/devset/*real_questions.jsonl, see bench/devset/REAL_QUESTIONS.md), over its own corpus. A question's fold
is fixed in the file (a hash of its source URL), so numbers compare across commits.

Every candidate retrieval setting is run once on every question; then, for each fold, the setting with the best
pooled recall@k on the other four folds (MRR@k breaks ties) is scored on that fold. The reported numbers are those
held-out scores, so tuning never sees the questions it is scored on. Untuned rows (the reference recipe, today's
defaults) are scored on every question. The refusal threshold is cross-validated the same way: the highest
threshold that refuses at most 1% of the answerable training questions, scored on the held-out fold, and on the
out-of-scope set. The last line printed is one JSON object.

A command line only: the study is bench/crossval.py (``python -m bench.eval`` without ``--docs`` runs it too).
"""

from __future__ import annotations

from bench.crossval import main

if __name__ == "__main__":
    raise SystemExit(main())
