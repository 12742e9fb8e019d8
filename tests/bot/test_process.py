"""`python -m bot` as an operator runs it: settings from the environment, a loopback Discord, signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loopback.discord import FakeDiscord

pytestmark = pytest.mark.integration  # tests that start the engine are also marked slow, one by one
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
    tmp_path: Path, process_env: dict[str, str], pages: dict[str, str], extra_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[FakeDiscord, asyncio.subprocess.Process, Path]]:
    """A real ``python -m bot`` over ``pages``, connected to a fake Discord, done with its first index run and
    with its engine up (it starts in the background: until then questions get "starting up")."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    async with FakeDiscord() as fake:
        fake.add_member(ALICE, "alice")
        log = tmp_path / "bot.log"
        proc = await start_bot({**bot_env(process_env, fake, docs), **(extra_env or {})}, log)
        try:
            await wait_for_log(log, "index run done", timeout=300)
            await wait_for_log(log, "ready to answer in", timeout=300)
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


ENGINE_START_LINES = ("Loading the embedding model", "Starting the language model")


def write_garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database\n" * 500)


async def test_a_corrupt_feedback_database_stops_the_bot_before_any_model_loads(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    path = Path(process_env["DOCENT_DATA_DIR"]) / "feedback.sqlite3"
    await asyncio.to_thread(write_garbage, path)
    async with FakeDiscord() as fake:
        log = tmp_path / "bot.log"
        proc = await start_bot(bot_env(process_env, fake, tmp_path), log)
        await asyncio.wait_for(proc.wait(), 120)
    text = log.read_text(errors="replace")
    assert proc.returncode == 2, text[-4000:]
    problem = [line for line in text.splitlines() if "feedback" in line]
    assert len(problem) == 1, text[-4000:]
    assert str(path) in problem[0] and "corrupt" in problem[0]
    assert not any(line in text for line in ENGINE_START_LINES), "stopped before loading models"
    assert "Traceback" not in text


async def test_sync_pushes_the_commands_without_loading_models(tmp_path: Path, process_env: dict[str, str]) -> None:
    async with FakeDiscord() as fake:
        log = tmp_path / "sync.log"
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "sync", cwd=ROOT, env=bot_env(process_env, fake, tmp_path), stderr=sink
            )
        await asyncio.wait_for(proc.wait(), 120)
        synced = sorted(command["name"] for command in fake.synced_commands())
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert {"ask", "docent-channel", "feedback", "learned", "reindex"} <= set(synced), synced
    assert not any(line in text for line in ENGINE_START_LINES), text[-4000:]


