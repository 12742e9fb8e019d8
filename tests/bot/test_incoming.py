"""The message rules, once for every platform, without a fake server."""

from __future__ import annotations

import pytest

from bot.incoming import Action, Incoming, Rules, classify
from rag.settings import ChannelPolicy

MENTION = ChannelPolicy()
AUTO = ChannelPolicy(mode="auto", min_chars=15)
OFF = ChannelPolicy(mode="off")
QUESTION = "How do I create a collection with a custom schema?"


@pytest.mark.parametrize(
    ("message", "policy", "rules", "action"),
    [
        (Incoming("hi", direct=True), MENTION, Rules(), Action.ASK),
        (Incoming("hi", direct=True), MENTION, Rules(direct_messages="refuse"), Action.REFUSE_DM),
        (Incoming("hi", direct=True), OFF, Rules(), Action.ASK),  # a DM has no channel policy
        (Incoming(QUESTION, mentioned=True), OFF, Rules(), Action.IGNORE),
        (Incoming(QUESTION, mentioned=True), MENTION, Rules(), Action.ASK),
        (Incoming(QUESTION, top_level=True), MENTION, Rules(), Action.IGNORE),
        (Incoming(QUESTION, top_level=True), AUTO, Rules(), Action.NEW_QUESTION),
        (Incoming(QUESTION, top_level=True), ChannelPolicy(mode="always"), Rules(), Action.NEW_QUESTION),
        (Incoming("too short?", top_level=True), AUTO, Rules(), Action.IGNORE),
        (Incoming(QUESTION, top_level=True), AUTO, Rules(unasked=False), Action.IGNORE),  # no Message Content
        (Incoming(QUESTION, top_level=True, mentioned=True), AUTO, Rules(), Action.ASK),  # asked, not unasked
        (Incoming(QUESTION, replies_to_docent=True), MENTION, Rules(), Action.ASK),
        (Incoming(QUESTION, in_docent_thread=True), MENTION, Rules(), Action.IGNORE),
        (Incoming(QUESTION, in_docent_thread=True), MENTION, Rules(followups_without_mention=True), Action.ASK),
        # a support thread: the asker's follow-ups are answered, others are people helping
        (Incoming(QUESTION, in_docent_thread=True, in_support_thread=True, by_asker=True), AUTO, Rules(), Action.ASK),
        (Incoming(QUESTION, in_support_thread=True, by_asker=True), AUTO, Rules(), Action.IGNORE),  # handed off
        (Incoming(QUESTION, in_docent_thread=True, in_support_thread=True), AUTO, Rules(), Action.HELPER_REPLY),
        (Incoming(QUESTION, in_support_thread=True, mentioned=True), AUTO, Rules(), Action.ASK),
        (Incoming(QUESTION, in_support_thread=True), OFF, Rules(), Action.IGNORE),
    ],
)
def test_classify(message: Incoming, policy: ChannelPolicy, rules: Rules, action: Action) -> None:
    assert classify(message, policy, rules) is action
