"""Questions while the engine starts in the background: /ask and mentions are told "your answer will follow" and
then answered when the engine is up; support channels post nothing until the answer; health says starting."""

from __future__ import annotations

import pytest

from tests.bot.discord.harness import ALICE, BOB
from tests.scripted import over

pytestmark = pytest.mark.integration
STARTING = "your answer will follow"
CHANNEL = 222222222222222222  # the fake's default text channel


async def test_questions_before_the_engine_is_up_are_told_then_answered(starting, harness_factory) -> None:
    gated, engine = starting
    h = await harness_factory(None, pipeline=over(engine), bot={"user_cooldown_s": 60})
    health = h.bot.health()
    assert health["status"] == "starting" and health["engine_alive"] and not health["engine_ready"]

    ix = await h.ask("what is HNSW?")
    said = await h.final(ix, marker=STARTING)
    assert "error id" not in said and "queue" not in said
    asked = await h.fake.user_says(BOB, "what is HNSW?", mention_bot=True)
    reply = await h.fake.wait_for_message(lambda m: m.reply_to == asked and STARTING in m.content, timeout=60)
    assert "error id" not in reply.content
    assert h.bot.services.admission.running == 0 and h.bot.services.admission.waiting == 0

    gated.open()
    await engine.wait()
    answer = await h.final(ix)  # the same /ask, answered once the engine is up: nothing dropped
    assert "graph index" in answer and "**Sources**" in answer
    mention = await h.fake.wait_for(
        lambda: "AI-generated" in h.fake.messages[reply.id].content and h.fake.messages[reply.id], what="the mention"
    )
    assert "graph index" in mention.content, "the 'starting' reply became the answer"
    assert h.bot.health()["status"] == "ok" and h.bot.health()["engine_ready"]


async def test_a_support_channel_question_is_answered_once_the_engine_is_up(starting, harness_factory) -> None:
    gated, engine = starting
    h = await harness_factory(
        None,
        pipeline=over(engine),
        channels={str(CHANNEL): {"mode": "always", "min_confidence": 0.3}},
        bot_options={"support_channels": True},
    )
    asked = await h.fake.user_says(ALICE, "How does IVF_FLAT split vectors into nlist clusters?")
    assert not h.fake.user_messages[asked].thread_id and not h.fake.messages, "nothing before the answer"
    gated.open()
    await engine.wait()
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].thread_id, what="a thread under the question")
    thread = h.fake.user_messages[asked].thread_id
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    assert STARTING not in answer.content and all(STARTING not in m.content for m in h.fake.messages.values())
