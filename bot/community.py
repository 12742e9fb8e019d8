"""The operator's terminal for what Docent learns and keeps (issue 12):

python -m bot learned list [--all]          # pending community answers (or every one), each with its version
python -m bot learned approve ID:VERSION …  # that version, as listed; indexed by the bot's next index run
python -m bot learned reject ID [ID…]       # never indexed; taken out of the index at once if it was
python -m bot learned export DIR            # approved answers as Markdown, to move into the real docs
python -m bot forget USER_ID [--platform]   # remove a user's stored questions, votes and community answers

Approving takes the version ``list`` printed, so what is approved is the text the operator read: an answer its author
added to since is refused, and a bare ID only shows the answer with its version.

Rejecting and forgetting take the community answers out of the index at once (``indexer.community.taking_out``).
With Milvus Lite the bot, when it runs, holds the index: then they are listed for removal in the index record and
the bot's next index run removes them; the command says so and exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.text import printable
from indexer.build import RECORD_FILE
from indexer.community import keep_indexed, taking_out
from rag.errors import Changed
from rag.feedback import FeedbackStore
from rag.learned import FILE as LEARNED_FILE
from rag.learned import Learned, LearnedStore, Limits
from rag.settings import Settings

FEEDBACK_FILE = "feedback.sqlite3"


async def learned(
    settings: Settings,
    action: str,
    ids: list[int],
    directory: Path | None,
    *,
    all_: bool,
    versions: Mapping[int, str] | None = None,
) -> int:
    """``versions``: for approve, the version of each id as ``list`` printed it."""
    store = await asyncio.to_thread(LearnedStore, settings.data_dir / LEARNED_FILE, Limits.of(settings))
    try:
        if action == "list":
            pairs = await store.list(None if all_ else "pending", limit=1000)
            if not pairs:
                print("No community answers waiting." if not all_ else "No community answers yet.")
            for pair in pairs:  # members' text: shown, never acted on by the terminal
                print(printable(f"#{pair.id} [{pair.status}] @{pair.author} on {pair.platform} — {pair.link}"))
                print(printable(f"  Q: {pair.question}"))
                print(printable("  A: " + pair.answer.replace("\n", "\n     ")))
                if pair.status == "pending":
                    print(f"  To approve this text: python -m bot learned approve {pair.id}:{pair.version}")
            return 0
        if action == "approve":
            approved = await _approve(store, ids, versions or {})
            await keep_indexed(settings, await _pairs(store, approved))
            print(f"{len(approved)} approved; the bot's next index run adds them.")
            return 0 if len(approved) == len(ids) else 1
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


async def _approve(store: LearnedStore, ids: list[int], versions: Mapping[int, str]) -> list[int]:
    """Approve each id at the version listed; an id without one is shown with its version, not approved."""
    approved: list[int] = []
    for i in ids:
        pair = await store.get(i)
        if pair is None:
            _say_missing([i])
        elif i not in versions:
            print(printable(f"#{i} Q: {pair.question}\n  A: " + pair.answer.replace("\n", "\n     ")), file=sys.stderr)
            print(
                f"error: approve takes the version you read: python -m bot learned approve {i}:{pair.version}",
                file=sys.stderr,
            )
        else:
            try:
                if await store.decide(i, "approved", version=versions[i]):
                    approved.append(i)
                else:
                    _say_missing([i])
            except Changed:
                print(
                    f"error: #{i} changed since it was listed (its author added to it); list it again", file=sys.stderr
                )
    return approved


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
