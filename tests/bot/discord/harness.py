"""The Discord test harness: the production bot (real pipeline, indexer and services) around the loopback fake
Discord and Milvus Lite; ``harness_factory`` (conftest) builds one per call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.discord.client import DocentBot
from loopback.discord import MANAGE_THREADS, FakeDiscord, InteractionRecord, MessageRecord
from rag.settings import Settings
from tests.bot.failing_store import FailingStore
from tests.scripted import ScriptedGenerator

ALICE, BOB, ADMIN, ADMIN2 = 600000000000000001, 600000000000000002, 600000000000000003, 600000000000000004
MANAGE_GUILD = 1 << 5
SERVER_A, SERVER_B = 111111111111111111, 121212121212121212
FORUM = 999999999999999997  # a help forum (forum_harness)
SAID = "IVF_FLAT clusters vectors [1]."
DOCS = {
    "index.md": "# In-memory Index\n\n## HNSW\n\nHNSW is a graph index. `M` is the maximum degree of a node and "
    "`efConstruction` is the build-time search range; `ef` is the query-time search range.\n\n"
    "## IVF_FLAT\n\nIVF_FLAT splits vectors into `nlist` clusters. At query time it searches `nprobe` of them.\n",
    "install.md": "# Install Milvus Standalone\n\nDownload the compose file and run `docker compose up -d`.\n",
    "collections.md": "# Manage Collections\n\nCreate a collection with `create_collection`; drop it with "
    "`drop_collection`.\n",
}


def write_docs(root: Path, pages: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (root / name).write_text(text)
    return root


class Harness:
    def __init__(
        self,
        fake: FakeDiscord,
        bot: DocentBot,
        store: FailingStore,
        settings: Settings,
        closer: Callable[[Harness, bool], Awaitable[None]],
    ) -> None:
        self.fake, self.bot, self.store, self.settings = fake, bot, store, settings
        self.allowed_roles: set[int] = set()  # helper roles a support channel's hand-off may ping
        self._closer = closer

    async def ask(self, question: str, user: int = ALICE, **options: Any) -> InteractionRecord:
        return await self.fake.slash("ask", {"question": question, **options}, user_id=user)

    async def final(self, ix: InteractionRecord, marker: str = "AI-generated", timeout: float = 60) -> str:
        def found() -> str:
            return next((c for c in ix.all_contents if marker in c), "") if ix.original else ""

        return await self.fake.wait_for(found, timeout, what=f"{marker!r} in the response to {ix.name or ix.custom_id}")

    async def reply_to(self, message_id: int, timeout: float = 60) -> MessageRecord:
        return await self.fake.wait_for_message(
            lambda m: m.reply_to == message_id and "AI-generated" in m.content, timeout=timeout
        )

    async def stored(self, check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
        """Until ``check`` (a read of the feedback store) holds, once the records and replies heard so far are
        written; polled, as the fake's ``wait_for`` polls the bot's state."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.bot.services.records_written()
            if await check():
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)

    async def recorded(self, answers: int) -> None:
        """Until the store holds ``answers`` answers: an answer is recorded just after it is posted, so the fake
        sees it first."""

        async def enough() -> bool:
            return (await self.bot.services.feedback.report()).answers >= answers

        await self.stored(enough, f"{answers} answers recorded")

    async def close(self, *, keep_fake: bool = False) -> None:
        """Stop this bot now (e.g. to start another one on the same data directory); with ``keep_fake`` its fake
        Discord keeps running for the next bot (``harness_factory(..., fake=h.fake)``: a restart)."""
        await self._closer(self, keep_fake)


def help_forum(fake: FakeDiscord, forum_id: int = FORUM, *, manage_threads: bool = True) -> None:
    """A forum with the tags Solved and Bug; with ``manage_threads`` Docent's role may manage threads there (the
    README's advice for support forums with a solved tag), through the forum's permissions."""
    fake.add_forum("help", channel_id=forum_id, tags=("Solved", "Bug"))
    if manage_threads:
        fake.set_overwrite(forum_id, fake.bot_role_id, allow=MANAGE_THREADS)


def button(message: MessageRecord, part: str) -> str:
    """The custom id of the button on ``message`` whose id contains ``part`` (``":up:"``, ``"docent:solved:"``)."""
    return next(c["custom_id"] for row in message.components for c in row["components"] if part in c["custom_id"])


async def forum_harness(harness_factory: Any, **options: Any) -> Harness:
    """A bot answering every new post in the help forum ``FORUM`` (tags Solved and Bug), where the server gave
    Docent's role Manage Threads as the README says."""

    async def forum(fake: FakeDiscord) -> None:
        help_forum(fake)

    harness: Harness = await harness_factory(
        ScriptedGenerator(SAID),
        channels={str(FORUM): {"mode": "always"}},
        bot_options={"support_channels": True},
        before_start=forum,
        **options,
    )
    return harness


async def answered_post(h: Harness, user: int = ALICE) -> tuple[int, MessageRecord]:
    """``user`` opens a post in ``FORUM``; returns the post (thread) id and Docent's answer in it."""
    thread, _ = await h.fake.user_posts(user, FORUM, "IVF_FLAT clusters", "How does IVF_FLAT split vectors?")
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    return thread, answer
