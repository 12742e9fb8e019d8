"""What was said in a thread before Docent was asked into it, as the model is shown it.

Users tag Docent into a thread where the problem was already described ("@Docent any idea?"); without what was
said, the question is empty. Each platform reads the thread's earlier messages; this turns them into a bounded,
anonymous transcript: the thread's title and opening message always, then the latest messages that fit. People are
"Asker" (who opened the thread) and "Member", never named: their names are not the model's business, and a name
in the prompt is one more thing it could echo as a ping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.citations import neutralize_mentions

MESSAGE_CHARS = 600
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SLACK_MENTION = re.compile(r"<[@!#][^>]*>")


@dataclass(frozen=True)
class Said:
    """One earlier message: who (``asker``, ``member`` or ``docent``) and its text."""

    role: str
    text: str


LABELS = {"asker": "Asker", "member": "Member", "docent": "Docent"}


def _clean(text: str) -> str:
    text = _SLACK_MENTION.sub("@someone", _CONTROL.sub("", text))
    text = neutralize_mentions(re.sub(r"\s+", " ", text).strip())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1].rstrip() + "…"


def transcript(title: str, said: Sequence[Said], *, max_messages: int, max_chars: int) -> tuple[str, ...]:
    """Lines for the prompt, oldest first: the title, the opening message, and as many of the latest messages as
    fit in ``max_messages`` and ``max_chars``. Empty messages (text the platform withheld) are left out."""
    if max_messages <= 0:
        return ()
    lines = [f"{LABELS.get(s.role, 'Member')}: {text}" for s in said if (text := _clean(s.text))]
    head = [f"Thread: {_clean(title)}"] if title.strip() else []
    if lines:
        head.append(lines.pop(0))
    budget = max_chars - sum(len(line) + 1 for line in head)
    tail: list[str] = []
    for line in reversed(lines[-(max_messages - 1) :] if max_messages > 1 else []):
        if len(line) + 1 > budget:
            break
        tail.insert(0, line)
        budget -= len(line) + 1
    if len(tail) < len(lines):
        head.append("…")
    return (*head, *tail)
