"""The answer judge: rules over the reference's key facts, the grounding check, and hand labels to check both.

- **Correctness:** an answer is *right* when it states every key fact of the reference (each fact is a list of
  phrasings, any of which counts), *partly* when it states some, *wrong* when it states none or says what the
  reference marks as wrong, *refused* when it declines. Key facts were written from the answer given in the thread
  and the gold page, before any answer was generated.
- **Grounding:** ``rag.grounding``: the share of claim sentences whose cited source holds what they say, and the
  share of answers with at least one valid citation.
- **Refusals:** Docent's own refusal (low retrieval confidence, or the model saying the docs lack it, with no
  citation).
- **Language:** the answer's script and common words match the question's.
- **Hand labels** (``bench/devset/answer_labels.jsonl``, keyed by the answer's text hash) are compared with the
  judge: exact agreement and Cohen's kappa. Where they are given, the table also shows the hand labels' numbers.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import grounding
from rag.prompt import language_name

if TYPE_CHECKING:
    from bench.answers import Record

LABELS = ("right", "partly", "wrong", "refused")
_MARKER = re.compile(r"\[\d{1,3}\]")
_REFUSES = re.compile(
    r"(?:documentation|docs|sources?|context)\s+(?:does not|doesn't|do not|don't)\s+(?:cover|mention|contain|say|"
    r"include|provide|describe|address)|not (?:covered|mentioned|found|described|documented) in the"
    r"|(?:couldn't|could not|cannot|can't) find|no information|not (?:in|part of) the (?:docs|documentation|sources)"
    r"|文档中?(?:没有|未)|没有(?:相关|找到)|I won't guess|I don't know",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "")).strip().lower()


def refused(record: Record) -> bool:
    """Docent declined: its refusal, or the model saying the docs lack the answer, briefly and citing nothing (a
    long answer that starts by declining and then advises anyway is judged on its advice)."""
    if record.refused:
        return True
    text = record.text
    return bool(_REFUSES.search(text)) and not _MARKER.search(text) and words(text) <= 40


def correctness(record: Record) -> str:
    if refused(record):
        return "refused"
    text = normalised(record.text)
    if any(normalised(bad) in text for bad in record.item.wrong_if):
        return "wrong"
    facts = record.item.key_facts
    found = sum(1 for fact in facts if any(normalised(alt) in text for alt in fact))
    if facts and found == len(facts):
        return "right"
    return "partly" if found else "wrong"


def language(text: str) -> str:
    """Chinese, Japanese or Korean by script (``rag.prompt.language_name``), else English: the real sets ask in
    English and Chinese only."""
    return language_name(_MARKER.sub("", text)) or "English"


def words(text: str) -> int:
    """Words, counting two CJK characters as one."""
    plain = _MARKER.sub("", text)
    tokens = _CJK.sub(" ", plain).split()
    return sum(1 for token in tokens if any(ch.isalnum() for ch in token)) + len(_CJK.findall(plain)) // 2


def percentile(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def load_labels(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    labels = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            labels[row["key"]] = row
    return labels


def kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (judge, hand) label pairs."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in set(first) | set(second)) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def judge_record(record: Record) -> dict[str, Any]:
    sources = {int(n): text for n, text in record.sources.items()}
    checked = grounding.check(record.text, sources) if not refused(record) else []
    claims = [s for s in checked if s.claim]
    return {
        "key": record.key,
        "recipe": record.recipe,
        "model": record.model,
        "set": record.item.set,
        "answerable": record.item.answerable,
        "correctness": correctness(record)
        if record.item.answerable
        else ("refused" if refused(record) else "answered"),
        "refused": refused(record),
        "uncertain": record.uncertain,
        "claims": len(claims),
        "supported": sum(1 for s in claims if s.supported),
        "cited": bool(_MARKER.search(record.text)),
        "language_ok": language(record.text) == language(record.item.question) if record.text else None,
        "lang": language(record.item.question),
        "words": words(record.text),
        "first_token_ms": record.first_token_ms,
        "total_ms": record.total_ms,
        "timed": record.timed,
        "relevance": record.relevance,
        "error": record.error,
    }


def summarise(rows: Sequence[dict[str, Any]], labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    oos = [r for r in rows if not r["answerable"]]
    n = max(1, len(answerable))
    answered = [r for r in rows if not r["refused"] and not r["error"]]
    claims = sum(r["claims"] for r in answered)
    generated = [r for r in rows if r["first_token_ms"] is not None]
    if any(r["timed"] for r in generated):  # answers asked again alone: the wait of one user
        generated = [r for r in generated if r["timed"]]
    non_english = [r for r in answered if r["lang"] != "English"]
    out: dict[str, Any] = {
        "questions": len(answerable),
        "out_of_scope": len(oos),
        "right": round(sum(r["correctness"] == "right" for r in answerable) / n, 3),
        "right_or_partly": round(sum(r["correctness"] in ("right", "partly") for r in answerable) / n, 3),
        "wrongly_refused": round(sum(r["refused"] for r in answerable) / n, 3),
        "oos_refused": round(sum(r["refused"] for r in oos) / max(1, len(oos)), 3) if oos else None,
        "oos_marked_uncertain": round(sum(r["uncertain"] for r in oos) / max(1, len(oos)), 3) if oos else None,
        "marked_uncertain": round(sum(r["uncertain"] for r in answerable) / n, 3),
        "sentences_supported": round(sum(r["supported"] for r in answered) / claims, 3) if claims else None,
        "answers_cited": round(sum(r["cited"] for r in answered) / max(1, len(answered)), 3),
        "language_ok": round(sum(bool(r["language_ok"]) for r in answered) / max(1, len(answered)), 3),
        "non_english_language_ok": f"{sum(bool(r['language_ok']) for r in non_english)}/{len(non_english)}",
        "words_p50": percentile([r["words"] for r in answered], 50),
        "words_p95": percentile([r["words"] for r in answered], 95),
        "first_token_s_p50": _seconds(percentile([r["first_token_ms"] for r in generated], 50)),
        "first_token_s_p95": _seconds(percentile([r["first_token_ms"] for r in generated], 95)),
        "total_s_p50": _seconds(percentile([r["total_ms"] for r in generated], 50)),
        "total_s_p95": _seconds(percentile([r["total_ms"] for r in generated], 95)),
        "errors": sum(1 for r in rows if r["error"]),
    }
    labelled = [(r, labels[r["key"]]) for r in answerable if r["key"] in labels]
    if labelled:
        pairs = [(r["correctness"], label["correctness"]) for r, label in labelled]
        m = len(labelled)
        out["hand"] = {
            "labelled": m,
            "agreement": round(sum(a == b for a, b in pairs) / m, 3),
            "kappa": _round(kappa(pairs)),
            "right": round(sum(b == "right" for _, b in pairs) / m, 3),
            "right_or_partly": round(sum(b in ("right", "partly") for _, b in pairs) / m, 3),
            "judge_right_on_these": round(sum(a == "right" for a, _ in pairs) / m, 3),
            "judge_right_or_partly_on_these": round(sum(a in ("right", "partly") for a, _ in pairs) / m, 3),
        }
        grounded = [(r, label["grounded"]) for r, label in labelled if label.get("grounded") is not None]
        if grounded:
            judge_all = [(r["claims"] > 0 and r["supported"] == r["claims"], g) for r, g in grounded]
            out["hand"]["grounded_labelled"] = len(grounded)
            out["hand"]["grounded_agreement"] = round(sum(a == b for a, b in judge_all) / len(grounded), 3)
            out["hand"]["grounded"] = round(sum(b for _, b in judge_all) / len(grounded), 3)
    return out


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def relevance_sweep(rows: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """What a ``min_relevance`` would have done to answers generated without one: the answerable questions it
    would refuse, the right or partly right answers among them, and the out-of-scope questions it would refuse."""
    probed = [r for r in rows if r["relevance"] is not None or r["refused"]]
    answerable = [r for r in probed if r["answerable"]]
    oos = [r for r in probed if not r["answerable"]]
    out = []
    for step in range(0, 20):
        threshold = round(step * 0.05, 2)

        def refuses(row: dict[str, Any], threshold: float = threshold) -> bool:
            return row["refused"] or (row["relevance"] is not None and row["relevance"] < threshold)

        out.append(
            {
                "min_relevance": threshold,
                "answerable_refused": round(sum(map(refuses, answerable)) / max(1, len(answerable)), 3),
                "good_answers_lost": sum(
                    1 for r in answerable if refuses(r) and not r["refused"] and r["correctness"] in ("right", "partly")
                ),
                "oos_refused": round(sum(map(refuses, oos)) / max(1, len(oos)), 3),
            }
        )
    return out


def judge_records(records: Iterable[Record], *, labels_path: Path | None = None) -> dict[str, Any]:
    """Per (model, recipe): the summary; plus every judged row, so a run can be read answer by answer."""
    rows = [judge_record(r) for r in records]
    labels = load_labels(labels_path)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["recipe"]), []).append(row)
    table = []
    for (model, recipe), group in groups.items():
        summary = summarise(group, labels)
        by_set = {s: summarise([r for r in group if r["set"] == s], labels) for s in sorted({r["set"] for r in group})}
        sweep = relevance_sweep(group) if any(r["relevance"] is not None for r in group) else []
        table.append({"model": model, "recipe": recipe, **summary, "by_set": by_set, "relevance_sweep": sweep})
    return {"table": table, "rows": rows}


COLUMNS = (
    ("model", "model", 20),
    ("recipe", "recipe", 16),
    ("questions", "n", 4),
    ("right", "right", 6),
    ("right_or_partly", "r+part", 6),
    ("wrongly_refused", "refd", 5),
    ("oos_refused", "oos ref", 7),
    ("oos_marked_uncertain", "oos unc", 7),
    ("sentences_supported", "supp", 5),
    ("answers_cited", "cited", 5),
    ("non_english_language_ok", "lang", 5),
    ("words_p50", "w p50", 5),
    ("words_p95", "w p95", 5),
    ("first_token_s_p50", "ttft50", 6),
    ("first_token_s_p95", "ttft95", 6),
    ("total_s_p50", "tot50", 6),
    ("total_s_p95", "tot95", 6),
)


def print_table(summary: dict[str, Any], *, concurrency: int) -> None:
    header = " ".join(
        f"{title:>{width}}" if i > 1 else f"{title:<{width}}" for i, (_, title, width) in enumerate(COLUMNS)
    )
    print(header)
    print("-" * len(header))
    for row in summary["table"]:
        cells = []
        for i, (key, _, width) in enumerate(COLUMNS):
            value = row.get(key)
            text = (
                "-"
                if value is None
                else (
                    f"{value:.3f}"
                    if isinstance(value, float)
                    and value < 1.001
                    and key not in ("first_token_s_p50", "first_token_s_p95", "total_s_p50", "total_s_p95")
                    else str(value)
                )
            )
            cells.append(f"{text[:width]:<{width}}" if i <= 1 else f"{text:>{width}}")
        print(" ".join(cells))
        hand = row.get("hand")
        if hand:
            print(
                f"{'':<37} hand labels on {hand['labelled']}: right {hand['right']:.3f}, right+partly "
                f"{hand['right_or_partly']:.3f} (judge on these: {hand['judge_right_on_these']:.3f} / "
                f"{hand['judge_right_or_partly_on_these']:.3f}); agreement {hand['agreement']:.3f}, kappa "
                f"{hand['kappa']}"
                + (
                    f"; grounded {hand['grounded']:.3f}, judge agrees {hand['grounded_agreement']:.3f}"
                    if "grounded" in hand
                    else ""
                )
            )
    for row in summary["table"]:
        if row.get("relevance_sweep"):
            print(f"\n{row['model']} {row['recipe']}: refusing below a min_relevance would have refused")
            print("min_relevance  answerable  good answers lost  out of scope")
            for s in row["relevance_sweep"]:
                print(
                    f"{s['min_relevance']:>13.2f}  {s['answerable_refused']:>10.3f}  {s['good_answers_lost']:>16}"
                    f"  {s['oos_refused']:>12.3f}"
                )
    if concurrency > 1:
        print(f"(timings with {concurrency} questions answered at once)")
    print(
        "right / r+part: of answerable questions; refd: answerable refused; oos ref: out-of-scope refused; oos unc: "
        "out-of-scope answered but shown as possibly off; "
        "supp: claim sentences their citation supports; cited: answers with a valid citation; lang: non-English "
        "questions answered in their language; w: words; ttft / tot: seconds to first token / whole answer."
    )
