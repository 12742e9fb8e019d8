"""Slack formatting: mrkdwn escaped so nothing in an answer can notify anyone, sources as ``<url|title>`` links,
and Block Kit's limits (3,000 characters per section block, 50 blocks, 40,000 characters of message text)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.text import sendable, split_message
from rag.models import Answer, Citation

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
TEXT_LIMIT = 40_000
FOOTER = "AI-generated from the docs; it can be wrong. Check the sources."
VOTE_UP, VOTE_DOWN, SOLVED = "docent_vote_up", "docent_vote_down", "docent_solved"
CUT_NOTE = "_(The answer was cut here: it is too long for one Slack message.)_"
# Typed words Slack clients may turn into broadcasts; a word joiner after "@" keeps them words.
_BROADCAST_WORD = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def escape(text: str) -> str:
    """Slack's three escapes (``&``, ``<``, ``>``). Every control sequence — ``<!channel>``, ``<!here>``,
    ``<!subteam^…>``, ``<@U…>``, ``<#C…>``, ``<url|label>`` — in model output or a quoted question becomes plain
    text, so the only links and mentions in a reply are the ones Docent adds itself."""
    text = sendable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST_WORD.sub("@\u2060\\1", text)


def mrkdwn(text: str) -> str:
    """Model markdown as Slack mrkdwn: escaped, and ``**bold**`` as ``*bold*``."""
    return _BOLD.sub(r"*\1*", escape(text))


def link(url: str, label: str) -> str:
    """A ``<url|label>`` link whose parts cannot close it early or start another control sequence."""
    safe_label = escape(label).replace("|", "¦")[:180] or "link"
    safe_url = url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe_url}|{safe_label}>"


def format_sources(citations: Sequence[Citation], heading: str = "Sources") -> str:
    """Numbered sources; a page without a URL (a folder source without base_url) is its title, unlinked."""
    lines = [f"*{heading}*"]
    for citation in citations:
        shown = link(citation.url, citation.title) if citation.url else escape(citation.title)
        lines.append(f"{citation.number}. {shown}")
    return "\n".join(lines)


def solved_value(channel: str, thread: str, asker: str) -> str:
    """The "This solved it" button's value: the support thread and who asked, so the button works after a
    restart (Docent's memory of threads doesn't survive one; the message does)."""
    return f"{channel}|{thread}|{asker}"


def parse_solved(value: str) -> tuple[str, str, str | None]:
    """(channel, thread, asker) from a button's value; the asker is None on buttons posted before it was there."""
    channel, _, rest = value.partition("|")
    thread, has_asker, asker = rest.partition("|")
    return channel, thread, asker if has_asker else None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def answer_blocks(answer: Answer, *, feedback_id: str = "", solved: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The reply as (notification text, blocks): answer sections, sources, the AI notice and, when there is
    something to vote on, 👍/👎 buttons carrying ``feedback_id`` (and, on a support question, "This solved it"
    carrying ``solved``, a ``solved_value``). Never more than Slack accepts."""
    body = split_message(mrkdwn(answer.text), SECTION_LIMIT)
    sources = (
        split_message(format_sources(answer.citations, answer.sources_heading), SECTION_LIMIT)
        if answer.citations
        else []
    )
    tail: list[dict[str, Any]] = [_section(part) for part in sources]
    tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": FOOTER}]})
    if feedback_id and not answer.refused:
        tail.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": VOTE_UP,
                        "value": feedback_id,
                        "text": {"type": "plain_text", "text": "👍 Helpful"},
                    },
                    {
                        "type": "button",
                        "action_id": VOTE_DOWN,
                        "value": feedback_id,
                        "text": {"type": "plain_text", "text": "👎 Not helpful"},
                    },
                ],
            }
        )
        if solved:
            tail[-1]["elements"].append(
                {
                    "type": "button",
                    "action_id": SOLVED,
                    "value": solved,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "✅ This solved it"},
                }
            )
    room = MAX_BLOCKS - len(tail)
    if len(body) > room:
        body = [*body[: room - 1], CUT_NOTE]
    blocks = [_section(part) for part in body] + tail
    fallback = "\n\n".join(body)
    if len(fallback) > TEXT_LIMIT:
        fallback = fallback[: TEXT_LIMIT - 1] + "…"
    return fallback, blocks
