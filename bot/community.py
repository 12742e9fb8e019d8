"""The operator's terminal for what Docent learns and keeps (issue 12):

python -m bot learned list [--all]          # pending community answers (or every one)
python -m bot learned approve ID [ID…]      # indexed by the bot's next index run (or at once when approved in chat)
python -m bot learned reject ID [ID…]       # never indexed; pruned if it was
python -m bot learned export DIR            # approved answers as Markdown, to move into the real docs
python -m bot forget USER_ID [--platform]   # remove a user's stored questions, votes and community answers
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.text import printable
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.learned import Learned, LearnedStore, Status
from rag.settings import Settings

FEEDBACK_FILE = "feedback.sqlite3"


async def learned(settings: Settings, action: str, ids: list[int], directory: Path | None, *, all_: bool) -> int:
    store = await asyncio.to_thread(LearnedStore, settings.data_dir / LEARNED_FILE)
    try:
        if action == "list":
            pairs = await store.list(None if all_ else "pending", limit=1000)
            if not pairs:
                print("No community answers waiting." if not all_ else "No community answers yet.")
            for pair in pairs:  # members' text: shown, never acted on by the terminal
                print(printable(f"#{pair.id} [{pair.status}] @{pair.author} on {pair.platform} — {pair.link}"))
                print(printable(f"  Q: {pair.question}"))
                print(printable("  A: " + pair.answer.replace("\n", "\n     ")))
            return 0
        if action in ("approve", "reject"):
            status: Status = "approved" if action == "approve" else "rejected"
            missing = [i for i in ids if not await store.decide(i, status)]
            for i in missing:
                print(f"error: no community answer #{i}", file=sys.stderr)
            done = len(ids) - len(missing)
            print(f"{done} {status}; the bot's next index run {'adds' if status == 'approved' else 'removes'} them.")
            return 1 if missing else 0
        if directory is None:
            print("error: export needs a directory", file=sys.stderr)
            return 2
        pairs = await store.list("approved", limit=100_000)
        await asyncio.to_thread(_write_all, directory, pairs)
        print(f"{len(pairs)} approved answers written to {directory}")
        return 0
    finally:
        store.close()


def _write_all(directory: Path, pairs: list[Learned]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        (directory / f"community-{pair.id}.md").write_text(pair.as_markdown() + f"\nSource: {pair.link}\n")


async def forget(settings: Settings, user_id: str, platforms: list[str]) -> int:
    """Delete what Docent stored about one person: questions and votes (feedback) and community answers they
    asked or wrote. Ids are the platform's own (a Discord user id, a Slack member id)."""
    removed = 0
    feedback_path = settings.data_dir / FEEDBACK_FILE
    if feedback_path.exists():
        feedback = await asyncio.to_thread(FeedbackStore, feedback_path)
        try:
            for platform in platforms:
                key: int | str = int(user_id) if platform == "discord" and user_id.isdigit() else user_id
                removed += await feedback.forget(key, platform)
        finally:
            feedback.close()
    learned_path = settings.data_dir / LEARNED_FILE
    if learned_path.exists():
        store = await asyncio.to_thread(LearnedStore, learned_path)
        try:
            for platform in platforms:
                removed += await store.forget(platform, int(user_id) if user_id.isdigit() else user_id)
        finally:
            store.close()
    print(f"Removed {removed} stored rows for {user_id}.")
    return 0
