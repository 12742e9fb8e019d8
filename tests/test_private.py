"""Everything Docent writes to a new data dir is readable by its own user only: questions, votes, community
answers, channel modes, the index record, the salts."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from bot.channels import Channels
from indexer.lock import ProcessLock
from indexer.manifest import IndexManifest, PageRecord
from rag.feedback import FeedbackStore
from rag.learned import LearnedStore
from rag.runtime import open_core
from rag.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_data_dir_and_everything_in_it_are_private(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    data = settings.data_dir
    async with open_core(settings, with_llm=False):  # the entry points' first touch of the data dir
        assert mode(data) == 0o700
    FeedbackStore(data / "feedback.sqlite3").close()
    LearnedStore(data / "learned.sqlite3").close()
    await Channels(settings).set_mode("discord", 1, "auto")
    manifest = IndexManifest(data / "index-record.sqlite3", "docs")
    await manifest.record([PageRecord("docs", "a.md", "h", 1)])
    async with ProcessLock(data / "indexer.lock").hold():
        pass

    files = [path for path in data.rglob("*") if path.is_file()]
    assert {"feedback.sqlite3", "learned.sqlite3", "channels.sqlite3", "index-record.sqlite3", "salts.json"} <= {
        path.name for path in files
    }
    assert {path.name: oct(mode(path)) for path in files if mode(path) & 0o077} == {}
