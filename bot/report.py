"""``python -m bot report``: the operator's feedback report in the terminal (or as JSON)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any

from bot.community import FEEDBACK_FILE
from bot.text import printable
from rag.feedback import FeedbackStore, Report, support_text
from rag.settings import Settings


async def print_report(
    settings: Settings, *, as_json: bool, limit: int = 20, platform: str | None = None, space: str | None = None
) -> int:
    """The operator's report: every Discord server, then every Slack workspace, each platform's direct messages
    after its spaces, private questions included; ``platform`` and ``space`` narrow it down."""
    path = settings.data_dir / FEEDBACK_FILE
    problem = await asyncio.to_thread(FeedbackStore.check, path)
    if problem:
        print(printable(f"error: {problem}"), file=sys.stderr)
        return 2
    reports: list[tuple[str, int | str | None, Report]] = []
    support: dict[tuple[str, int | str | None], list[dict[str, Any]]] = {}
    if path.exists():  # reading a report never creates the database
        store = await asyncio.to_thread(FeedbackStore, path)
        try:
            reports = await store.reports_by_server(limit=limit, platform=platform, space=space)
            for place, guild, _ in reports:
                if guild is not None:
                    support[(place, guild)] = await store.channel_stats(place, guild)
        finally:
            store.close()
    if as_json:  # "guild_id" is the space on either platform, the key kept from before Slack
        print(
            json.dumps(
                [
                    {
                        "platform": place,
                        "guild_id": guild,
                        "report": dataclasses.asdict(report),
                        "support_channels": support.get((place, guild), []),
                    }
                    for place, guild, report in reports
                ]
            )
        )
    elif not reports:
        print(
            "No answers recorded yet."
            if platform is None and space is None
            else "No answers recorded for that platform or space."
        )
    else:
        names = {"discord": ("Discord", "server"), "slack": ("Slack", "workspace")}

        def title(place: str, guild: int | str | None) -> str:
            name, kind = names.get(place, (place, "space"))
            return f"{name} direct messages" if guild is None else f"{name} {kind} {guild}"

        text = "\n\n".join(
            f"{title(place, guild)}\n{report.as_text(limit=limit)}{support_text(support.get((place, guild), []))}"
            for place, guild, report in reports
        )
        print(printable(text))  # askers' words: shown, never acted on by the terminal (JSON escapes them itself)
    return 0
