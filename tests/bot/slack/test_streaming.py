"""How an answer is delivered on Slack under the service's real limits: a refused stream costs one reply, not the
workspace's streaming; a queued asker sees the queue while streaming; throttled progress edits are skipped, not
slept on inside the answer; chat.update progress is paced per workspace."""

from __future__ import annotations

from bot.slack.ask import Pacer
from tests.bot.slack.harness import BOB, MEMBER, texts
from tests.scripted import PacedGenerator, ScriptedGenerator


async def test_a_stream_refused_for_one_reply_leaves_streaming_on_for_the_workspace(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator(), fake={"streaming": True})
    h.slack.refuse("chat.startStream", "not_in_channel")  # this reply only: the channel, not the workspace
    first = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    assert "docs.example" in texts(await h.final(first.payload["event"]["ts"]))
    second = await h.slack.mention("C1", MEMBER, "<@UBOT> what is IVF_FLAT?")
    assert "docs.example" in texts(await h.final(second.payload["event"]["ts"]))
    starts = [args for method, args in h.slack.calls if method == "chat.startStream"]
    assert len(starts) == 2, "the next answer streams again"


async def test_a_workspace_without_the_streaming_method_is_asked_once(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator(), fake={"streaming": True})
    h.slack.refuse("chat.startStream", "unknown_method")
    for question in ("what is HNSW?", "what is IVF_FLAT?"):
        envelope = await h.slack.mention("C1", MEMBER, f"<@UBOT> {question}")
        await h.final(envelope.payload["event"]["ts"])
    assert [method for method, _ in h.slack.calls].count("chat.startStream") == 1


async def test_a_queued_asker_sees_the_queue_while_streaming(slack_harness) -> None:
    slow = PacedGenerator(["HNSW ", "builds ", "a ", "graph ", "[1]."], 0.4)
    h = await slack_harness(slow, fake={"streaming": True}, bot={"max_concurrent_answers": 1})
    first = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    second = await h.slack.mention("C1", BOB, "<@UBOT> what is HNSW again?")
    await h.final(first.payload["event"]["ts"])
    await h.final(second.payload["event"]["ts"])
    thread = second.payload["event"]["ts"]
    stream = next(m for m in h.slack.messages.values() if m.thread_ts == thread)
    appended = h.slack.appended(stream.ts)
    assert appended and "in the queue" in appended[0], appended


async def test_a_throttled_progress_edit_is_skipped_not_slept_on(slack_harness) -> None:
    """Retry-After is a minute: slept on inside the answer, the final answer would wait that minute."""
    h = await slack_harness(PacedGenerator(["HNSW ", "builds ", "a ", "graph ", "[1]."], 0.4))
    h.slack.rate_limit("chat.update", retry_after=60)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    answer = await h.final(envelope.payload["event"]["ts"], timeout=40)
    assert "docs.example" in texts(answer)


def test_progress_edits_of_one_workspace_share_its_chat_update_budget() -> None:
    now = [100.0]
    pacer = Pacer(1.2, clock=lambda: now[0])
    assert pacer.take() and not pacer.take(), "a second answer's edit in the same moment is skipped"
    now[0] += 1.2
    assert pacer.take()
    pacer.back_off(30)
    now[0] += 29
    assert not pacer.take()
    now[0] += 1.5
    assert pacer.take()
