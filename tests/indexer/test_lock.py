"""One indexer at a time across processes: a file lock in the data dir, released even when its holder dies."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from indexer.build import make_indexer
from indexer.local import FolderDocs
from indexer.lock import IndexerBusy
from indexer.runner import Indexer
from rag.settings import FolderSource, Settings

pytestmark = pytest.mark.integration

HOLDER = """
import fcntl, sys
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold until stdin closes (or the process is killed)
"""
PROBE = "import fcntl, sys; fcntl.flock(open(sys.argv[1], 'a'), fcntl.LOCK_EX | fcntl.LOCK_NB)"


class Holder:
    """Another process holding the indexer lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    async def locked(self) -> None:
        assert self.process.stdout is not None
        assert await asyncio.to_thread(self.process.stdout.readline) == "locked\n"

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def crash(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def holder(settings: Settings) -> Iterator[Holder]:
    held = Holder(settings.data_dir / "indexer.lock")
    yield held
    if held.process.poll() is None:
        held.crash()


@pytest.fixture
def docs(tmp_path: Path) -> FolderDocs:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nAlpha.\n")
    return FolderDocs(FolderSource(id="docs", path=root))


def lock_is_free(path: Path) -> bool:
    return subprocess.run([sys.executable, "-c", PROBE, str(path)]).returncode == 0


async def test_no_wait_raises_while_another_process_holds_the_lock_and_runs_once_it_dies(
    settings: Settings, holder: Holder, docs: FolderDocs, embedder, store
) -> None:
    await holder.locked()
    indexer = make_indexer(settings, embedder, store)
    with pytest.raises(IndexerBusy) as busy:
        await indexer.run([docs], wait=False)
    assert busy.value.user_message.startswith("Another index run is in progress (another process).")
    assert not indexer.lock.locked() and indexer.progress is None

    holder.crash()  # the kernel releases a flock with its holder's descriptors
    report = await indexer.run([docs], wait=False)
    assert report.pages_new == 1
    assert lock_is_free(settings.data_dir / "indexer.lock"), "released after the run"


@pytest.fixture
async def waiting() -> AsyncIterator[asyncio.Event]:
    """Set when the indexer logs that it waits for the other process."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting" in record.getMessage():
                loop.call_soon_threadsafe(event.set)

    seen = Seen()
    logging.getLogger("indexer.lock").addHandler(seen)
    yield event
    logging.getLogger("indexer.lock").removeHandler(seen)


async def test_a_run_waits_for_the_other_process(
    settings: Settings, holder: Holder, docs: FolderDocs, embedder, store, waiting, caplog: pytest.LogCaptureFixture
) -> None:
    await holder.locked()
    indexer = Indexer(embedder, store, lock_path=settings.data_dir / "indexer.lock", lock_poll_s=0.01)
    with caplog.at_level(logging.INFO, logger="indexer.lock"):
        run = asyncio.create_task(indexer.run([docs]))
        await waiting.wait()
        assert not run.done() and indexer.lock.locked()
        holder.release()
        report = await run
    assert report.pages_new == 1
    assert sum("waiting" in r.getMessage() for r in caplog.records) == 1, "said once that it waits"


async def test_a_waiting_run_can_be_cancelled(
    settings: Settings, holder: Holder, docs: FolderDocs, embedder, store, waiting
) -> None:
    await holder.locked()
    indexer = Indexer(embedder, store, lock_path=settings.data_dir / "indexer.lock", lock_poll_s=0.01)
    run = asyncio.create_task(indexer.run([docs]))
    await waiting.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    holder.release()
    assert lock_is_free(settings.data_dir / "indexer.lock")
    assert not indexer.lock.locked()
    assert (await indexer.run([docs], wait=False)).pages_new == 1


async def test_cli_no_wait_exits_with_one_line(
    tmp_path: Path, process_env: dict[str, str], settings: Settings, holder: Holder
) -> None:
    await holder.locked()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    command = [sys.executable, "-m", "indexer", "--dir", str(docs), "--no-wait"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=process_env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 3, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "Another indexer is running" in line]
    assert len(lines) == 1 and "indexer.lock" in lines[0]
    assert "Traceback" not in done.stderr


def test_busy_is_told_plainly_without_an_error_id() -> None:
    from rag.errors import describe

    assert describe(IndexerBusy("another indexer holds x"), "abc123") == IndexerBusy.user_message
