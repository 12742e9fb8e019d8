"""Docent's entry point.

python -m bot                  # run the bot: Discord (DOCENT_DISCORD__TOKEN), Slack (DOCENT_SLACK__BOT_TOKEN and
                               # DOCENT_SLACK__APP_TOKEN), or both from one process
python -m bot ask "QUESTION"   # answer one question in the terminal, through the same pipeline
python -m bot sync             # push slash commands to Discord now
python -m bot learned …        # community answers waiting for approval (list, approve, reject, export)
python -m bot forget USER_ID   # remove a user's stored questions, votes and community answers
python -m bot report           # feedback report per Discord server and Slack workspace (and direct messages)
python -m bot gaps             # knowledge gaps: the questions the docs did not answer, grouped by meaning
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import discord

from bot import community, gaps, report
from bot.cli import ask
from bot.community import FEEDBACK_FILE
from bot.dashboard import DashboardData
from bot.discord import running as discord_running
from bot.discord.client import sync_now
from bot.insight import Gaps, Resolutions
from bot.ops import OpsServer
from bot.services import Services
from indexer.build import http_session, index_record, make_indexer, make_source
from indexer.community import with_community
from indexer.sources import DocumentSource
from rag.entry import load_settings, run_command
from rag.feedback import FeedbackStore
from rag.gaps import GapFinder
from rag.learned import FILE as LEARNED_FILE
from rag.learned import LearnedStore, Limits
from rag.logs import configure_logging
from rag.metrics import Metrics
from rag.pipeline import Answering
from rag.runtime import open_core
from rag.settings import Settings, secret_text

logger = logging.getLogger("bot")


def process_started() -> float:
    """When this process started, on the ``time.monotonic`` clock: from /proc on Linux, so the imports (seconds
    of them) count towards time to ready; elsewhere, now."""
    now = time.monotonic()
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, counted after the command name
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - max(age, 0.0)


async def run_bot(settings: Settings, *, sync_only: bool = False, started: float | None = None) -> int:
    """Discord when its token is set, Slack when both of its tokens are, both when both are."""
    discord_token = secret_text(settings.discord.token)
    slack_tokens = (secret_text(settings.slack.bot_token), secret_text(settings.slack.app_token))
    if not sync_only and any(slack_tokens) and not all(slack_tokens):
        names = ("DOCENT_SLACK__BOT_TOKEN", "DOCENT_SLACK__APP_TOKEN")
        missing = " and ".join(name for name, value in zip(names, slack_tokens, strict=True) if not value)
        print(f"error: Slack needs both of its tokens; {missing} is not set.", file=sys.stderr)
        return 2
    if sync_only and not discord_token:
        print(
            "error: no Discord bot token. Set DOCENT_DISCORD__TOKEN (in the environment or a .env file); "
            "the README explains how to create one.",
            file=sys.stderr,
        )
        return 2
    if not discord_token and not all(slack_tokens):
        print(
            "error: no platform to connect to. Set DOCENT_DISCORD__TOKEN for Discord, or "
            "DOCENT_SLACK__BOT_TOKEN and DOCENT_SLACK__APP_TOKEN for Slack (or both); see the README.",
            file=sys.stderr,
        )
        return 2
    feedback_path = settings.data_dir / FEEDBACK_FILE
    if not sync_only:
        problem = await asyncio.to_thread(FeedbackStore.check, feedback_path)
        if problem:  # before the models load: a minute of start-up would end in the same failure
            print(f"error: {problem}", file=sys.stderr)
            return 2
    with_slack = not sync_only and all(slack_tokens)
    checks = [discord_running.check(settings)] if discord_token else []
    if with_slack:  # slack_bolt is imported only where Slack runs
        from bot.slack.app import check as slack_check

        checks.append(slack_check(settings))
    for problem in await asyncio.gather(*checks):  # each platform's own check, before any model loads
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    try:
        if sync_only:  # commands only: no models, no gateway connection
            await sync_now(settings, discord_token)
            return 0
        return await serve(settings, discord_token, feedback_path, with_slack=with_slack, started=started)
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


async def serve(
    settings: Settings, token: str, feedback_path: Path, *, with_slack: bool = False, started: float | None = None
) -> int:
    """Load the models once, then run each configured platform over the same services until a signal, or until
    the engine dies (exit code 3, for the supervisor). Each platform owns its start (``check``, then ``async with
    running(...)``). The engine starts in the background: the platforms connect meanwhile and questions wait for
    it; if it cannot start, leaving ``open_core`` raises why. Closing goes in reverse order of opening.
    ``started``: the process start, for the time to ready."""
    started = time.monotonic() if started is None else started
    async with (
        open_core(settings, with_llm=True, llm_in_background=True, status=logger.info) as core,
        http_session(settings.indexer) as session,
    ):
        if core.pipeline is None:  # with_llm=True always builds one
            raise RuntimeError("the answer pipeline did not start")
        metrics = Metrics()
        indexer = make_indexer(settings, core.embedder, core.store, metrics=metrics)

        learned_path = settings.data_dir / LEARNED_FILE

        def configured(source_id: str | None) -> list[DocumentSource]:
            configs = [c for c in settings.indexer.sources if source_id in (None, c.source_id())]
            return [make_source(config, settings.indexer, session) for config in configs]

        sources = with_community(configured, learned_path)  # approved community answers, indexed like docs

        await core.store.ensure_collection(core.embedder.dimension, settings.embedding.model)
        await core.store.warm()  # while the engine starts: the first question doesn't read the BM25 index
        await core.queries.warm()  # nor load the model that built the index answering, if it isn't the configured
        feedback = await asyncio.to_thread(FeedbackStore, feedback_path)
        learned = await asyncio.to_thread(LearnedStore, learned_path, Limits.of(settings))
        try:
            async with Services(
                settings, core.pipeline, indexer, sources, feedback, metrics=metrics, learned=learned
            ) as services:
                services.spawn(_log_ready(core.pipeline, started), name="ready-log")
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, services.stop.set)
                async with contextlib.AsyncExitStack() as stack:
                    checks: dict[str, Callable[[], Awaitable[bool]]] = {}
                    if with_slack:
                        from bot.slack.app import running as slack_running

                        checks["slack"] = await stack.enter_async_context(slack_running(services))
                    bot = await stack.enter_async_context(discord_running.running(services, token)) if token else None
                    if bot is not None:
                        checks["discord"] = bot.connected
                    if settings.ops.metrics_enabled:
                        health = (
                            bot.health if bot is not None and not with_slack else partial(_health, services, checks)
                        )
                        finder = GapFinder(
                            feedback,
                            core.embedder,
                            settings.gaps,
                            pages=core.store,
                            learned=learned,
                            shared_spaces=settings.learned.shared_spaces,
                        )
                        pages = DashboardData(
                            feedback,
                            learned,
                            await asyncio.to_thread(index_record, settings),
                            gaps=Gaps(finder),
                            resolution=Resolutions(feedback),
                            learned_command=settings.slack.learned_command,
                        )
                        ops = OpsServer(
                            settings.ops, metrics, health, dashboard=pages, refresh=services.refresh_metrics
                        )
                        await stack.enter_async_context(ops)
                    elif secret_text(settings.ops.dashboard_token):
                        logger.warning("ops.dashboard_token is set but ops.metrics_enabled is off: no dashboard")
                    await services.stop.wait()
                exit_code = services.exit_code
        finally:
            learned.close()
            feedback.close()
    logger.info("bot stopped")
    return exit_code


async def _log_ready(pipeline: Answering, started: float) -> None:
    """The number an operator waits for: the first moment a question gets an answer."""
    with contextlib.suppress(Exception):  # a failed start is reported by open_core
        await pipeline.wait_ready()
        logger.info("ready to answer in %.1f s (since process start)", time.monotonic() - started)


async def _health(services: Services, checks: dict[str, Callable[[], Awaitable[bool]]]) -> dict[str, Any]:
    return services.health({name: await check() for name, check in checks.items()})


def _since(text: str) -> float:
    try:
        return gaps.parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scope_arguments(parser: argparse.ArgumentParser) -> None:
    """--platform and --space, which narrow the report and the gap report alike."""
    parser.add_argument("--platform", choices=("discord", "slack"), help="only this platform")
    parser.add_argument(
        "--space", metavar="ID", help="only this Discord server id or Slack workspace id (e.g. T0123ABC)"
    )


def main(argv: list[str] | None = None) -> int:
    started = process_started()
    parser = argparse.ArgumentParser(prog="python -m bot", description="Docent, the docs Q&A bot.")
    commands = parser.add_subparsers(dest="command")
    ask_parser = commands.add_parser("ask", help="answer one question in the terminal")
    ask_parser.add_argument("question", nargs="+")
    ask_parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    commands.add_parser("run", help="run the Discord bot (the default)")
    commands.add_parser("sync", help="sync slash commands to Discord now")
    report_parser = commands.add_parser(
        "report", help="feedback report per Discord server and Slack workspace: top questions, gaps, disliked answers"
    )
    _scope_arguments(report_parser)
    report_parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {platform, guild_id, report}, one per server or workspace (guild_id null: DMs)",
    )
    gaps_parser = commands.add_parser(
        "gaps", help="knowledge gaps: refused, handed-off, disliked and weak answers' questions, grouped by meaning"
    )
    _scope_arguments(gaps_parser)
    gaps_parser.add_argument(
        "--since", metavar="WHEN", type=_since, help="only questions asked since: 7d, 12h, 2w or a date (2025-01-31)"
    )
    gaps_parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    learned_parser = commands.add_parser("learned", help="community answers: list, approve, reject, export")
    learned_parser.add_argument("action", choices=("list", "approve", "reject", "export"))
    learned_parser.add_argument(
        "targets", nargs="*", help="ID:VERSION as list prints it (approve), ids (reject), or a directory (export)"
    )
    learned_parser.add_argument("--all", action="store_true", help="list every answer, not only pending ones")
    forget_parser = commands.add_parser("forget", help="remove a user's stored questions, votes and answers")
    forget_parser.add_argument("user_id")
    forget_parser.add_argument("--platform", choices=("discord", "slack"), help="only this platform (default both)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings is None:
        return 2
    if args.command == "ask" or (args.command == "gaps" and args.json):
        # A terminal session, or one JSON object on stdout: only our own lines, no library chatter.
        settings = settings.model_copy(update={"log_level": "ERROR"})
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "ask":
        return run_command(ask(settings, " ".join(args.question), as_json=args.json))
    if args.command == "learned":
        export = Path(args.targets[0]) if args.action == "export" and args.targets else None
        targets = [t.partition(":") for t in args.targets] if args.action in ("approve", "reject") else []
        ids = [int(i) for i, _, _ in targets if i.isdigit()]
        versions = {int(i): v for i, _, v in targets if i.isdigit() and v}
        return run_command(community.learned(settings, args.action, ids, export, all_=args.all, versions=versions))
    if args.command == "forget":
        platforms = [args.platform] if args.platform else ["discord", "slack"]
        return run_command(community.forget(settings, args.user_id, platforms))
    if args.command == "report":
        return run_command(report.print_report(settings, as_json=args.json, platform=args.platform, space=args.space))
    if args.command == "gaps":
        run = gaps.print_gaps(settings, as_json=args.json, platform=args.platform, space=args.space, since=args.since)
        return run_command(run)
    return run_command(run_bot(settings, sync_only=args.command == "sync", started=started))


if __name__ == "__main__":
    raise SystemExit(main())
