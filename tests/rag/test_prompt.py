"""What the model is shown: the instructions, the numbered passages cut to the question, the language to use."""

from __future__ import annotations

from rag.citations import number_sources
from rag.models import Hit
from rag.prompt import SYSTEM_PROMPT, build_messages, focus, language_name, passages, system_prompt
from rag.settings import AnswerSettings


def _hit(page: str, text: str, heading: str = "") -> Hit:
    return Hit(f"{page}-{heading}", page, f"https://x/{page}", page.title(), heading, text, 1.0)


def test_a_passage_that_fits_is_whole_and_a_long_one_keeps_the_lines_that_match() -> None:
    assert focus("short text", "anything", 100) == "short text"
    text = "\n".join(f"line {i} about cats and dogs" for i in range(20)) + "\nthe nprobe setting is 16\nmore dogs"
    cut = focus(text, "what is nprobe?", 60)
    assert "nprobe setting is 16" in cut and len(cut) <= 60 + 4
    assert cut.startswith("… ")


def test_a_code_block_cut_open_is_closed() -> None:
    text = "Intro line about nothing.\n" * 5 + "```python\nclient.search(nprobe=16)\nmore()\n" + "x = 1\n" * 20 + "```"
    cut = focus(text, "search nprobe", 50)
    assert "client.search(nprobe=16)" in cut and cut.rstrip(" …").endswith("```")


def test_the_first_passage_always_goes_in_and_the_budget_stops_the_rest() -> None:
    hits = [_hit("a", "alpha " * 100), _hit("b", "beta " * 100)]
    shown = passages("q", hits, number_sources(hits), max_chars=300)
    assert [p.number for p in shown] == [1] and len(shown[0].text) == 300
    both = passages("q", hits, number_sources(hits), max_chars=300, passage_chars=100)
    assert [p.number for p in both] == [1, 2]


def test_the_project_is_named_and_a_custom_prompt_replaces_the_built_in() -> None:
    assert system_prompt(AnswerSettings(project="Milvus")).startswith("You answer questions about Milvus")
    assert "the project" in system_prompt(AnswerSettings())
    custom = AnswerSettings(project="FastAPI", system_prompt="Answer about {project} like a pirate.")
    assert system_prompt(custom) == "Answer about FastAPI like a pirate."
    messages = build_messages("q?", [_hit("a", "x")], number_sources([_hit("a", "x")]), settings=custom)
    assert messages[0]["content"] == "Answer about FastAPI like a pirate."
    assert "like [1]" in SYSTEM_PROMPT and "@everyone" in SYSTEM_PROMPT


def test_the_language_is_named_for_cjk_questions_only() -> None:
    assert language_name("Milvus 支持 Windows 吗?") == "Chinese"
    assert language_name("Milvus LiteはWindowsで動きますか？") == "Japanese"
    assert language_name("윈도우에서 작동하나요?") == "Korean"
    assert language_name("¿Cómo creo un índice?") == ""
    assert language_name("How do I use `向量` in code?") == "", "a Chinese word in an English question"
