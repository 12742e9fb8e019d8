"""The BM25 side's text normalisation: the same function runs on chunks and on questions."""

from __future__ import annotations

from rag.lexical import lexical_text


def test_inflections_meet_at_one_stem() -> None:
    assert lexical_text("partitions") == lexical_text("partition") == lexical_text("Partitioning")
    assert lexical_text("Indexes") == lexical_text("index")


def test_identifiers_match_whole_and_by_parts() -> None:
    snake = lexical_text("call load_collection() first").split()
    camel = lexical_text("set efConstruction").split()
    assert "load_collection" in snake and "load" in snake and "collect" in snake
    assert "efconstruct" in camel and "ef" in camel and "construct" in camel
    assert set(lexical_text("how to load a collection").split()) <= set(snake)


def test_stop_words_and_chat_filler_are_dropped() -> None:
    assert lexical_text("hi guys, how do I do it?? thanks") == ""
    assert lexical_text("what is the HNSW M parameter").split() == ["hnsw", "m", "paramet"]


def test_non_english_text_is_kept_lowercased_not_split() -> None:
    assert lexical_text("Número de PARTICIONES") == "número de particion"
    assert lexical_text("分区键 partition key").split() == ["分区键", "partit", "key"]


def test_latin_words_glued_to_chinese_or_japanese_text_are_their_own_terms() -> None:
    # Chinese and Japanese write no spaces: "milvus带有token" must still match docs about milvus and tokens.
    terms = lexical_text("有没有完整的milvus带有token的例子? index不存在").split()
    assert {"milvus", "token", "index"} <= set(terms)
    assert lexical_text("Überprüfung café naïve") == "überprüfung café naïv", "accented Latin words stay whole"
