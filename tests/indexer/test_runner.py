"""Indexing runs into a real Milvus Lite with the real MiniLM embedder."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from indexer.build import make_indexer
from indexer.local import FolderDocs
from indexer.runner import Indexer
from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from indexer.web import WebsiteDocs
from rag.metrics import Metrics
from rag.models import page_key
from rag.settings import FolderSource, IndexerSettings, Settings, WebsiteSource
from tests.conftest import CORPUS

pytestmark = pytest.mark.integration

PAGES = {
    "install.md": "---\ntitle: Install Widget\n---\n\n# Install\n\nRun `pip install widget` to install.\n\n"
    "## With Docker\n\nUse `docker run widget` for a container.\n",
    "guide/config.md": "# Configuration\n\nSet WIDGET_HOME to choose the data folder.\n\n"
    "## Logging\n\nSet WIDGET_LOG=debug for verbose logs.\n",
    "guide/faq.md": "# FAQ\n\n## Why is it slow?\n\nTurn on caching with `--cache`.\n",
    "api.html": "<html><head><title>API | Widget</title></head><body><nav>Home Docs Blog</nav>"
    "<main><h1 id='api'>API</h1><p>The widget() call returns a Widget.</p>"
    "<h2 id='errors'>Errors</h2><p>WidgetError is raised on bad input.</p></main>"
    "<footer>Copyright</footer></body></html>",
}


def write_pages(root: Path, pages: dict[str, str]) -> None:
    for relative, content in pages.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write_pages(root, PAGES)
    return root


def folder(root: Path, **kw: object) -> FolderDocs:
    return FolderDocs(FolderSource(id="docs", path=root, base_url="https://widget.dev/docs/", **kw))


@pytest.fixture
async def indexer(embedder, store) -> Indexer:
    return Indexer(embedder, store, embedding_model="minilm")


async def test_folder_index_then_incremental(docs: Path, indexer: Indexer, store, embedder) -> None:
    first = await indexer.run([folder(docs)])
    assert (first.pages_new, first.pages_changed, first.pages_unchanged, first.pages_removed) == (4, 0, 0, 0)
    assert first.pages_failed == 0
    assert first.chunks_written == await store.count() > 4

    again = await indexer.run([folder(docs)])
    assert (again.pages_new, again.pages_changed, again.pages_unchanged, again.chunks_written) == (0, 0, 4, 0)

    (docs / "guide/faq.md").write_text("# FAQ\n\n## Why is it slow?\n\nIncrease `--workers` to use more cores.\n")
    (docs / "api.html").unlink()
    third = await indexer.run([folder(docs)])
    assert (third.pages_new, third.pages_changed, third.pages_unchanged, third.pages_removed) == (0, 1, 2, 1)
    assert third.chunks_written == 1

    hits = await store.search(await embedder.embed_query("how to use more cores"), 5)
    assert hits[0].page_id == "guide/faq.md" and "--workers" in hits[0].text
    assert all(hit.page_id != "api.html" for hit in await store.search(await embedder.embed_query("WidgetError"), 20))
    assert "caching" not in " ".join(h.text for h in hits)


async def test_urls_titles_and_anchors(docs: Path, indexer: Indexer, store, embedder) -> None:
    await indexer.run([folder(docs, flatten=True)])
    hits = await store.search(await embedder.embed_query("verbose logs"), 3)
    top = hits[0]
    assert top.url == "https://widget.dev/docs/config.md#logging"
    assert top.title == "Configuration" and top.heading == "Logging"
    api = await store.search(await embedder.embed_query("WidgetError raised on bad input"), 1)
    assert api[0].url == "https://widget.dev/docs/api.html#errors"
    assert "Home Docs Blog" not in api[0].text and "Copyright" not in api[0].text


async def test_shrinking_page_drops_its_tail(docs: Path, indexer: Indexer, store) -> None:
    long_page = "# Long\n\n" + "\n\n".join(f"## Part {i}\n\n" + f"Sentence {i} " * 40 for i in range(12))
    (docs / "long.md").write_text(long_page)
    await indexer.run([folder(docs)])
    before = Counter(row["page_id"] for row in await store.scan(["page_id"]))
    assert before["long.md"] > 1
    (docs / "long.md").write_text("# Long\n\nNow short.\n")
    report = await indexer.run([folder(docs)])
    assert report.pages_changed == 1 and report.chunks_written == 1
    rows = await store.scan(["page_id", "ordinal"])
    after = Counter(row["page_id"] for row in rows)
    assert after == {**before, "long.md": 1}, "the long page keeps exactly its one new chunk; other pages untouched"
    assert [row["ordinal"] for row in rows if row["page_id"] == "long.md"] == [0]
    hashes = await store.page_hashes("docs")
    assert set(hashes) == {page_key(page_id) for page_id in set(PAGES) | {"long.md"}}


class FlakySource:
    """A source that reports one failing document and one broken one among good ones."""

    source_id = "flaky"

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        yield RawDocument("a", "https://x/a", "# A\n\nAlpha text here.", "markdown")
        yield DocumentFailure("b", "https://x/b", "HTTP 503")
        yield RawDocument("c", "https://x/c", "<html><body><div><p>unclosed <b>bold", "html")
        yield RawDocument("d", "https://x/d", "", "markdown")


async def test_failures_are_reported_and_never_abort(indexer: Indexer) -> None:
    report = await indexer.run([FlakySource()])
    assert report.pages_new == 2
    assert report.pages_failed == 2
    assert {f["page"] for f in report.failures} == {"b", "d"}


class DownSource:
    source_id = "docs"

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        raise SourceUnavailable("site is down")
        yield  # pragma: no cover


async def test_unavailable_source_prunes_nothing(docs: Path, indexer: Indexer, store) -> None:
    await indexer.run([folder(docs)])
    count = await store.count()
    report = await indexer.run([DownSource(), FlakySource()])
    assert report.sources_failed == [{"source": "docs", "reason": "site is down"}]
    assert report.pages_removed == 0
    assert await store.count() >= count


class BrokenSource:
    """Yields a page, then raises what a bad charset raises (not SourceUnavailable)."""

    source_id = "broken"

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        yield RawDocument("first", "https://b/first", "# First\n\nRead before the failure.", "markdown")
        raise UnicodeError("unknown encoding: undefined")


async def test_any_exception_fails_only_its_source(docs: Path, embedder, store) -> None:
    metrics = Metrics()
    indexer = Indexer(embedder, store, embedding_model="minilm", metrics=metrics)
    report = await indexer.run([BrokenSource(), folder(docs)])
    assert report.sources_failed == [{"source": "broken", "reason": "UnicodeError: unknown encoding: undefined"}]
    assert report.pages_new == 5, "the good source ran, and the page read before the failure was kept"
    assert "1 source(s) failed" in report.summary()
    assert metrics.registry.get_sample_value("docent_index_runs_total", {"result": "partial"}) == 1
    assert metrics.registry.get_sample_value("docent_index_last_run_ok") == 0
    assert metrics.registry.get_sample_value("docent_index_chunks") == await store.count()

    again = await indexer.run([BrokenSource(), folder(docs)])
    assert again.pages_removed == 0 and again.pages_unchanged == 5, "a failed source prunes nothing"


def deep_page(root: Path) -> str:
    """A page whose relative path is over 2048 bytes: ten folders of 250-byte names."""
    relative = "/".join(f"{n}" + "d" * 249 for n in range(10)) + "/page.md"
    assert len(relative.encode()) > 2048
    (root / relative).parent.mkdir(parents=True)
    return relative


LONG_TEXT = "# Deep\n\n" + "\n\n".join(f"## Part {i}\n\n" + f"Deep sentence {i} " * 40 for i in range(6))


@pytest.mark.parametrize("with_record", [False, True], ids=["store-only", "with-record"])
async def test_a_page_id_longer_than_the_field_is_tracked_by_key(
    tmp_path: Path, embedder, store, make_settings: Callable[..., Settings], with_record: bool
) -> None:
    root = tmp_path / "docs"
    relative = deep_page(root)
    (root / relative).write_text(LONG_TEXT)

    def indexer() -> Indexer:
        return make_indexer(make_settings(), embedder, store) if with_record else Indexer(embedder, store)

    first = await indexer().run([folder(root)])
    assert first.pages_new == 1 and first.chunks_written > 1
    again = await indexer().run([folder(root)])
    assert (again.pages_unchanged, again.chunks_written, again.pages_repaired) == (1, 0, 0)

    (root / relative).write_text("# Deep\n\nNow short.\n")
    shrunk = await indexer().run([folder(root)])
    assert shrunk.pages_changed == 1 and shrunk.chunks_written == 1
    rows = await store.scan(["page_id", "ordinal", "text"])
    assert [(row["ordinal"], row["text"]) for row in rows] == [(0, "Now short.")], "no stale chunks"
    assert relative.encode().startswith(rows[0]["page_id"].encode()), "the stored id is the path, cut to fit"

    (root / relative).unlink()
    gone = await indexer().run([folder(root)])
    assert gone.pages_removed == 1 and await store.count() == 0


async def test_missing_folder_is_a_failed_source(tmp_path: Path, indexer: Indexer) -> None:
    report = await indexer.run([folder(tmp_path / "nope")])
    assert report.sources_failed and "does not exist" in report.sources_failed[0]["reason"]
    assert "set the path of source" in report.sources_failed[0]["reason"], "a fresh clone is told what to set"


# -- a website crawled into Milvus Lite ---------------------------------------------------------------

SITE = {
    "/docs/": "<h1>Widget docs</h1><p>Start with <a href='/docs/install'>install</a>, "
    "<a href='/docs/tuning'>tuning</a>, <a href='/docs/old'>old</a>, <a href='/docs/gone'>gone</a>, "
    "<a href='/docs/away'>away</a>, <a href='/docs/manual.pdf'>the PDF</a>.</p>",
    "/docs/install": "<h1>Install</h1><p>Install the widget with pip install widget.</p>",
    "/docs/tuning": "<h1>Tuning</h1><h2 id='threads'>Threads</h2><p>Set WIDGET_THREADS to the core count.</p>",
    "/docs/new": "<h1>New page</h1><p>The old page moved here; it explains widget plugins.</p>",
}


def make_site(pages: dict[str, str], requests: list[str]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        requests.append(path)
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nDisallow: /docs/private\n", content_type="text/plain")
        if path == "/sitemap.xml":
            return web.Response(status=404)
        if path == "/docs/old":
            raise web.HTTPMovedPermanently("/docs/new")
        if path == "/docs/away":
            raise web.HTTPFound("http://other.invalid/phish")
        if path == "/docs/manual.pdf":
            return web.Response(body=b"%PDF-1.4", content_type="application/pdf")
        if path in pages:
            body = (
                "<html><head><title>Widget</title></head><body><nav><a href='/docs/'>Home</a></nav>"
                f"<main>{pages[path]}</main><footer>footer noise</footer></body></html>"
            )
            return web.Response(text=body, content_type="text/html")
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


async def test_crawl_index_edit_and_prune(indexer: Indexer, store, embedder) -> None:
    pages = dict(SITE)
    requests: list[str] = []
    server = TestServer(make_site(pages, requests), host="127.0.0.1")
    await server.start_server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        config = WebsiteSource(id="site", start_url=f"{base}/docs/")
        settings = IndexerSettings(request_timeout_s=5, retries=0, allow_private_addresses=True)
        async with aiohttp.ClientSession() as session:
            first = await indexer.run([WebsiteDocs(config, settings, session)])
            assert first.pages_new == 4  # index, install, tuning, new (via the in-scope redirect)
            assert first.pages_failed == 0
            assert "/docs/manual.pdf" in requests and "/phish" not in requests
            hashes = await store.page_hashes("site")
            pages_read = {f"{base}/docs/", f"{base}/docs/install", f"{base}/docs/tuning", f"{base}/docs/new"}
            assert set(hashes) == {page_key(url) for url in pages_read}

            pages["/docs/tuning"] = "<h1>Tuning</h1><h2 id='threads'>Threads</h2><p>Use WIDGET_POOL for pools.</p>"
            del pages["/docs/install"]
            second = await indexer.run([WebsiteDocs(config, settings, session)])
            assert (second.pages_new, second.pages_changed, second.pages_unchanged) == (0, 1, 2)
            assert second.pages_removed == 1
            assert second.chunks_written == 1
        hits = await store.search(await embedder.embed_query("WIDGET_POOL pools"), 1)
        assert hits[0].url == f"{base}/docs/tuning#threads"
        assert "footer noise" not in hits[0].text
    finally:
        await server.close()


@pytest.mark.slow
async def test_milvus_docs_subset_from_folder(tmp_path: Path, indexer: Indexer, store, embedder) -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present")
    subset = tmp_path / "milvus"
    for relative in [
        "reference/index.md",
        "reference/metric.md",
        "reference/disk_index.md",
        "userGuide/manage-collections.md",
        "userGuide/load_balance.md",
        "getstarted/quickstart.md",
        "fragments/multiple_code.md",
    ]:
        (subset / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / relative, subset / relative)
    source = FolderDocs(FolderSource(id="milvus", path=subset, base_url="https://milvus.io/docs/", flatten=True))
    report = await indexer.run([source])
    assert report.pages_new == 7 and report.pages_failed == 0
    hits = await store.search(await embedder.embed_query("What do the parameters for HNSW mean?"), 5)
    assert "reference/index.md" in {hit.page_id for hit in hits[:3]}
    assert any(hit.url.startswith("https://milvus.io/docs/index.md") for hit in hits)
