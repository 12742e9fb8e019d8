"""The Slack app manifest asks for what the Slack front-end uses, and its commands are the configured ones."""

from __future__ import annotations

from pathlib import Path

import yaml

from rag.settings import SlackSettings

MANIFEST = Path(__file__).resolve().parents[3] / "config" / "slack-manifest.yaml"


def test_the_manifest_enables_socket_mode_with_the_scopes_events_and_commands_docent_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "channels:history", "im:history", "users:read"} <= scopes
    assert {"assistant:write", "reactions:write"} <= scopes
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.im", "assistant_thread_started"} <= events
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    defaults = SlackSettings()
    assert commands == {
        defaults.ask_command,
        defaults.reindex_command,
        defaults.channel_command,
        defaults.learned_command,
    }


def test_the_manifest_has_the_teach_docent_shortcut_and_reaction_events() -> None:
    from bot.slack.learned import TEACH

    manifest = yaml.safe_load(MANIFEST.read_text())
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [TEACH]
    assert "reaction_added" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"reactions:read", "reactions:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
