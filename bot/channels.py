"""Which behaviour applies in a channel (issue 12): the mode set from chat with /docent-channel (kept in SQLite),
over ``config/channels.toml`` / ``DOCENT_CHANNELS``, over "mention". A channel's own entry wins over its parent's
(a Discord forum or category). Platform-neutral: ids are strings, scoped by platform."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from rag.private import private_file
from rag.settings import ChannelPolicy, Settings

MODES = ("mention", "auto", "always", "off")
FILE = "channels.sqlite3"


class Channels:
    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        self._configured = settings.channels
        self._path = path or settings.data_dir / FILE
        self._modes: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._loaded = False

    def _connect(self) -> sqlite3.Connection:
        private_file(self._path)
        db = sqlite3.connect(self._path, timeout=5, isolation_level=None)
        db.execute(
            "CREATE TABLE IF NOT EXISTS modes (platform TEXT, channel TEXT, mode TEXT, PRIMARY KEY (platform, channel))"
        )
        return db

    def _read(self) -> dict[tuple[str, str], str]:
        if not self._path.exists():
            return {}
        db = self._connect()
        try:
            return {(p, c): m for p, c, m in db.execute("SELECT platform, channel, mode FROM modes")}
        finally:
            db.close()

    async def load(self) -> None:
        """Read the modes set from chat (off the event loop), once."""
        async with self._lock:
            if not self._loaded:
                self._modes = await asyncio.to_thread(self._read)
                self._loaded = True

    async def policy(self, platform: str, *ids: str | int | None) -> ChannelPolicy:
        """The policy of the most specific of ``ids`` (channel, then parent, then category) that has one."""
        if not self._loaded:
            await self.load()
        for raw in ids:
            if raw is None or raw == "":
                continue
            key = str(raw)
            configured = self._configured.get(key)
            mode = self._modes.get((platform, key))
            if mode is not None:
                return (configured or ChannelPolicy()).model_copy(update={"mode": mode})
            if configured is not None:
                return configured
        return ChannelPolicy()

    async def unasked(self, platform: str) -> list[str]:
        """Channels of ``platform`` set to answer unasked (auto/always). Config ids carry no platform: Discord's are
        numbers, Slack's start with a letter."""
        await self.load()
        numeric = platform == "discord"
        ids = {
            key
            for key, policy in self._configured.items()
            if policy.mode in ("auto", "always") and key.isdigit() == numeric
        }
        ids |= {c for (p, c), mode in self._modes.items() if p == platform and mode in ("auto", "always")}
        ids -= {c for (p, c), mode in self._modes.items() if p == platform and mode not in ("auto", "always")}
        return sorted(ids)

    async def set_mode(self, platform: str, channel: str | int, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        key = (platform, str(channel))

        def write() -> None:
            db = self._connect()
            try:
                db.execute("INSERT OR REPLACE INTO modes VALUES (?, ?, ?)", (*key, mode))
            finally:
                db.close()

        async with self._lock:
            await asyncio.to_thread(write)
            self._modes[key] = mode


def describe(policy: ChannelPolicy) -> str:
    """One line for /docent-channel."""
    sources = ", ".join(policy.sources) if policy.sources else "all sources"
    extra = (
        f", answers unasked at confidence ≥ {policy.min_confidence:.2f}, hand-off: {policy.handoff}"
        if policy.mode == "auto"
        else ""
    )
    return f"Mode here: {policy.mode} ({sources}{extra}). Modes: mention, auto, always, off."
