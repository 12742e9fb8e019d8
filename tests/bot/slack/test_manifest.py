"""The Slack app manifest asks for what the Slack front-end uses, and its commands are the configured ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_every_event_the_app_listens_to_is_subscribed_and_every_subscription_is_listened_to(
    slack_app: tuple[Any, Any, set[str]],
) -> None:
    """Slack sends only subscribed events (a listener without one never runs), and redelivers events nothing
    acknowledges. ``message`` is subscribed per kind of conversation (message.channels, message.im, …)."""
    _, _, listened = slack_app
    assert {"app_mention", "message", "assistant_thread_context_changed"} <= listened, "the listeners were seen"
    subscribed = set(yaml.safe_load(MANIFEST.read_text())["settings"]["event_subscriptions"]["bot_events"])
    assert {e.split(".")[0] for e in subscribed} == listened
