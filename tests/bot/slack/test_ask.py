"""Slack end to end: the real slack-bolt app and slack_sdk over the loopback fake Slack, the shared services, real
Milvus Lite and MiniLM retrieval, and either the shared vLLM engine (``slow``) or a scripted generator where a test
needs exact model output."""

from __future__ import annotations

import pytest

from bot.services import SEARCHING
from bot.slack.ask import parse_ask, question_text
from bot.slack.render import VOTE_DOWN, VOTE_UP
from tests.bot.slack.harness import ADMIN, MEMBER, texts
from tests.scripted import PacedGenerator, ScriptedGenerator

pytestmark = pytest.mark.integration


def test_the_question_is_the_mention_text_without_the_mention_and_escapes() -> None:
    assert question_text("<@UBOT> is a &lt; b &amp;&amp; c?") == "is a < b && c?"


def test_ask_takes_private_as_its_first_word() -> None:
    assert parse_ask("private how do I index?") == ("how do I index?", True)
    assert parse_ask("Private") == ("", True)
    assert parse_ask("is private data encrypted?") == ("is private data encrypted?", False)


@pytest.mark.slow
async def test_a_mention_gets_a_threaded_answer_with_sources_buttons_and_no_pings(slack_harness, generator) -> None:
    h = await slack_harness(generator)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what does M mean in HNSW?")
    await h.slack.wait_acked(envelope)
    thread = envelope.payload["event"]["ts"]
    answer = await h.final(thread)
    assert answer.versions >= 2, f"posted as {SEARCHING!r} at once, then edited into the answer"
    assert "<https://docs.example/hnsw.md#hnsw|HNSW>" in texts(answer)
    buttons = [e["action_id"] for b in answer.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [VOTE_UP, VOTE_DOWN]
    assert h.slack.notifications == []


async def test_model_output_cannot_ping_and_a_6000_char_code_answer_fits(slack_harness) -> None:
    code = "\n".join(f"print({i})  # {'x' * 30}" for i in range(150))
    pings = "<!channel> <!here> <@U999> <!subteam^S1|devs>"
    model = ScriptedGenerator(f"{pings} Try this [1]:\n\n```python\n{code}\n```\n")
    h = await slack_harness(model)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> <!everyone> what does M mean in HNSW?")
    answer = await h.final(envelope.payload["event"]["ts"])
    body = texts(answer)
    assert len(body) > 6000 and all(f"print({i})" in body for i in range(150))
    sections = [b["text"]["text"] for b in answer.blocks if b["type"] == "section"]
    assert all(s.count("```") % 2 == 0 for s in sections), "every section closes the code blocks it opens"
    assert h.slack.notifications == [], "nothing the bot posted can notify anyone"


async def test_a_thread_follow_up_uses_the_earlier_turn_only_in_the_bots_threads(slack_harness) -> None:
    model = ScriptedGenerator("IVF_FLAT splits vectors into clusters [1].")
    h = await slack_harness(model)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> How does IVF_FLAT work?")
    thread = envelope.payload["event"]["ts"]
    first = await h.final(thread)
    await h.slack.message("C1", MEMBER, "which parameters control it?", thread_ts=thread)
    await h.final(thread, after=1)
    assert len(model.prompts) == 2
    assert {"role": "user", "content": "How does IVF_FLAT work?"} in model.prompts[1], "the first question"
    assert any(m["role"] == "assistant" and "IVF_FLAT" in m["content"] for m in model.prompts[1])
    assert "IVF_FLAT splits" in texts(first)

    # People talking in their own thread are left alone, and so is a top-level message.
    other = await h.slack.message("C1", MEMBER, "lunch?")
    reply = await h.slack.message("C1", MEMBER, "what is nprobe?", thread_ts=other.payload["event"]["ts"])
    await h.slack.wait_acked(reply)
    marker = await h.slack.mention("C1", MEMBER, "<@UBOT> what is nlist?")
    await h.final(marker.payload["event"]["ts"])
    assert len(model.prompts) == 3, "only the mention was answered"


async def test_a_duplicate_envelope_is_answered_once(slack_harness) -> None:
    model = ScriptedGenerator()
    h = await slack_harness(model)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    thread = envelope.payload["event"]["ts"]
    await h.final(thread)
    again = await h.slack.deliver("events_api", envelope.payload)  # Slack's retry after a lost ack
    await h.slack.wait_acked(again)
    marker = await h.slack.mention("C1", MEMBER, "<@UBOT> what is IVF_FLAT?")
    await h.final(marker.payload["event"]["ts"])
    assert len(model.prompts) == 2
    assert len([m for m in h.slack.messages.values() if m.thread_ts == thread]) == 1


async def test_an_edited_question_is_answered_once_and_an_edit_that_asks_docent_is_answered(slack_harness) -> None:
    """Editing a message that mentions Docent makes Slack send ``app_mention`` again (same ts, new event id)."""
    model = ScriptedGenerator()
    h = await slack_harness(model)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    thread = envelope.payload["event"]["ts"]
    await h.final(thread)
    for sent in await h.slack.edit("C1", thread, "<@UBOT> what is HNSW, exactly?"):
        await h.slack.wait_acked(sent)
    plain = await h.slack.message("C1", MEMBER, "what is IVF_FLAT?")  # not asked of Docent, until the edit
    ts = plain.payload["event"]["ts"]
    [mentioned, _] = await h.slack.edit("C1", ts, "<@UBOT> what is IVF_FLAT?")
    await h.final(ts)
    assert "edited" in mentioned.payload["event"]
    assert len(model.prompts) == 2, "the edited question was not answered again"
    assert len([m for m in h.slack.messages.values() if m.thread_ts == thread]) == 1


async def test_a_question_with_a_file_and_a_follow_up_also_sent_to_the_channel_are_answered(slack_harness) -> None:
    """Slack gives these user messages a subtype (``file_share``, ``thread_broadcast``); they are still questions."""
    model = ScriptedGenerator()
    h = await slack_harness(model)
    direct = await h.slack.message("D1", MEMBER, "what is HNSW?", channel_type="im", subtype="file_share")
    await h.final(direct.payload["event"]["ts"])
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> How does IVF_FLAT work?")
    thread = envelope.payload["event"]["ts"]
    await h.final(thread)
    await h.slack.message("C1", MEMBER, "which parameters control it?", thread_ts=thread, subtype="thread_broadcast")
    await h.final(thread, after=1)
    only_a_file = await h.slack.message("D1", MEMBER, "", channel_type="im", subtype="file_share")
    marker = await h.slack.message("D1", MEMBER, "what is nlist?", channel_type="im")
    await h.final(marker.payload["event"]["ts"])
    assert [p[-1]["content"].rsplit("Question: ", 1)[-1] for p in model.prompts] == [
        "what is HNSW?",
        "How does IVF_FLAT work?",
        "which parameters control it?",
        "what is nlist?",
    ]
    unread = only_a_file.payload["event"]["ts"]
    assert not [m for m in h.slack.messages.values() if m.thread_ts == unread], "a file alone is not a question"


@pytest.mark.slow
async def test_ask_in_a_thread_under_the_askers_line_and_private_to_the_asker(slack_harness, generator) -> None:
    h = await slack_harness(generator)
    envelope = await h.slack.slash("/ask", "what is HNSW?", user=MEMBER)
    await h.slack.wait_acked(envelope)
    asked = await h.until(lambda: next((m for m in h.slack.messages.values() if "asked" in m.text), None))
    assert "what is HNSW?" in asked.text and "<@" not in asked.text, "the asker is named, not pinged"
    answer = await h.final(asked.ts)
    assert "docs.example" in texts(answer)

    private = await h.slack.slash("/ask", "private what is IVF_FLAT?", user=MEMBER)
    await h.slack.wait_acked(private)
    assert private.response and SEARCHING in private.response.get("text", ""), "acknowledged at once, privately"
    responses = await h.until(lambda: [r for r in h.slack.responses_to(private) if r.get("blocks")])
    assert responses[-1]["replace_original"] and responses[-1].get("response_type", "ephemeral") == "ephemeral"
    assert "docs.example/ivf.md" in str(responses[-1]["blocks"])
    assert not any("IVF_FLAT?" in m.text for m in h.slack.messages.values()), "nothing private went to the channel"


async def test_ask_in_a_channel_the_bot_is_not_in_answers_the_asker_privately(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    envelope = await h.slack.slash("/ask", "what is HNSW?", user=MEMBER, channel="C2")
    responses = await h.until(lambda: [r for r in h.slack.responses_to(envelope) if r.get("blocks")])
    assert "/invite" in str(responses[-1]["blocks"]) and "docs.example/hnsw.md" in str(responses[-1]["blocks"])


async def test_reindex_is_refused_to_a_member_and_run_for_an_admin(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    refused = await h.slack.slash("/reindex", "", user=MEMBER)
    await h.slack.wait_acked(refused)
    said = await h.until(lambda: h.slack.responses_to(refused))
    assert "admins" in said[-1]["text"] and h.services.last_index_report is None
    ran = await h.slack.slash("/reindex", "", user=ADMIN)
    await h.slack.wait_acked(ran)
    summary = await h.until(lambda: next((m for m in h.slack.messages.values() if "Reindex done" in m.text), None))
    assert "unchanged" in summary.text and h.services.last_index_report is not None
    assert summary.versions >= 2, "posted as progress first, then the summary"


async def test_feedback_buttons_are_recorded_for_the_workspace(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    answer = await h.final(envelope.payload["event"]["ts"])
    click = await h.slack.click(answer.ts, VOTE_DOWN, user=ADMIN)
    await h.slack.wait_acked(click)
    thanks = await h.until(lambda: h.slack.responses_to(click))
    assert "Thanks" in thanks[-1]["text"]
    report = await h.services.feedback.report(guild_id=h.slack.team_id, platform="slack")
    assert report.answers == 1 and report.not_helpful == 1
    assert (await h.services.feedback.report(guild_id=h.slack.team_id)).answers == 0, "not a Discord server's"


@pytest.mark.slow
async def test_twenty_concurrent_mentions_are_all_answered(slack_harness, generator) -> None:
    h = await slack_harness(generator, bot={"max_concurrent_answers": 4})
    envelopes = [await h.slack.mention("C1", f"U{i:03d}", f"<@UBOT> question {i} about HNSW?") for i in range(20)]
    for envelope in envelopes:
        await h.final(envelope.payload["event"]["ts"])
    assert h.services.admission.peak_waiting > 0, "with 4 slots and 20 questions some had to queue"
    assert h.slack.notifications == []
    assert h.slack.throttled == [], "progress edits leave chat.update's budget to the answers"


async def test_a_store_outage_is_worded_and_the_next_mention_is_answered(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    h.store.fail_next = 1
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    thread = envelope.payload["event"]["ts"]
    worded = await h.until(
        lambda: next((m for m in h.slack.messages.values() if m.thread_ts == thread and "error id" in m.text), None)
    )
    assert "unavailable" in worded.text and "Traceback" not in worded.text
    again = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    await h.final(again.payload["event"]["ts"])


async def test_the_assistant_panel_suggests_prompts_and_answers_under_a_status(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    started = await h.slack.assistant_thread_started(MEMBER, channel="D1")
    await h.slack.wait_acked(started)
    suggested = await h.until(lambda: h.slack.suggested)
    assert suggested[-1]["prompts"][0]["message"] == "How do I get started?"
    thread = started.payload["event"]["assistant_thread"]["thread_ts"]
    await h.slack.message("D1", MEMBER, "what is HNSW?", thread_ts=thread, channel_type="im")
    answer = await h.final(thread)
    assert "docs.example/hnsw.md" in texts(answer)
    assert any(s["status"] == SEARCHING for s in h.slack.statuses)


async def test_another_workspace_is_ignored_when_workspaces_are_listed(slack_harness) -> None:
    model = ScriptedGenerator()
    h = await slack_harness(model, slack={"allowed_team_ids": ["TOTHER"]})
    envelope = await h.slack.slash("/ask", "what is HNSW?", user=MEMBER)
    await h.slack.wait_acked(envelope)
    assert envelope.response and "not enabled" in envelope.response.get("text", "")
    mention = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    await h.slack.wait_acked(mention)
    assert model.prompts == [] and not h.slack.messages


async def test_answers_stream_through_slacks_streaming_api_where_the_workspace_has_it(slack_harness) -> None:
    lines = ["HNSW builds a graph [1].\n", "`M` is the maximum degree <!channel>.\n", "Raise `efConstruction` [1].\n"]
    h = await slack_harness(PacedGenerator(lines, 0.25), fake={"streaming": True})
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what does M mean in HNSW?")
    answer = await h.final(envelope.payload["event"]["ts"])
    methods = [method for method, _ in h.slack.calls if method.startswith("chat.")]
    assert methods[0] == "chat.startStream", "the reply is a stream from the start"
    assert "chat.appendStream" in methods and "chat.postMessage" not in methods
    assert methods.index("chat.stopStream") < len(methods) - 1 and methods[-1] == "chat.update"
    start = next(args for method, args in h.slack.calls if method == "chat.startStream")
    assert start["recipient_user_id"] == MEMBER and start["recipient_team_id"] == h.slack.team_id
    assert "maximum degree" in texts(answer) and any(b["type"] == "actions" for b in answer.blocks)
    assert h.slack.notifications == [], "streamed text is escaped too"


async def test_a_workspace_without_streaming_falls_back_to_edits_and_is_asked_once(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    for question in ("what is HNSW?", "what is IVF_FLAT?"):
        envelope = await h.slack.mention("C1", MEMBER, f"<@UBOT> {question}")
        answer = await h.final(envelope.payload["event"]["ts"])
        assert answer.versions >= 2 and "docs.example" in texts(answer)
    assert [method for method, _ in h.slack.calls].count("chat.startStream") == 1


async def test_a_rate_limited_post_is_retried_after_retry_after(slack_harness) -> None:
    h = await slack_harness(ScriptedGenerator())
    h.slack.rate_limit("chat.update", retry_after=1)
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    answer = await h.final(envelope.payload["event"]["ts"])
    assert "docs.example" in texts(answer)
    updates = [method for method, _ in h.slack.calls if method == "chat.update"]
    assert len(updates) >= 2, "the 429 was answered and the same update sent again"


async def test_mentioned_into_a_thread_docent_reads_what_was_said_before(slack_harness) -> None:
    """A member mentions Docent in a thread between people, with no question of their own: the thread is it."""
    model = ScriptedGenerator("IVF_FLAT clusters vectors [1].")
    h = await slack_harness(model)
    opened = await h.slack.message("C1", MEMBER, "My IVF_FLAT index build fails with nlist 0")
    root = opened.payload["event"]["ts"]
    await h.slack.message("C1", ADMIN, "did you set nlist? <!channel> <@U42>", thread_ts=root)
    await h.slack.mention("C1", ADMIN, "<@UBOT>", thread_ts=root)
    await h.final(root)
    asked = model.prompts[0][-1]["content"]
    said = asked.split("Earlier in this thread:\n", 1)[1].split("\n\nSources:", 1)[0].splitlines()
    assert said == ["Asker: My IVF_FLAT index build fails with nlist 0", "Member: did you set nlist? @someone @someone"]
    assert asked.endswith("Question: What is the answer to the question asked in this thread?")
    assert h.slack.notifications == []


async def test_a_one_paragraph_answer_shows_its_first_words_while_it_is_written(slack_harness) -> None:
    """A real model writes a three-sentence answer as one line over many seconds: the stream shows words as they
    come, not the whole line at the end."""
    words = ["HNSW ", "builds ", "a ", "graph ", "of ", "layers ", "[1]."]
    h = await slack_harness(PacedGenerator(words, 0.3), fake={"streaming": True})
    envelope = await h.slack.mention("C1", MEMBER, "<@UBOT> what is HNSW?")
    await h.final(envelope.payload["event"]["ts"])
    appended = h.slack.appended()
    assert len(appended) >= 2 and appended[0].startswith("HNSW "), appended
    assert "".join(appended) in "HNSW builds a graph of layers [1].", "only whole words, in order"
