"""Slash command sync: Docent's commands as Discord validates them, synced once per command set and application."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripted import ScriptedGenerator

pytestmark = pytest.mark.integration
FIRST_APP, SECOND_APP = 700000000000000001, 700000000000000002


async def test_a_new_application_on_the_same_data_dir_syncs_its_commands(harness_factory, tmp_path: Path) -> None:
    """The "commands unchanged" marker is per application: a new application (a new bot token) on the old data dir
    has none of the commands yet."""
    first = await harness_factory(ScriptedGenerator(), fake_options={"application_id": FIRST_APP})
    assert {c["name"] for c in first.fake.synced_commands()} >= {"ask", "reindex", "feedback"}
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
    assert {c["name"] for c in second.fake.synced_commands()} >= {"ask", "reindex", "feedback"}
    assert second.bot.application_id == SECOND_APP
