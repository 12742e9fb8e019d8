"""`python -m bot` as an operator runs it: settings from the environment, a loopback Discord, signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.fake_discord import FakeDiscord

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
ALICE = 600000000000000001


def bot_env(process_env: dict[str, str], fake: FakeDiscord, docs: Path) -> dict[str, str]:
    return {
        **process_env,
        "DOCENT_DISCORD__TOKEN": "fake-token",
        "DOCENT_DISCORD__API_BASE": fake.api_base,
        "DOCENT_DISCORD__GATEWAY_URL": fake.gateway_url,
        "DOCENT_LLM__MAX_TOKENS": "24",
        "DOCENT_INDEXER__SOURCES": json.dumps(
            [{"type": "folder", "id": "docs", "path": str(docs), "base_url": "https://docs.example/"}]
        ),
        "DOCENT_INDEXER__SCHEDULE_MINUTES": "60",
    }


async def wait_for_log(log: Path, needle: str, timeout: float) -> None:
    """Poll the bot's log file (a subprocess offers nothing to wait on but its output)."""
    async with asyncio.timeout(timeout):
        while needle not in await asyncio.to_thread(log.read_text, errors="replace"):  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def start_bot(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """stderr goes to a file, not a pipe: the engine's helper processes inherit it and may outlive the bot,
    and on Python 3.11 a pipe they hold open keeps ``Process.wait()`` from ever returning."""
    with log.open("wb") as sink:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=ROOT, env=env, stderr=sink)


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path, process_env: dict[str, str], pages: dict[str, str]
) -> AsyncIterator[tuple[FakeDiscord, asyncio.subprocess.Process, Path]]:
    """A real ``python -m bot`` over ``pages``, connected to a fake Discord and done with its first index run."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    async with FakeDiscord() as fake:
        fake.add_member(ALICE, "alice")
        log = tmp_path / "bot.log"
        proc = await start_bot(bot_env(process_env, fake, docs), log)
        try:
            await wait_for_log(log, "index run done", timeout=300)
            await fake.wait_ready(timeout=60)
            yield fake, proc, log
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


HNSW_PAGE = {"hnsw.md": "# HNSW\n\nHNSW is a graph index; M is the node degree.\n"}


async def test_rejected_token_is_one_clear_line(tmp_path: Path, process_env: dict[str, str]) -> None:
    async with FakeDiscord() as fake:
        fake.inject("GET", "/users/@me", status=401, times=5)
        env = bot_env(process_env, fake, tmp_path)
        log = tmp_path / "bot.log"
        proc = await start_bot(env, log)
        await asyncio.wait_for(proc.wait(), 60)
    text = log.read_text()
    assert proc.returncode == 2
    assert "rejected the bot token" in text and "Traceback" not in text
    assert "fake-token" not in text


async def test_runs_indexes_answers_and_stops_on_sigterm(tmp_path: Path, process_env: dict[str, str]) -> None:
    pages = {**HNSW_PAGE, "install.md": "# Install\n\nRun docker compose up -d to start Milvus.\n"}
    async with running_bot(tmp_path, process_env, pages) as (fake, proc, log):
        assert fake.synced_commands(), "slash commands synced at first start"
        asked = await fake.user_says(ALICE, "what is HNSW?", mention_bot=True)
        reply = await fake.wait_for_message(lambda m: m.reply_to == asked and "AI-generated" in m.content, timeout=120)
        assert "https://docs.example/hnsw.md" in reply.content
        assert reply.allowed_mentions is not None and reply.allowed_mentions["parse"] == [] and not reply.pings

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 90)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "bot stopped" in text
    assert "Traceback" not in text, text[-4000:]
    assert "fake-token" not in text


async def test_engine_death_fails_fast_then_exits_for_the_supervisor(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    """Killing vLLM's engine-core process: questions get a clear message, then the bot exits with code 3."""
    import psutil

    async with running_bot(tmp_path, process_env, HNSW_PAGE) as (fake, proc, log):
        children = psutil.Process(proc.pid).children(recursive=True)
        engines = [c for c in children if "EngineCore" in " ".join(c.cmdline()) + c.name()] or children
        assert engines, "the engine runs in a child process"
        for child in engines:
            child.kill()
        asked = await fake.user_says(ALICE, "what is HNSW?", mention_bot=True)
        await asyncio.wait_for(proc.wait(), 90)
    text = log.read_text(errors="replace")
    assert proc.returncode == 3, text[-4000:]
    assert "engine died" in text
    replies = [m for m in fake.messages.values() if m.reply_to == asked]
    assert all("unavailable" in m.content or "🔎" in m.content for m in replies), [m.content for m in replies]
    assert "fake-token" not in text
