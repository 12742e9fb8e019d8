"""``python -m bot gaps``: the knowledge-gap report (``rag.gaps``) in the terminal, or as JSON.

The operator's view, scoped as ``python -m bot report`` is: every platform and space (direct messages included),
narrowed by ``--platform`` and ``--space``; private questions are counted in the clusters, never shown. The
embedding model is loaded as the bot loads it. The nearest docs pages come from the index; with Milvus Lite the
running bot holds it, and the report then says so and leaves the pages out (stop the bot, or use a Milvus server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from datetime import UTC, datetime

from bot.community import FEEDBACK_FILE
from bot.text import printable
from rag.embedder import SentenceTransformerEmbedder
from rag.feedback import FeedbackStore, View
from rag.gaps import GapFinder, GapReport
from rag.learned import FILE as LEARNED_FILE
from rag.learned import LearnedStore, Limits
from rag.settings import Settings
from rag.store import MilvusStore

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([hdw])$")
_UNITS = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a time ago (``12h``, ``7d``, ``2w``) or a date or time (``2025-01-31``, UTC midnight;
    ``2025-01-31T12:00``); ValueError otherwise."""
    now = time.time() if now is None else now
    value = text.strip().lower()
    ago = _AGO.match(value)
    if ago:
        return now - float(ago[1]) * _UNITS[ago[2]]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since takes 7d, 12h, 2w or a date like 2025-01-31, not {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def title(platform: str | None, space: str | None) -> str:
    names = {"discord": ("Discord", "server"), "slack": ("Slack", "workspace")}
    if space is None:
        return f"Knowledge gaps — {names[platform][0] if platform in names else 'every platform'}"
    name, kind = names.get(platform or "", ("", "space"))
    return f"Knowledge gaps — {name + ' ' if name else ''}{kind} {space}"


async def print_gaps(
    settings: Settings,
    *,
    as_json: bool,
    platform: str | None = None,
    space: str | None = None,
    since: float | None = None,
) -> int:
    path = settings.data_dir / FEEDBACK_FILE
    problem = await asyncio.to_thread(FeedbackStore.check, path)
    if problem:
        print(printable(f"error: {problem}"), file=sys.stderr)
        return 2
    view = View(platform, space)
    if not path.exists():  # reading a report never creates the database
        report = GapReport(platform, space, since, time.time(), 0, 0, ())
    else:
        report = await _report(settings, view, since)
    if as_json:
        print(json.dumps(report.as_dict()))
    else:  # askers' words: shown, never acted on by the terminal (JSON escapes them itself)
        print(printable(f"{title(platform, space)}\n{report.as_text()}"))
    return 0


async def _report(settings: Settings, view: View, since: float | None) -> GapReport:
    learned_path = settings.data_dir / LEARNED_FILE
    async with contextlib.AsyncExitStack() as stack:
        feedback = await asyncio.to_thread(FeedbackStore, settings.data_dir / FEEDBACK_FILE)
        stack.callback(feedback.close)
        learned = None
        if learned_path.exists():
            learned = await asyncio.to_thread(LearnedStore, learned_path, Limits.of(settings))
            stack.callback(learned.close)
        embedder = await asyncio.to_thread(SentenceTransformerEmbedder, settings.embedding, settings.embedding_cache)
        stack.callback(embedder.close)
        store = MilvusStore(settings.milvus_uri, settings.milvus)
        stack.push_async_callback(store.close)
        finder = GapFinder(
            feedback,
            embedder,
            settings.gaps,
            pages=store,
            learned=learned,
            shared_spaces=settings.learned.shared_spaces,
        )
        return await finder.report(view, since=since)
    raise AssertionError("unreachable")  # the exit stack does not swallow exceptions
