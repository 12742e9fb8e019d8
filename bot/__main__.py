"""Docent's entry point.

python -m bot                  # run the Discord bot (needs DOCENT_DISCORD__TOKEN)
python -m bot ask "QUESTION"   # answer one question in the terminal, through the same pipeline
python -m bot sync             # push slash commands to Discord now
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys

import aiohttp
import discord

from bot.cli import ask
from bot.client import DocentBot, point_at
from bot.ops import OpsServer
from indexer.build import http_session, make_indexer, make_source
from indexer.sources import DocumentSource
from rag.entry import load_settings, run_command
from rag.feedback import FeedbackStore
from rag.logs import configure_logging
from rag.metrics import Metrics
from rag.runtime import open_core
from rag.settings import Settings

logger = logging.getLogger("bot")


async def check_token(api_base: str, token: str) -> str | None:
    """Ask Discord whether the token is valid before spending a minute loading models; None means fine."""
    url = api_base.rstrip("/") + "/users/@me"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
            session.get(url, headers={"Authorization": f"Bot {token}"}) as response,
        ):
            if response.status == 401:
                return (
                    "Discord rejected the bot token (DOCENT_DISCORD__TOKEN). Copy it again from the Developer Portal."
                )
            if response.status >= 400:
                return f"Discord answered {response.status} when checking the bot token."
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"cannot reach Discord at {api_base}: {exc or type(exc).__name__}"
    return None


async def run_bot(settings: Settings, *, sync_only: bool = False) -> int:
    if settings.discord.token is None or not settings.discord.token.get_secret_value().strip():
        print(
            "error: no Discord bot token. Set DOCENT_DISCORD__TOKEN (in the environment or a .env file); "
            "the README explains how to create one.",
            file=sys.stderr,
        )
        return 2
    point_at(settings)
    token = settings.discord.token.get_secret_value().strip()
    problem = await check_token(settings.discord.api_base, token)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    async with (
        open_core(settings, with_llm=not sync_only, status=logger.info) as core,
        http_session(settings.indexer) as session,
    ):
        metrics = Metrics()
        indexer = make_indexer(settings, core.embedder, core.store, metrics=metrics)

        def sources(source_id: str | None) -> list[DocumentSource]:
            configs = [c for c in settings.indexer.sources if source_id in (None, c.source_id())]
            return [make_source(config, settings.indexer, session) for config in configs]

        await core.store.ensure_collection(core.embedder.dimension)
        feedback = FeedbackStore(settings.data_dir / "feedback.sqlite3")
        bot = DocentBot(settings, core.pipeline, indexer, sources, feedback, metrics=metrics)  # type: ignore[arg-type]
        if sync_only:
            settings.indexer.schedule_minutes = 0
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(bot)
                if sync_only:
                    await bot.login(token)
                    await bot.sync_commands_if_changed(force=True)
                    return 0
                if settings.ops.metrics_enabled:
                    await stack.enter_async_context(OpsServer(settings.ops, metrics, bot.health))
                await bot.start(token)
        except discord.LoginFailure:
            print("error: Discord rejected the bot token (DOCENT_DISCORD__TOKEN).", file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:
            print(
                "error: the Message Content intent is off in the Developer Portal but "
                "bot.thread_followups_without_mention needs it.",
                file=sys.stderr,
            )
            return 2
        finally:
            feedback.close()
    logger.info("bot stopped")
    return bot.exit_code


async def print_report(settings: Settings, *, as_json: bool) -> int:
    store = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    try:
        report = await store.report(limit=20)
    finally:
        store.close()
    print(json.dumps(dataclasses.asdict(report)) if as_json else report.as_text(limit=20))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Docent, the docs Q&A bot.")
    commands = parser.add_subparsers(dest="command")
    ask_parser = commands.add_parser("ask", help="answer one question in the terminal")
    ask_parser.add_argument("question", nargs="+")
    ask_parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    commands.add_parser("run", help="run the Discord bot (the default)")
    commands.add_parser("sync", help="sync slash commands to Discord now")
    report_parser = commands.add_parser("report", help="feedback report: top questions, gaps, disliked answers")
    report_parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings is None:
        return 2
    if args.command == "ask":  # a terminal session: only our own progress lines, no library chatter
        settings = settings.model_copy(update={"log_level": "ERROR"})
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "ask":
        return run_command(ask(settings, " ".join(args.question), as_json=args.json))
    if args.command == "report":
        return run_command(print_report(settings, as_json=args.json))
    return run_command(run_bot(settings, sync_only=args.command == "sync"))


if __name__ == "__main__":
    raise SystemExit(main())
