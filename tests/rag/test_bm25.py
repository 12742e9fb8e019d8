"""Local BM25 (for Milvus Lite): the textbook scores, and it follows upserts, deletes and source filters."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from rag.bm25 import LocalBM25, Row, fuse
from rag.scope import SearchScope

TEXTS = {
    "a": "partit key filter partit",
    "b": "creat collect schema field",
    "c": "collect load releas memori",
    "d": "index hnsw ivf_flat memori recal",
    "e": "partit collect load",
}


def reference(texts: dict[str, str], query: str, k1: float = 1.5, b: float = 0.75) -> list[str]:
    """BM25 as Milvus Lite's SparseInvertedIndex computes it, written out term by term."""
    docs = {key: Counter(text.split()) for key, text in texts.items()}
    average = sum(sum(d.values()) for d in docs.values()) / len(docs)
    scores: dict[str, float] = {}
    for term in query.split():
        df = sum(1 for d in docs.values() if term in d)
        idf = math.log((len(docs) - df + 0.5) / (df + 0.5) + 1)
        for key, d in docs.items():
            if term in d:
                tf, length = d[term], sum(d.values())
                scores[key] = scores.get(key, 0.0) + idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
    return sorted(scores, key=lambda key: -scores[key])


def index_of(texts: dict[str, str], source: str = "docs") -> LocalBM25:
    index = LocalBM25()
    index.put(Row(key, source, f"page-{key}", 0, text) for key, text in texts.items())
    return index


@pytest.mark.parametrize("query", ["partit", "collect load", "memori index", "partit collect load memori"])
def test_scores_rank_as_bm25_does(query: str) -> None:
    assert index_of(TEXTS).search(query, 10) == reference(TEXTS, query)


def test_no_shared_term_no_hit_and_the_limit_holds() -> None:
    index = index_of(TEXTS)
    assert index.search("zebrafish", 10) == []
    assert index.search("", 10) == []
    assert len(index.search("collect", 1)) == 1


def test_it_follows_upserts_and_deletes() -> None:
    index = index_of(TEXTS)
    index.put([Row("a", "docs", "page-a", 0, "zebrafish")])  # an upsert replaces the row
    assert index.search("partit", 10) == reference({k: v for k, v in TEXTS.items() if k != "a"}, "partit")
    assert index.search("zebrafish", 10) == ["a"]
    index.put([Row("a2", "docs", "page-a", 1, "zebrafish tail")])
    index.delete_pages(["page-a"], from_ordinal=1)  # a page that shrank
    assert index.search("zebrafish", 10) == ["a"]
    index.delete_pages(["page-a"], source_id="other")  # another source's page of the same name
    assert index.search("zebrafish", 10) == ["a"]
    index.delete_pages(["page-a"])
    assert index.search("zebrafish", 10) == [] and len(index) == 4


def test_sources_filter_the_rows() -> None:
    index = index_of(TEXTS)
    index.put([Row("sdk", "sdk", "page-sdk", 0, "partit sdk")])
    assert "sdk" in index.search("partit", 10)
    assert index.search("partit", 10, SearchScope(("sdk",))) == ["sdk"]
    assert "sdk" not in index.search("partit", 10, SearchScope(("docs",)))
    assert index.search("partit", 10, SearchScope(("unknown",))) == []


def test_community_answers_are_read_only_by_the_spaces_they_are_scoped_to() -> None:
    index = index_of(TEXTS)
    mine, theirs = "community:discord:1", "community:discord:2"
    index.put([Row("mine", mine, "learned/1", 0, "partit mine"), Row("theirs", theirs, "learned/2", 0, "partit")])
    index.put([Row("old", "community", "learned/3", 0, "partit old")])  # indexed before answers were scoped
    found = index.search("partit", 10, SearchScope(communities=(mine,)))
    assert "mine" in found and "theirs" not in found and "old" not in found and "a" in found
    assert "theirs" in index.search("partit", 10) and "old" in index.search("partit", 10), "the operator sees all"
    assert index.search("partit", 10, SearchScope(("community",), (mine,))) == ["mine"]
    assert "mine" not in index.search("partit", 10, SearchScope(("docs",), (mine,))), "the channel left them out"


def test_replaced_rows_are_compacted_away_with_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    index = index_of(TEXTS)
    assert index.search("collect load", 10) == reference(TEXTS, "collect load")
    for _ in range(50):  # written since the last build: scored one by one, with the same results
        index.put(Row(key, "docs", f"page-{key}", 0, text) for key, text in TEXTS.items())
    assert index.search("collect load", 10) == reference(TEXTS, "collect load")
    monkeypatch.setattr("rag.bm25._REBUILD_EVERY_S", 0.0)
    for round_ in range(600):  # a long-running bot re-indexing the same pages
        index.put(Row(key, "docs", f"page-{key}", 0, text) for key, text in TEXTS.items())
        if round_ % 100 == 0:
            assert index.search("collect load", 10) == reference(TEXTS, "collect load")
    assert index.search("collect load", 10) == reference(TEXTS, "collect load")
    assert len(index._rows) < 3000 and len(index) == 5


def test_fuse_is_reciprocal_rank_fusion() -> None:
    fused = fuse([["x", "y", "z"], ["y", "w"]], 60, 3)
    assert [key for key, _ in fused] == ["y", "x", "w"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_fusion_ties_go_to_the_smaller_key_as_in_milvus() -> None:
    assert [key for key, _ in fuse([["b", "d"], ["a", "c"]], 60, 4)] == ["a", "b", "c", "d"]
