"""Questions on Slack while the engine starts in the background: mentions and the ask command are told "your
answer will follow" and then answered when the engine is up; support channels post nothing until the answer."""

from __future__ import annotations

import pytest

from tests.bot.slack.harness import MEMBER, texts
from tests.scripted import over

pytestmark = pytest.mark.integration
STARTING = "your answer will follow"


async def test_questions_before_the_engine_is_up_are_told_then_answered(starting, slack_harness) -> None:
    gated, engine = starting
    h = await slack_harness(None, pipeline=over(engine), bot={"user_cooldown_s": 60})
    assert h.services.health({"slack": True})["status"] == "starting"

    mention = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    thread = mention.payload["event"]["ts"]
    said = await h.until(lambda: [m for m in h.slack.messages.values() if m.thread_ts == thread and STARTING in m.text])
    assert "error id" not in said[0].text

    private = await h.slack.slash("/ask", "private what is HNSW?", user="U_OTHER")
    told = await h.until(lambda: [r for r in h.slack.responses_to(private) if STARTING in str(r)])
    assert "error id" not in str(told[-1])
    assert h.services.admission.running == 0 and h.services.admission.waiting == 0

    gated.open()
    await engine.wait()
    answer = await h.final(thread)  # the same mention, answered once the engine is up: nothing dropped
    assert "docs.example/hnsw.md" in texts(answer)
    await h.until(lambda: [r for r in h.slack.responses_to(private) if "docs.example/hnsw.md" in str(r)])
    health = h.services.health({"slack": True})
    assert health["status"] == "ok" and health["engine_ready"] and health["engine_alive"]


async def test_a_support_channel_question_is_answered_once_the_engine_is_up(starting, slack_harness) -> None:
    gated, engine = starting
    h = await slack_harness(None, pipeline=over(engine), channels={"C1": {"mode": "always", "min_confidence": 0.3}})
    asked = await h.slack.message("C1", MEMBER, "How does IVF_FLAT split vectors into nlist clusters?")
    ts = asked.payload["event"]["ts"]
    assert not h.slack.messages and not h.slack.reactions, "nothing before the answer"
    gated.open()
    await engine.wait()
    answer = await h.final(ts)
    assert "docs.example/hnsw.md" in texts(answer) or "AI-generated" in texts(answer)
    assert all(STARTING not in m.text for m in h.slack.messages.values())
