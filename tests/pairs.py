"""Community answers captured for tests: one Discord pair's worth of defaults, each overridable."""

from __future__ import annotations

from typing import Any

from rag.learned import LearnedStore

DISCORD = {
    "platform": "discord",
    "space": "1",
    "private": False,
    "channel": "2",
    "thread": "3",
    "question": "How?",
    "answer": "Like this.",
    "link": "https://discord.com/channels/1/2/3",
    "author": "ada",
    "author_id": 10,
    "asker_id": 11,
}
SLACK = {
    **DISCORD,
    "platform": "slack",
    "space": "T1",
    "channel": "C1",
    "thread": "t1",
    "link": "https://example.slack.com/archives/C1/p1",
    "author_id": "U1",
    "asker_id": "U2",
}


async def capture(store: LearnedStore, base: dict[str, Any] = DISCORD, **overrides: Any) -> int:
    """A pending pair of ``base``'s fields with ``overrides``; its id."""
    return await store.capture(**{**base, **overrides})
