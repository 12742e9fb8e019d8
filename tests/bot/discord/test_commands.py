"""Slash command sync: Docent's commands as Discord validates them, synced once per command set and application."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.discord.client import sync_now
from loopback.discord import FakeDiscord
from rag.settings import Settings
from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
FIRST_APP, SECOND_APP = 700000000000000001, 700000000000000002
DOCENT = {"ask", "reindex", "docent-channel", "feedback", "learned", "Teach Docent"}


async def test_python_m_bot_sync_pushes_every_command_past_discords_checks(
    make_settings: Callable[..., Settings],
) -> None:
    """The fake validates payloads as Discord does (names, descriptions, option order and counts)."""
    async with FakeDiscord() as fake:
        settings = make_settings(discord={"dev_guild_id": fake.guild_id})
        with fake.point_discordpy_here():
            await sync_now(settings, "token")
        assert {c["name"] for c in fake.synced_commands(fake.guild_id)} == DOCENT
        assert not [r for r in fake.requests if r.status >= 400]
        assert (settings.data_dir / f"commands-{fake.application_id}-{fake.guild_id}.sha256").exists()


async def test_a_new_application_on_the_same_data_dir_syncs_its_commands(harness_factory, tmp_path: Path) -> None:
    """The "commands unchanged" marker is per application: a new application (a new bot token) on the old data dir
    has none of the commands yet."""
    first = await harness_factory(ScriptedGenerator(), fake_options={"application_id": FIRST_APP})
    assert {c["name"] for c in first.fake.synced_commands()} == DOCENT
    await first.close()

    again = await harness_factory(
        ScriptedGenerator(),
        fake_options={"application_id": FIRST_APP},
        milvus={"uri": str(tmp_path / "milvus-again.db")},  # a fresh Lite path: reopening one restarts its server
    )
    assert again.fake.synced_commands() == [], "the same application and commands: not synced again"
    await again.close()

    second = await harness_factory(
        ScriptedGenerator(),
        fake_options={"application_id": SECOND_APP},
        milvus={"uri": str(tmp_path / "milvus-second.db")},
    )
    assert {c["name"] for c in second.fake.synced_commands()} == DOCENT
    assert second.bot.application_id == SECOND_APP
