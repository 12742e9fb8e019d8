"""Query normalisation: pasted tracebacks, logs and code are searched by their question, errors and identifiers."""

from __future__ import annotations

from rag.lexical import lexical_text
from rag.query import QueryText, normalise_query, search_text

TRACEBACK = r"""This library can't run on windows?

I got this error when running the example code
```
Traceback (most recent call last):
  File "F:\RAGFlow\ng\.venv\Lib\site-packages\pymilvus\milvus_client\milvus_client.py", line 924, in _create_connection
    raise ex from ex
  File "/home/me/.venv/lib/python3.11/site-packages/pymilvus/orm/connections.py", line 388, in connect
    from milvus_lite.server_manager import (
ModuleNotFoundError: No module named 'milvus_lite'
```
"""

LOG = (
    "[Bug]: dim error\n\n2025-11-16 20:25:14,788 [ERROR][handler]: RPC error: [upsert_rows], <MilvusException: "
    "(code=65535, message=the length(106496) of float data should divide the dim(3072))>, <Time:{'RPC start': "
    "'2025-11-16 20:25:14.209261', 'RPC error': '2025-11-16 20:25:14.788743'}> (decorators.py:140)\n"
    "connecting to 192.168.1.20:19530 at 0x7f3a2c1b9d30 failed, socket unix:/tmp/tmpzmo6h_zk_milvus.db.sock"
)


def test_traceback_frames_are_dropped_and_the_exception_kept() -> None:
    query = normalise_query(TRACEBACK)
    for side in (query.dense, query.lexical):
        assert "ModuleNotFoundError: No module named 'milvus_lite'" in side
        assert "site-packages" not in side and "line 924" not in side and "connections.py" not in side
        assert "raise ex from ex" not in side
    assert query.dense.startswith("This library can't run on windows? ModuleNotFoundError")


def test_log_noise_is_stripped_but_codes_and_identifiers_stay() -> None:
    query = normalise_query(LOG)
    for side in (query.dense, query.lexical):
        for noise in ("2025", "20:25", "[ERROR]", "decorators.py", "0x7f", "192.168", "/tmp/", "tmpzmo6h"):
            assert noise not in side, noise
        for kept in ("upsert_rows", "MilvusException", "code=65535", "dim(3072)", "float data"):
            assert kept in side, kept


def test_code_is_shortened_to_the_identifiers_it_uses() -> None:
    question = (
        "How to exclude fields when querying?\n\n```python\nclass UserModel(Model):\n    password: str\n\n"
        "@router.get('/')\nasync def get_all_users():\n    return await engine.find(UserModel)\n```\n"
    )
    query = normalise_query(question)
    assert (
        query.dense
        == "How to exclude fields when querying? UserModel Model password router.get get_all_users engine.find"
    )
    assert {"usermodel", "router_get", "get_all_users", "engine_find"} <= set(lexical_text(query.lexical).split())


def test_config_keys_survive_and_split_for_bm25() -> None:
    query = normalise_query("how do I set queryNode.gracefulTime in milvus.yaml?")
    assert "queryNode.gracefulTime" in query.dense
    terms = lexical_text(query.lexical).split()
    assert {"querynode_gracefultime", "queri", "node", "grace", "time"} <= set(terms)


def test_question_sentences_come_first_and_the_dense_side_is_capped() -> None:
    filler = " ".join(f"word{i}" for i in range(400))
    query = normalise_query(f"Upload fails\n\n{filler}. The upload stops at 2 GB.\nHow do I raise the size limit?")
    assert query.dense.startswith("Upload fails How do I raise the size limit?")
    assert len(query.dense.split()) <= 120
    assert "word399" in query.lexical


def test_urls_are_dropped_from_the_dense_side_and_give_their_path_words_to_bm25() -> None:
    query = normalise_query("disable /docs as described in https://fastapi.tiangolo.com/tutorial/metadata/#docs-urls")
    assert "https" not in query.dense and "tiangolo" not in query.dense
    assert "/docs" in query.dense
    assert "metadata" in query.lexical


def test_non_english_text_is_left_intact() -> None:
    question = "只要加上 MILVUS_ADDRESS 的环境变量,就会报错\n\n是不是我设置了密码的原因?"
    query = normalise_query(question)
    assert "只要加上 MILVUS_ADDRESS 的环境变量,就会报错" in query.dense
    assert "是不是我设置了密码的原因?" in query.dense and "是不是我设置了密码的原因?" in query.lexical


def test_a_plain_question_is_unchanged() -> None:
    assert normalise_query("How do I delete entities by id?") == QueryText(
        "How do I delete entities by id?", "How do I delete entities by id?"
    )


def test_search_text_adds_the_previous_turn_and_normalises_only_when_asked() -> None:
    raw = search_text("and in python?", ["how do I delete by id", "old"], 1, normalise=False)
    assert raw == QueryText("old and in python?", "old and in python?")
    assert search_text("and in python?", ["how do I delete by id"], 0, normalise=False).dense == "and in python?"
    cleaned = search_text(TRACEBACK, ["how do I install milvus lite"], 1, normalise=True)
    assert cleaned.dense.startswith("how do I install milvus lite This library")
    assert "site-packages" not in cleaned.dense and "site-packages" not in cleaned.lexical
