"""Slack formatting: nothing posted can notify anyone, links are only the sources, Block Kit limits hold."""

from __future__ import annotations

import re

from bot.slack.render import (
    CUT_NOTE,
    FOOTER,
    MAX_BLOCKS,
    SECTION_LIMIT,
    TEXT_LIMIT,
    VOTE_UP,
    answer_blocks,
    escape,
    format_sources,
    link,
    parse_solved,
    solved_value,
)
from rag.models import Answer, Citation

# What Slack would turn into a notification or a link: <!…>, <@…>, <#…>, <url|…>, and typed broadcast words.
_CONTROL = re.compile(r"<[!@#]|<https?:|(?<![\w\u2060])@(channel|here|everyone)\b", re.IGNORECASE)


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            if element.get("type") == "mrkdwn":
                out.append(element["text"])
    return out


def test_every_mention_and_broadcast_in_model_output_is_defused() -> None:
    hostile = "Hi <!channel> and <!here|here>, ping <@U123ABC> in <#C42|general>, <!subteam^S1> @here @Everyone"
    text = escape(hostile)
    assert not _CONTROL.search(text), text
    assert "&lt;!channel&gt;" in text and "@\u2060here" in text


def test_links_come_only_from_the_sources_and_cannot_break_out() -> None:
    answer = Answer(
        "q",
        "See <https://evil.example|docs> and [this](https://evil.example) [1].",
        (Citation(1, "Index | <HNSW> & more", "https://milvus.io/docs/index.md#HNSW x"),),
    )
    fallback, blocks = answer_blocks(answer, feedback_id="a1")
    texts = _texts(blocks)
    links = [m for t in texts for m in re.findall(r"<(https?://[^|>]+)\|", t)]
    assert links == ["https://milvus.io/docs/index.md#HNSW%20x"]
    assert link("https://x/p", "a|b>c") == "<https://x/p|a¦b&gt;c>"
    assert "<https://evil" not in fallback


def test_sources_and_footer_and_vote_buttons() -> None:
    answer = Answer("q", "It **works** [1].", (Citation(1, "Page", "https://x/p"), Citation(2, "Local", "")))
    _, blocks = answer_blocks(answer, feedback_id="answer-7")
    texts = _texts(blocks)
    assert texts[0] == "It *works* [1]."
    assert texts[1] == "*Sources*\n1. <https://x/p|Page>\n2. Local"
    assert texts[-1] == FOOTER
    buttons = blocks[-1]["elements"]
    assert buttons[0]["action_id"] == VOTE_UP and {b["value"] for b in buttons} == {"answer-7"}
    refused = Answer("q", "Not in the docs.", (Citation(1, "Page", "https://x/p"),), refused=True)
    _, refused_blocks = answer_blocks(refused, feedback_id="answer-8")
    assert "*Closest pages*" in _texts(refused_blocks)[1]
    assert all(b["type"] != "actions" for b in refused_blocks), "nothing to vote on in a refusal"
    assert format_sources([]) == "*Sources*"


def test_a_6000_character_code_heavy_answer_splits_into_sections_with_balanced_fences() -> None:
    code = "\n".join(f"client.search(collection_name='c', data=[v{i}], limit=10)  # <@U{i}>" for i in range(90))
    answer = Answer("q", f"Try this:\n\n```python\n{code}\n```\n\nDone [1].", (Citation(1, "Search", "https://x/s"),))
    assert len(answer.text) > 6000
    fallback, blocks = answer_blocks(answer, feedback_id="a")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) >= 3 and all(len(s) <= SECTION_LIMIT for s in sections)
    body = sections[:-1]
    assert all(sum(1 for ln in s.splitlines() if ln.strip().startswith("```")) % 2 == 0 for s in body)
    assert not any(_CONTROL.search(s) for s in body), "the only link is the source, in the last section"
    assert len(fallback) <= TEXT_LIMIT


def test_an_answer_longer_than_fifty_blocks_is_cut_with_a_note() -> None:
    answer = Answer("q", "\n\n".join("word " * 500 for _ in range(120)), ())
    fallback, blocks = answer_blocks(answer, feedback_id="a")
    assert len(blocks) <= MAX_BLOCKS
    assert _texts(blocks)[-2] == CUT_NOTE
    assert len(fallback) <= TEXT_LIMIT


def test_the_solved_button_carries_the_thread_and_the_asker_and_old_buttons_parse_without_one() -> None:
    assert parse_solved(solved_value("C1", "1700000001.000200", "U1")) == ("C1", "1700000001.000200", "U1")
    assert parse_solved("C1|1700000001.000200") == ("C1", "1700000001.000200", None)
    assert parse_solved("") == ("", "", None)
