"""One index run at a time across processes: an OS file lock on ``<data_dir>/indexer.lock``.

Reconcile deletes rows the durable record doesn't know, so an indexer beside another one (``--watch`` next to
the bot's periodic run, against a Milvus server) would delete rows the other has written but not yet recorded.
``flock`` is released by the kernel when the holder's file descriptor closes, so a crashed or killed indexer
never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from rag.errors import DocentError
from rag.private import private_dir

logger = logging.getLogger(__name__)


class IndexerBusy(DocentError):
    """Another process holds the index lock and the caller chose not to wait."""

    user_message = "Another index run is in progress (another process). Try again when it has finished."
    shows_error_id = False


class ProcessLock:
    """An exclusive ``flock`` on a file; waiting polls off the loop, so it stays cancellable."""

    def __init__(self, path: Path, *, poll_s: float = 1.0) -> None:
        self.path = path
        self._poll_s = poll_s

    def _try(self) -> int | None:
        """The locked file descriptor, or None if another holder has it."""
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def _attempt(self) -> int | None:
        attempt = asyncio.ensure_future(asyncio.to_thread(self._try))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:  # the thread may still take the lock: release it when it does
            attempt.add_done_callback(_release_late)
            raise

    @contextlib.asynccontextmanager
    async def hold(self, *, wait: bool = True) -> AsyncIterator[None]:
        """Hold the lock for the block; without ``wait``, raise IndexerBusy if another process holds it."""
        fd = await self._attempt()
        logged = False
        while fd is None:
            if not wait:
                raise IndexerBusy(f"another indexer holds {self.path}")
            if not logged:
                logger.warning("another indexer is running (it holds %s); waiting for it to finish", self.path)
                logged = True
            await asyncio.sleep(self._poll_s)
            fd = await self._attempt()
        if logged:
            logger.info("the other indexer finished; starting")
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _release_late(attempt: asyncio.Future[int | None]) -> None:
    if not attempt.cancelled() and attempt.exception() is None and (fd := attempt.result()) is not None:
        os.close(fd)