async def test_the_operator_report_lists_each_server_and_direct_messages(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    from rag.feedback import FeedbackStore
    from rag.models import Answer

    def answer(question: str, request_id: str) -> Answer:
        return Answer(question, "an answer", (), False, (), request_id)

    store = FeedbackStore(Path(process_env["DOCENT_DATA_DIR"]) / "feedback.sqlite3")
    await store.record_answer(answer("asked in a DM", "r1"), ALICE)
    await store.record_answer(answer("asked in server one", "r2"), ALICE, guild_id=101)
    await store.record_answer(answer("asked privately in server one", "r3"), ALICE, guild_id=101, private=True)
    await store.record_answer(answer("asked in server two", "r4"), ALICE, guild_id=202)
    await store.record_answer(answer("asked in workspace T1", "r5"), "U1", guild_id="T1", platform="slack")
    await store.record_answer(answer("asked in a Slack DM", "r6"), "U1", platform="slack")
    store.close()

    async def report(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "report",
            *args,
            cwd=ROOT,
            env=process_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode(errors="replace")
        return out.decode()

    def sections_of(text: str) -> dict[str, str]:
        titles = r"Discord server \d+|Discord direct messages|Slack workspace \w+|Slack direct messages"
        parts = re.split(rf"^({titles})$", text, flags=re.MULTILINE)
        return dict(zip(parts[1::2], parts[2::2], strict=True))

    sections = sections_of(await report())
    assert list(sections) == [
        "Discord server 101",
        "Discord server 202",
        "Discord direct messages",
        "Slack workspace T1",
        "Slack direct messages",
    ], sections
    assert "2 answers" in sections["Discord server 101"], "the operator counts private questions"
    assert "asked privately" not in sections["Discord server 101"], "and never sees their words"
    server_two = sections["Discord server 202"]
    assert "asked in server two" in server_two and "server one" not in server_two
    assert "asked in a DM" in sections["Discord direct messages"]
    assert "server" not in sections["Discord direct messages"] and "Slack" not in sections["Discord direct messages"]
    assert "asked in workspace T1" in sections["Slack workspace T1"] and "DM" not in sections["Slack workspace T1"]
    assert "asked in a Slack DM" in sections["Slack direct messages"]

    listed = json.loads(await report("--json"))
    assert [(entry["platform"], entry["guild_id"]) for entry in listed] == [
        ("discord", 101),
        ("discord", 202),
        ("discord", None),
        ("slack", "T1"),
        ("slack", None),
    ]
    assert listed[0]["report"]["answers"] == 2 and listed[2]["report"]["top_questions"] == [["asked in a DM", 1]]

    assert list(sections_of(await report("--platform", "slack"))) == ["Slack workspace T1", "Slack direct messages"]
    assert list(sections_of(await report("--space", "101"))) == ["Discord server 101"]
    only_t1 = json.loads(await report("--platform", "slack", "--space", "T1", "--json"))
    assert [(entry["platform"], entry["guild_id"]) for entry in only_t1] == [("slack", "T1")]
    assert only_t1[0]["report"]["top_questions"] == [["asked in workspace T1", 1]]
    assert json.loads(await report("--platform", "discord", "--space", "T1", "--json")) == []
    assert "No answers" in await report("--platform", "discord", "--space", "T1")


@pytest.mark.slow
async def test_runs_both_platforms_indexes_answers_on_each_and_stops_on_sigterm(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    from loopback.slack import FakeSlack

    pages = {**HNSW_PAGE, "install.md": "# Install\n\nRun docker compose up -d to start Milvus.\n"}
    async with FakeSlack() as slack:
        slack_env = {
            "DOCENT_SLACK__BOT_TOKEN": slack.bot_token,
            "DOCENT_SLACK__APP_TOKEN": slack.app_token,
            "DOCENT_SLACK__API_BASE": slack.api_base,
        }
        async with running_bot(tmp_path, process_env, pages, slack_env) as (fake, proc, log):
            assert fake.synced_commands(), "slash commands synced at first start"
            asked = await fake.user_says(ALICE, "what is HNSW?", mention_bot=True)
            reply = await fake.wait_for_message(
                lambda m: m.reply_to == asked and "AI-generated" in m.content, timeout=120
            )
            assert "https://docs.example/hnsw.md" in reply.content
            assert reply.allowed_mentions is not None and reply.allowed_mentions["parse"] == [] and not reply.pings

            envelope = await slack.mention("C1", "U1", "<@UBOT> what is HNSW?")
            thread = envelope.payload["event"]["ts"]

            async def slack_answer() -> str:
                while True:
                    for message in slack.messages.values():
                        if message.thread_ts == thread and message.blocks:
                            return json.dumps(message.blocks)
                    await slack.changed()

            assert "https://docs.example/hnsw.md" in await asyncio.wait_for(slack_answer(), 120)
            assert slack.notifications == []

            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 90)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "bot stopped" in text
    assert "Traceback" not in text, text[-4000:]
    # A healthy run shows no E-level lines (gRPC's GOAWAY too_many_pings, vLLM workers, discord.py's command parser).
    bad = re.findall(r"^E\d{4}.*|^(?:\([^)]*\) )?(?:\d\d:\d\d:\d\d )?(?:ERROR|CRITICAL)\b.*", text, re.MULTILINE)
    assert not bad, bad
    assert "fake-token" not in text


@pytest.mark.slow
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
    assert replies, "the question got a reply before the bot exited"
    assert all("unavailable" in m.content or "🔎" in m.content for m in replies), [m.content for m in replies]
    assert "fake-token" not in text


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "no platform to connect to. Set DOCENT_DISCORD__TOKEN for Discord, or DOCENT_SLACK__BOT_TOKEN"),
        ({"DOCENT_SLACK__BOT_TOKEN": "xoxb-only"}, "DOCENT_SLACK__APP_TOKEN is not set"),
        ({"DOCENT_DISCORD__TOKEN": "d", "DOCENT_SLACK__APP_TOKEN": "xapp-only"}, "DOCENT_SLACK__BOT_TOKEN is not set"),
    ],
)
async def test_without_a_complete_platform_it_says_which_settings_and_exits_2(
    tmp_path: Path, process_env: dict[str, str], extra: dict[str, str], expected: str
) -> None:
    log = tmp_path / "bot.log"
    proc = await start_bot({**process_env, **extra}, log)
    await asyncio.wait_for(proc.wait(), 60)
    text = log.read_text()
    assert proc.returncode == 2 and expected in text
    assert len(text.strip().splitlines()) == 1 and "only" not in text, "one line, and no token in it"


async def test_a_rejected_slack_token_is_one_line_before_any_model_loads(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    from loopback.slack import FakeSlack

    async with FakeSlack() as slack:
        env = {
            **process_env,
            "DOCENT_SLACK__BOT_TOKEN": "xoxb-wrong-secret",
            "DOCENT_SLACK__APP_TOKEN": slack.app_token,
            "DOCENT_SLACK__API_BASE": slack.api_base,
        }
        log = tmp_path / "bot.log"
        proc = await start_bot(env, log)
        await asyncio.wait_for(proc.wait(), 60)
    text = log.read_text()
    assert proc.returncode == 2 and "Slack rejected the bot token (DOCENT_SLACK__BOT_TOKEN)" in text
    assert "wrong-secret" not in text and not any(line in text for line in ENGINE_START_LINES)
    assert [method for method, _ in slack.calls] == ["auth.test"]


async def test_a_language_model_that_cannot_start_stops_the_bot_with_exit_code_2(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    """The engine starts in the background while Discord connects; its failure still ends the process as it did
    when start-up waited for it: one error line naming the model, exit code 2."""
    missing = tmp_path / "no-such-model"
    async with FakeDiscord() as fake:
        log = tmp_path / "bot.log"
        env = {**bot_env(process_env, fake, tmp_path / "docs"), "DOCENT_LLM__MODEL": str(missing)}
        proc = await start_bot(env, log)
        await asyncio.wait_for(proc.wait(), 300)
    text = log.read_text(errors="replace")
    assert proc.returncode == 2, text[-4000:]
    assert f"error: Cannot start the language model {str(missing)!r}" in text, text[-4000:]
    assert "engine died" not in text and "fake-token" not in text
