from __future__ import annotations

from bot.discord.render import FOOTER, MESSAGE_LIMIT, format_answer, format_sources, split_message
from rag.models import Answer, Citation


def _fences_balanced(part: str) -> bool:
    return sum(1 for line in part.splitlines() if line.strip().startswith("```")) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("hello") == ["hello"]


def test_long_prose_splits_at_paragraphs_under_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 80 for i in range(20)]
    text = "\n\n".join(paragraphs)
    parts = split_message(text)
    assert len(parts) > 1
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert all(p.startswith("Paragraph") for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_code_block_cut_is_closed_and_reopened() -> None:
    code = "\n".join(f"print({i})  # line {i}" for i in range(200))
    text = "Intro.\n\n```python\n" + code + "\n```\n\nOutro."
    parts = split_message(text)
    assert len(parts) > 1
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert all(_fences_balanced(p) for p in parts)
    assert parts[1].startswith("```python")
    joined = "\n".join(parts)
    for i in range(200):
        assert f"print({i})  # line {i}" in joined


def test_a_5000_char_answer_with_no_breaks() -> None:
    text = "x" * 5000
    parts = split_message(text)
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts) == text


def test_sources_use_suppressed_embed_links_and_escape_titles() -> None:
    out = format_sources([Citation(1, "Index [HNSW] *fast*", "https://milvus.io/docs/index.md#HNSW")])
    assert "1. [Index \\[HNSW\\] \\*fast\\*](<https://milvus.io/docs/index.md#HNSW>)" in out


def test_format_answer_has_sources_and_footer() -> None:
    answer = Answer("q", "It works [1].", (Citation(1, "Page", "https://x/p"),))
    out = format_answer(answer)
    assert out.startswith("It works [1].")
    assert "**Sources**" in out and out.endswith(FOOTER)
    refused = Answer("q", "Not in the docs.", (Citation(1, "Page", "https://x/p"),), refused=True)
    assert "**Closest pages**" in format_answer(refused)


def test_a_source_without_url_is_its_title_without_a_link() -> None:
    out = format_sources([Citation(1, "Local *page*", ""), Citation(2, "Web", "https://x/p")])
    assert out.splitlines() == ["**Sources**", "1. Local \\*page\\*", "2. [Web](<https://x/p>)"]
