"""Questions on Slack while the engine starts in the background (issue 13, time to ready): mentions and the ask
command get "starting up" at once, support channels stay silent, health says starting; then answers as usual."""

from __future__ import annotations

import logging

import pytest

from tests.bot.slack.harness import MEMBER, texts
from tests.scripted import over

pytestmark = pytest.mark.integration
STARTING = "still starting up"


async def test_before_the_engine_is_up_questions_are_told_to_come_back_then_answered(starting, slack_harness) -> None:
    gated, engine = starting
    h = await slack_harness(None, pipeline=over(engine), bot={"user_cooldown_s": 60})
    assert h.services.health({"slack": True})["status"] == "starting"

    mention = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    thread = mention.payload["event"]["ts"]
    said = await h.until(lambda: [m for m in h.slack.messages.values() if m.thread_ts == thread and STARTING in m.text])
    assert "error id" not in said[0].text

    private = await h.slack.slash("/ask", "private what is HNSW?", user=MEMBER)
    told = await h.until(lambda: [r for r in h.slack.responses_to(private) if STARTING in str(r)])
    assert "error id" not in str(told[-1])
    assert h.services.admission.running == 0 and h.services.admission.waiting == 0

    gated.open()
    await engine.wait()
    again = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")  # no cooldown: nothing was counted
    answer = await h.final(again.payload["event"]["ts"])
    assert "docs.example/hnsw.md" in texts(answer)
    health = h.services.health({"slack": True})
    assert health["status"] == "ok" and health["engine_ready"] and health["engine_alive"]


async def test_a_support_channel_stays_silent_while_the_engine_starts(starting, slack_harness, caplog) -> None:
    _, engine = starting
    h = await slack_harness(None, pipeline=over(engine), channels={"C1": {"mode": "always", "min_confidence": 0.3}})
    with caplog.at_level(logging.INFO, logger="bot.slack.ask"):
        await h.slack.message("C1", MEMBER, "How does IVF_FLAT split vectors into nlist clusters?")
        await h.until(lambda: any("engine is starting" in r.getMessage() for r in caplog.records))
    assert not h.slack.messages and not h.slack.reactions, "nobody asked: nothing said"
