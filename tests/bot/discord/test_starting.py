"""Questions while the engine starts in the background (issue 13, time to ready): /ask and mentions get "starting
up" at once, support channels stay silent, health says starting; once the engine is up everything answers."""

from __future__ import annotations

import logging

import pytest

from tests.bot.discord.harness import ALICE, BOB
from tests.scripted import over

pytestmark = pytest.mark.integration
STARTING = "still starting up"
CHANNEL = 222222222222222222  # the fake's default text channel


async def test_before_the_engine_is_up_questions_are_told_to_come_back_then_answered(starting, harness_factory) -> None:
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
    answer = await h.final(await h.ask("what is HNSW?"))  # no cooldown: the first question was not counted
    assert "graph index" in answer and "**Sources**" in answer
    assert h.bot.health()["status"] == "ok" and h.bot.health()["engine_ready"]


async def test_a_support_channel_stays_silent_while_the_engine_starts(starting, harness_factory, caplog) -> None:
    _, engine = starting
    h = await harness_factory(
        None,
        pipeline=over(engine),
        channels={str(CHANNEL): {"mode": "always", "min_confidence": 0.3}},
        bot_options={"support_channels": True},
    )
    with caplog.at_level(logging.INFO, logger="bot.discord.ask"):
        asked = await h.fake.user_says(ALICE, "How does IVF_FLAT split vectors into nlist clusters?")
        await h.fake.wait_for(
            lambda: any("engine is starting" in r.getMessage() for r in caplog.records), what="the question skipped"
        )
    assert not h.fake.user_messages[asked].thread_id and not h.fake.messages, "nobody asked: nothing said"
