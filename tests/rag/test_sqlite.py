"""Closing a store while a cancelled call's statement still runs in its worker thread (a question dropped at
shutdown) used to free the SQLite connection under it: a segfault that took the whole process down. Run in a child
process, so that on the old code the crash fails this test instead of ending the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from rag.feedback import FeedbackStore
    from rag.learned import LearnedStore

    SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c"

    async def main(folder: Path) -> None:
        for round in range(3):
            for kind in (FeedbackStore, LearnedStore):
                store = kind(folder / f"{kind.__name__}-{round}.sqlite3")
                task = asyncio.create_task(store._run(SLOW))
                await asyncio.sleep(0.1)
                task.cancel()
                store.close()  # the statement is still running in its thread
                await asyncio.sleep(0.3)
        print("survived")

    asyncio.run(main(Path(sys.argv[1])))
    """
)


@pytest.mark.slow
def test_closing_a_store_while_a_cancelled_statement_runs_does_not_crash(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ran.returncode == 0 and "survived" in ran.stdout, (ran.returncode, ran.stderr[-2000:])
