"""The operator's terminal for what Docent learns and keeps (issue 12):

python -m bot learned list [--all]          # pending community answers (or every one)
python -m bot learned approve ID [ID…]      # indexed by the bot's next index run (or at once when approved in chat)
python -m bot learned reject ID [ID…]       # never indexed; taken out of the index at once if it was
python -m bot learned export DIR            # approved answers as Markdown, to move into the real docs
python -m bot forget USER_ID [--platform]   # remove a user's stored questions, votes and community answers

Rejecting and forgetting take the community answers out of the index at once (``indexer.community.taking_out``).
With Milvus Lite the bot, when it runs, holds the index: then they are listed for removal in the index record and
the bot's next index run removes them; the command says so and exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path

from bot.text import printable
from indexer.build import RECORD_FILE
from indexer.community import keep_indexed, taking_out
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.learned import Learned, LearnedStore
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
        if action == "approve":
            missing = [i for i in ids if not await store.decide(i, "approved")]
            await keep_indexed(settings, await _pairs(store, set(ids) - set(missing)))
            _say_missing(missing)
            print(f"{len(ids) - len(missing)} approved; the bot's next index run adds them.")
            return 1 if missing else 0
        if action == "reject":
            async with taking_out(settings, await _pairs(store, ids)) as removal:
                missing = [i for i in ids if not await store.decide(i, "rejected")]
            _say_missing(missing)
            rejected = len(ids) - len(missing)
            print(f"{rejected} rejected{'' if removal.problem else '; taken out of the index'}.")
            if removal.problem:
                _not_yet_out(settings, removal.problem, "rejected in Docent's database")
            return 1 if missing or removal.problem else 0
        if directory is None:
            print("error: export needs a directory", file=sys.stderr)
            return 2
        pairs = await store.list("approved", limit=100_000)
        await asyncio.to_thread(_write_all, directory, pairs)
        print(f"{len(pairs)} approved answers written to {directory}")
        return 0
    finally:
        store.close()


async def _pairs(store: LearnedStore, ids: Iterable[int]) -> list[Learned]:
    return [pair for pair_id in ids if (pair := await store.get(pair_id)) is not None]


def _say_missing(missing: list[int]) -> None:
    for i in missing:
        print(f"error: no community answer #{i}", file=sys.stderr)


def _not_yet_out(settings: Settings, problem: str, done: str) -> None:
    """The answers left Docent's database but not yet the index: say why, and when and how they will."""
    message = (
        f"warning: the community answers are {done} but still in the index: {problem}.\n"
        f"They are listed for removal in {settings.data_dir / RECORD_FILE}: the bot's next index run (the periodic "
        "run, /reindex, or the next answer approved in chat) removes them, whatever indexer.max_prune_fraction says. "
        "To remove them now, stop the bot and run this command again."
    )
    print(printable(message), file=sys.stderr)


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
    problem: str | None = None
    if learned_path.exists():
        store = await asyncio.to_thread(LearnedStore, learned_path)
        try:
            user: int | str = int(user_id) if user_id.isdigit() else user_id
            pairs = [pair for platform in platforms for pair in await store.pairs_of(platform, user)]
            async with taking_out(settings, pairs) as removal:  # out of the index too, not only the database
                for platform in platforms:
                    removed += await store.forget(platform, user)
            problem = removal.problem
        finally:
            store.close()
    print(f"Removed {removed} stored rows for {user_id}.")
    if problem:
        _not_yet_out(settings, problem, "deleted from Docent's database")
        return 1
    return 0
