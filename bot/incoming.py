"""What to do with a message, decided once for every platform.

Each platform turns its event into an ``Incoming`` (facts only: where it was said, whether it names Docent, whose
thread it is in); ``classify`` applies the rules. Being a pure function, the rules are tested without a fake
server, and Discord and Slack cannot disagree about them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rag.settings import ChannelPolicy


class Action(enum.Enum):
    IGNORE = "ignore"
    REFUSE_DM = "refuse-dm"  # a direct message where DMs are switched off: say so politely
    NEW_QUESTION = "new-question"  # a new question in a support channel, nobody asked Docent
    ASK = "ask"  # asked (a mention, a DM, a reply to Docent) or a follow-up in Docent's thread
    HELPER_REPLY = "helper-reply"  # someone other than the asker answering in a support thread


@dataclass(frozen=True)
class Incoming:
    """A message from a person (the platform drops bots' and Docent's own messages before this)."""

    text: str  # the question, Docent's mention removed
    direct: bool = False  # a direct message (or the assistant panel)
    mentioned: bool = False  # names Docent
    top_level: bool = False  # starts something: not a reply, not in a thread (a new forum post counts)
    replies_to_docent: bool = False  # a reply to one of Docent's answers
    in_docent_thread: bool = False  # in a thread where Docent answered and was not handed off
    in_support_thread: bool = False  # in (or replying to) a question Docent took unasked in a support channel
    by_asker: bool = False  # the support thread's asker wrote it


@dataclass(frozen=True)
class Rules:
    """The operator's switches that the rules read."""

    unasked: bool = True  # new questions may be taken unasked (Discord: needs the Message Content intent)
    followups_without_mention: bool = False  # un-mentioned messages in Docent's threads are answered
    direct_messages: str = "answer"  # "answer" or "refuse"


def classify(message: Incoming, policy: ChannelPolicy, rules: Rules) -> Action:
    if message.direct:
        return Action.REFUSE_DM if rules.direct_messages == "refuse" else Action.ASK
    if policy.mode == "off":
        return Action.IGNORE
    if (
        rules.unasked
        and policy.mode in ("auto", "always")
        and message.top_level
        and not message.mentioned
        and len(message.text.strip()) >= policy.min_chars
    ):
        return Action.NEW_QUESTION
    if message.in_support_thread and not message.by_asker and not message.mentioned:
        return Action.HELPER_REPLY  # people helping each other: Docent stays out, and may learn
    if message.mentioned or message.replies_to_docent:
        return Action.ASK
    if message.in_docent_thread and (rules.followups_without_mention or message.in_support_thread):
        return Action.ASK
    return Action.IGNORE
