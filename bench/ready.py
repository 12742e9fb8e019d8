"""Time to ready: from ``python -m bot`` to the first answerable question, with an existing index.

A real ``python -m bot`` (tiny generated model, Milvus Lite, the index built by the caller) connects to the
loopback fake Discord; ``/healthz`` is polled every 50 ms. "First reply" is the first moment the bot answers at
all (its health server is up: a question gets a reply, "starting up" if the engine isn't ready); "ready" is the
first ``"status": "ok"``: Discord connected and the engine answering. Run for two code trees in one go (the
baseline commit's start-up and today's), each on a copy of the same index.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def time_to_ready(code: Path, env: dict[str, str], log: Path, limit_s: float = 600) -> dict[str, Any]:
    from loopback.discord import FakeDiscord

    port = free_port()
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        env = {
            **env,
            "DOCENT_DISCORD__TOKEN": "fake-token",
            "DOCENT_DISCORD__API_BASE": fake.api_base,
            "DOCENT_DISCORD__GATEWAY_URL": fake.gateway_url,
            "DOCENT_OPS__PORT": str(port),
        }
        started = time.perf_counter()
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=code, env=env, stderr=sink)
        first_reply: float | None = None
        try:
            async with asyncio.timeout(limit_s):
                while True:
                    if proc.returncode is not None:
                        raise RuntimeError(f"the bot exited ({proc.returncode}); see {log}")
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                            body = json.loads(await response.text())
                        if first_reply is None:
                            first_reply = time.perf_counter() - started
                        if body.get("status") == "ok":
                            ready = time.perf_counter() - started
                            break
                    except (aiohttp.ClientError, ValueError):
                        pass
                    await asyncio.sleep(0.05)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(60):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    return {"first_reply_s": round(first_reply or ready, 2), "ready_s": round(ready, 2)}


def ready_section(code_trees: dict[str, Path], data: Path, env: dict[str, str]) -> dict[str, Any]:
    """Each tree starts on its own copy of ``data`` (an index built by today's code: same schema)."""
    out: dict[str, Any] = {}
    for name, code in code_trees.items():
        copy = data.parent / f"ready-{name}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("log", "*.lock"))
        run_env = {**env, "DOCENT_DATA_DIR": str(copy), "DOCENT_MILVUS__URI": str(copy / "milvus.db")}
        print(f"time to ready: {name}…", file=sys.stderr)
        out[name] = asyncio.run(time_to_ready(code, run_env, copy / "bot.log"))
    return out


def bot_env(base: dict[str, str], tiny_model: Path, models: Path) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("DOCENT_")}
    env.update(
        HF_HUB_OFFLINE="1",
        DOCENT_LLM__MODEL=str(tiny_model),
        DOCENT_LLM__KV_CACHE_GB="1",
        DOCENT_LLM__MAX_TOKENS="32",
        DOCENT_EMBEDDING__CACHE_DIR=str(models),
        DOCENT_INDEXER__SCHEDULE_MINUTES="0",
        DOCENT_INDEXER__SOURCES="[]",
        DOCENT_LOG_LEVEL="INFO",
    )
    return env
