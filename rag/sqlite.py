"""One SQLite connection shared by worker threads, safe to close while a call is still running.

A call's awaiting task can be cancelled (a question dropped at shutdown) while its statement runs on in the worker
thread; an asyncio lock is released then, not when the thread is done. Closing the connection under a running
statement crashes the process (a segfault in the sqlite3 module), so the connection is held with a thread lock for
as long as a worker uses it, and ``close`` takes the same lock: it waits for the statement in flight.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def add_columns(db: sqlite3.Connection, added: Mapping[str, Mapping[str, str]]) -> None:
    """Add to an older database the columns (table -> column -> declaration) newer releases added."""
    for table, columns in added.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, declaration in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


class SharedConnection:
    """``db`` for set-up before any worker uses it; afterwards every use goes through ``run`` or ``execute``."""

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
        self._held = threading.Lock()  # held by the thread using the connection, released when it is done
        self._turns = asyncio.Lock()  # callers wait their turn on the loop, not each in a worker thread

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on this thread (a worker thread already), while no other thread uses it."""
        with self._held:
            return fn(self.db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in a worker thread, one call at a time."""
        async with self._turns:
            return await asyncio.to_thread(self.call, fn)

    async def execute(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[tuple[Any, ...]]:
        return await self.run(lambda db: db.execute(sql, params).fetchall())

    def close(self) -> None:
        """Close once the statement in flight, if any, is done (a cancelled call's thread runs to its end)."""
        with self._held:
            self.db.close()
