"""WebsiteDocs against a real local aiohttp site: scope, robots, sitemaps, redirects, retries, limits.

Only 127.0.0.1 is contacted. The server logs every request it serves and the client session
traces every request it starts, so "never fetched" is checked on both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from indexer import web as web_source
from indexer.build import http_session
from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from indexer.web import Scope, WebsiteDocs, extract_links, normalise_url, parse_sitemap
from rag.settings import IndexerSettings, WebsiteSource

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UA = "DocentTest/1.0 (+tests)"


# -- a tiny docs site -------------------------------------------------------------------------------


def html_page(title: str, *links: str) -> Handler:
    """A page with nav and footer noise around a little content."""
    nav = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    body = (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<nav><ul>{nav}</ul></nav><main><h1>{title}</h1><p>All about {title}.</p></main>"
        '<footer><a href="/docs/">Home</a> &copy; Docs</footer></body></html>'
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="text/html")

    return handler


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=f"status {code}", headers=headers)

    return handler


def redirect(location: str, code: int = 301) -> Handler:
    return status(code, {"Location": location})


def raw(body: bytes, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handler


def text(body: str) -> Handler:
    return raw(body.encode(), "text/plain")


def urlset(*paths: str) -> Handler:
    """A sitemap whose <loc>s are absolute URLs on the serving host (the port is only known per request)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        locs = "".join(f"<url><loc>{_absolute(request, p)}</loc></url>" for p in paths)
        xml = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        return web.Response(text=xml, content_type="application/xml")

    return handler


def sitemap_index(*paths: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        locs = "".join(f"<sitemap><loc>{_absolute(request, p)}</loc></sitemap>" for p in paths)
        xml = f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</sitemapindex>'
        return web.Response(text=xml, content_type="application/xml")

    return handler


def _absolute(request: web.Request, path: str) -> str:
    return path if "://" in path else f"http://{request.host}{path}"


def sequence(*handlers: Handler) -> Handler:
    """Each request gets the next handler; the last one repeats."""
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return await handlers[min(calls, len(handlers)) - 1](request)

    return handler


async def streamed_big_page(request: web.Request) -> web.StreamResponse:
    """200 KB of HTML with chunked encoding (no Content-Length), so only streaming can stop it early."""
    resp = web.StreamResponse(headers={"Content-Type": "text/html"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    with contextlib.suppress(ConnectionError):
        await resp.write(b"<html><body>")
        for _ in range(50):
            await resp.write(b"<p>" + b"x" * 4096 + b"</p>")
        await resp.write_eof()
    return resp


def default_routes() -> dict[str, Handler]:
    return {
        "/robots.txt": text("User-agent: *\nDisallow: /docs/private/\n"),
        "/sitemap.xml": urlset("/docs/", "/docs/a", "/docs/sitemap-only", "/blog/y", "/docs/private/also"),
        "/docs/": html_page(
            "Index",
            "a",
            "/docs/b",
            "new",
            "old",
            "away",
            "to-blog",
            "missing",
            "gone",
            "manual.pdf",
            "data.json",
            "/blog/x",
            "private/secret",
            "flaky",
            "broken",
            "big",
            "#top",
            "mailto:help@example.com",
            "a#install",
            "a?utm_source=nav",
            "http://other.invalid/ext",
        ),
        "/docs/a": html_page("A", "/docs/", "b", "c?lang=py"),
        "/docs/b": html_page("B", "/docs/a"),
        "/docs/c": html_page("C"),
        "/docs/new": html_page("New"),
        "/docs/old": redirect("/docs/new"),
        "/docs/away": redirect("http://other.invalid/x"),
        "/docs/to-blog": redirect("/blog/x", 302),
        "/docs/gone": status(410),
        "/docs/manual.pdf": raw(b"%PDF-1.4 not really", "application/pdf"),
        "/docs/data.json": raw(b'{"a": 1}', "application/json"),
        "/docs/sitemap-only": html_page("Sitemap only"),
        "/docs/private/secret": html_page("Secret"),
        "/docs/private/also": html_page("Also secret"),
        "/blog/x": html_page("Blog X"),
        "/blog/y": html_page("Blog Y"),
        "/docs/flaky": sequence(status(500), status(500), html_page("Flaky")),
        "/docs/broken": status(500),
        "/docs/big": streamed_big_page,
    }


@dataclass
class Site:
    routes: dict[str, Handler] = field(default_factory=default_routes)
    served: list[str] = field(default_factory=list)  # path_qs of every request the server saw
    user_agents: set[str] = field(default_factory=set)
    client_urls: list[str] = field(default_factory=list)  # every request the client started
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.served.append(request.path_qs)
        self.user_agents.add(request.headers.get("User-Agent", ""))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def hits(self, path: str) -> int:
        return sum(1 for served in self.served if served.split("?")[0] == path)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.dispatch)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site.server = server
    yield site
    site.release.set()
    await server.close()


@pytest.fixture
async def session(site: Site) -> AsyncIterator[aiohttp.ClientSession]:
    async def on_request_start(
        _session: aiohttp.ClientSession, _ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        site.client_urls.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as client:
        yield client


def make_settings(**overrides: object) -> IndexerSettings:
    values: dict[str, object] = {
        "concurrency": 3,
        "request_timeout_s": 2.0,
        "retries": 2,
        "max_page_bytes": 4096,
        "user_agent": UA,
        "allow_private_addresses": True,  # the test site is on 127.0.0.1
    }
    values.update(overrides)
    return IndexerSettings.model_validate(values)


def make_source(
    site: Site, session: aiohttp.ClientSession, settings: IndexerSettings | None = None, **config: object
) -> WebsiteDocs:
    source = WebsiteSource.model_validate({"start_url": site.url("/docs/"), **config})
    return WebsiteDocs(source, settings or make_settings(), session, backoff_s=0.01, max_retry_after_s=0.05)


async def collect(source: WebsiteDocs) -> tuple[dict[str, RawDocument], dict[str, DocumentFailure]]:
    docs: dict[str, RawDocument] = {}
    failures: dict[str, DocumentFailure] = {}
    async for item in source.documents():
        if isinstance(item, RawDocument):
            assert item.page_id not in docs, f"{item.page_id} yielded twice"
            docs[item.page_id] = item
        else:
            assert item.page_id not in failures
            failures[item.page_id] = item
    return docs, failures


def rel(site: Site, url: str) -> str:
    return url.removeprefix(site.url("/").rstrip("/"))


def paths(site: Site, urls: Iterable[str]) -> set[str]:
    return {rel(site, url) for url in urls}


# -- the whole site ---------------------------------------------------------------------------------


async def test_crawl_yields_in_scope_html_pages(site: Site, session: aiohttp.ClientSession) -> None:
    source = make_source(site, session)
    docs, failures = await collect(source)

    assert paths(site, docs) == {
        "/docs/",
        "/docs/a",
        "/docs/b",
        "/docs/c?lang=py",
        "/docs/new",
        "/docs/sitemap-only",
        "/docs/flaky",
    }
    assert {rel(site, url): f.reason for url, f in failures.items()} == {
        "/docs/broken": "HTTP 500",
        "/docs/big": "too large",
    }
    index = docs[site.url("/docs/")]
    assert index.kind == "html"
    assert index.url == index.page_id
    assert "<h1>Index</h1>" in index.content
    assert source.source_id == f"web:{site.url('/docs/')}"
    assert source.crawl_stats.as_dict() == {
        "fetched": 7,
        "failed": 2,
        "not_found": 2,  # /docs/missing (404) and /docs/gone (410): nothing yielded, so they get pruned
        "skipped_out_of_scope": 5,  # /blog/x, /blog/y, other.invalid/ext and the two off-scope redirects
        "skipped_robots": 2,
        "skipped_non_html": 2,
        "duplicates": 1,  # /docs/old -> /docs/new, which was already queued
        "sitemap_urls": 5,
        "skipped_traps": 0,
        "dropped_links": 0,
        "dropped_frontier_full": 0,
        "requests": 22,  # robots, sitemap, 16 page URLs (redirects included), 2 retries each of flaky and broken
        "budget_exhausted": False,
    }
    assert len(site.served) == 22
    assert site.user_agents == {UA}


async def test_never_requests_out_of_scope_or_disallowed(site: Site, session: aiohttp.ClientSession) -> None:
    await collect(make_source(site, session))

    origin = site.url("/").rstrip("/")
    assert site.client_urls
    assert all(url.startswith(origin + "/") for url in site.client_urls)
    for path in ("/blog/x", "/blog/y", "/docs/private/secret", "/docs/private/also", "/x"):
        assert site.hits(path) == 0, path
    # Each in-scope page is fetched once, however many pages link to it.
    assert site.hits("/docs/a") == 1
    assert site.hits("/docs/") == 1


async def test_in_scope_redirect_uses_final_url_once(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "old", "older")
    site.routes["/docs/older"] = redirect("old", 308)  # two hops, relative Location
    site.routes["/sitemap.xml"] = status(404)
    docs, failures = await collect(make_source(site, session))

    assert paths(site, docs) == {"/docs/", "/docs/new"}
    assert docs[site.url("/docs/new")].url == site.url("/docs/new")
    assert not failures


async def test_redirect_out_of_scope_is_skipped_not_failed(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "away", "to-blog")
    source = make_source(site, session)
    _docs, failures = await collect(source)

    assert not failures
    assert site.hits("/docs/away") == 1
    assert site.hits("/blog/x") == 0
    assert not any("other.invalid" in url for url in site.client_urls)
    assert source.crawl_stats.skipped_out_of_scope >= 2


async def test_redirect_loop_and_too_many_hops(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "loop1", "hop0")
    site.routes["/docs/loop1"] = redirect("/docs/loop2")
    site.routes["/docs/loop2"] = redirect("/docs/loop1")
    for n in range(7):
        site.routes[f"/docs/hop{n}"] = redirect(f"/docs/hop{n + 1}")
    site.routes["/sitemap.xml"] = status(404)
    docs, failures = await collect(make_source(site, session))

    assert paths(site, docs) == {"/docs/"}
    assert [f.reason for f in failures.values()] == ["more than 5 redirects"]
    assert site.hits("/docs/hop6") == 0


# -- retries, timeouts, sizes, content types --------------------------------------------------------


async def test_flaky_page_is_fetched_after_retries(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "flaky", "broken")
    docs, failures = await collect(make_source(site, session))

    assert site.url("/docs/flaky") in docs
    assert site.hits("/docs/flaky") == 3
    assert failures[site.url("/docs/broken")].reason == "HTTP 500"
    assert site.hits("/docs/broken") == 3  # one try plus settings.retries


async def test_retry_after_is_honoured_up_to_the_cap(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "busy")
    site.routes["/docs/busy"] = sequence(status(429, {"Retry-After": "3600"}), html_page("Busy"))
    started = time.monotonic()
    docs, _ = await collect(make_source(site, session))

    assert site.url("/docs/busy") in docs
    assert time.monotonic() - started < 2  # capped at max_retry_after_s, not an hour


async def test_timeout_becomes_failure(site: Site, session: aiohttp.ClientSession) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(site.release.wait(), 5)
        return web.Response(text="late", content_type="text/html")

    site.routes["/docs/"] = html_page("Index", "slow")
    site.routes["/docs/slow"] = slow
    docs, failures = await collect(make_source(site, session, make_settings(request_timeout_s=0.2, retries=1)))

    assert site.url("/docs/") in docs
    assert failures[site.url("/docs/slow")].reason == "timeout"
    assert site.hits("/docs/slow") == 2


@pytest.mark.parametrize("with_length", [True, False])
async def test_page_over_max_bytes_is_a_failure(site: Site, session: aiohttp.ClientSession, with_length: bool) -> None:
    big = raw(b"<html>" + b"x" * 200_000, "text/html") if with_length else streamed_big_page
    site.routes["/docs/"] = html_page("Index", "big")
    site.routes["/docs/big"] = big
    docs, failures = await collect(make_source(site, session))

    assert failures[site.url("/docs/big")].reason == "too large"
    assert site.url("/docs/big") not in docs


async def test_only_html_becomes_documents_and_charset_is_used(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "latin", "nocharset", "xhtml", "manual.pdf", "data.json", "logo.png")
    site.routes["/docs/latin"] = raw("<p>café</p>".encode("latin-1"), "text/html; charset=iso-8859-1")
    site.routes["/docs/nocharset"] = raw(b"<p>caf\xe9</p>", "text/html")
    site.routes["/docs/xhtml"] = raw(b"<html><p>x</p></html>", "application/xhtml+xml")
    site.routes["/docs/logo.png"] = raw(b"\x89PNG", "image/png")
    site.routes["/sitemap.xml"] = status(404)
    source = make_source(site, session)
    docs, failures = await collect(source)

    assert paths(site, docs) == {"/docs/", "/docs/latin", "/docs/nocharset", "/docs/xhtml"}
    assert docs[site.url("/docs/latin")].content == "<p>café</p>"
    assert docs[site.url("/docs/nocharset")].content == "<p>caf\ufffd</p>"
    assert not failures
    assert source.crawl_stats.skipped_non_html == 3


# -- robots.txt -------------------------------------------------------------------------------------


async def test_robots_rules_for_our_user_agent(site: Site, session: aiohttp.ClientSession) -> None:
    # A group naming us replaces the * group, so /docs/private/ is allowed for us but /docs/b is not.
    site.routes["/robots.txt"] = text("User-agent: DocentTest\nDisallow: /docs/b\n\nUser-agent: *\nDisallow: /\n")
    site.routes["/docs/"] = html_page("Index", "a", "b", "private/secret")
    site.routes["/sitemap.xml"] = status(404)
    source = make_source(site, session)
    docs, _ = await collect(source)

    assert paths(site, docs) == {"/docs/", "/docs/a", "/docs/c?lang=py", "/docs/private/secret"}
    assert site.hits("/docs/b") == 0
    assert source.crawl_stats.skipped_robots == 1


async def test_missing_robots_allows_all(site: Site, session: aiohttp.ClientSession) -> None:
    del site.routes["/robots.txt"]
    site.routes["/docs/"] = html_page("Index", "private/secret")
    docs, _ = await collect(make_source(site, session))

    assert site.url("/docs/private/secret") in docs
    assert site.url("/docs/private/also") in docs


async def test_robots_redirect_into_disallowed_page_is_skipped(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "hidden")
    site.routes["/docs/hidden"] = redirect("/docs/private/secret")
    site.routes["/sitemap.xml"] = status(404)
    docs, failures = await collect(make_source(site, session))

    assert paths(site, docs) == {"/docs/"}
    assert not failures
    assert site.hits("/docs/private/secret") == 0


async def test_unreachable_robots_makes_source_unavailable(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/robots.txt"] = status(503)
    with pytest.raises(SourceUnavailable, match=r"robots\.txt"):
        await collect(make_source(site, session))
    assert site.hits("/docs/") == 0


# -- sitemaps -----------------------------------------------------------------------------------------


async def test_sitemap_only_when_crawl_is_off(site: Site, session: aiohttp.ClientSession) -> None:
    docs, _ = await collect(make_source(site, session, crawl=False))

    assert paths(site, docs) == {"/docs/", "/docs/a", "/docs/sitemap-only"}
    assert site.hits("/docs/b") == 0  # linked from pages, but links are not followed


async def test_sitemap_index_is_followed_with_a_depth_limit(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes.update(
        {
            "/sitemap.xml": sitemap_index(
                "/maps/one.xml", "/maps/nested.xml", "/sitemap.xml", "http://other.invalid/m.xml"
            ),
            "/maps/one.xml": urlset("/docs/a", "/docs/b"),
            "/maps/nested.xml": sitemap_index("/maps/deep-urls.xml", "/maps/deep-index.xml"),
            "/maps/deep-urls.xml": urlset("/docs/new"),
            "/maps/deep-index.xml": sitemap_index("/maps/too-deep.xml"),
            "/maps/too-deep.xml": urlset("/docs/c"),
        }
    )
    source = make_source(site, session, crawl=False)
    docs, _ = await collect(source)

    assert paths(site, docs) == {"/docs/", "/docs/a", "/docs/b", "/docs/new"}
    assert site.hits("/maps/too-deep.xml") == 0
    assert site.hits("/sitemap.xml") == 1  # the self-reference is not re-read
    assert not any("other.invalid" in url for url in site.client_urls)
    assert source.crawl_stats.sitemap_urls == 3


async def test_gzipped_sitemap_and_robots_declared_sitemap(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/robots.txt"] = text("User-agent: *\nDisallow:\n\nSitemap: /maps/pages.xml.gz\n")
    port = site.url("/").split(":")[2].rstrip("/")
    xml = f"<urlset><url><loc>http://127.0.0.1:{port}/docs/sitemap-only</loc></url></urlset>"
    site.routes["/maps/pages.xml.gz"] = raw(gzip.compress(xml.encode()), "application/x-gzip")
    docs, _ = await collect(make_source(site, session, crawl=False))

    assert paths(site, docs) == {"/docs/", "/docs/sitemap-only"}
    assert site.hits("/sitemap.xml") == 0


async def test_corrupt_gzip_sitemap_is_ignored(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/sitemap.xml"] = raw(b"\x1f\x8b\x08\x00garbage", "application/x-gzip")
    site.routes["/docs/"] = html_page("Index", "a")
    docs, failures = await collect(make_source(site, session))

    assert {"/docs/", "/docs/a"} <= paths(site, docs)
    assert not failures


async def test_sitemap_on_another_host_is_never_fetched(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "a")
    docs, _ = await collect(make_source(site, session, sitemap_url="http://other.invalid/sitemap.xml"))

    assert site.url("/docs/a") in docs
    assert not any("other.invalid" in url for url in site.client_urls)


# -- limits and availability --------------------------------------------------------------------------


async def test_max_pages_is_respected(site: Site, session: aiohttp.ClientSession) -> None:
    source = make_source(site, session, max_pages=3)
    docs, failures = await collect(source)

    assert len(docs) + len(failures) == 3
    page_hits = [p for p in site.served if p.startswith("/docs/")]
    assert len(page_hits) == 3


async def test_start_url_down_without_sitemap_raises(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = status(500)
    site.routes["/sitemap.xml"] = status(404)
    with pytest.raises(SourceUnavailable, match="start_url"):
        await collect(make_source(site, session))


async def test_start_url_down_with_sitemap_is_a_failure(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = status(502)
    docs, failures = await collect(make_source(site, session))

    assert failures[site.url("/docs/")].reason == "HTTP 502"
    assert {"/docs/a", "/docs/sitemap-only"} <= paths(site, docs)


async def test_connection_refused_raises(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = WebsiteSource(start_url=f"http://127.0.0.1:{port}/docs/")
    source = WebsiteDocs(config, make_settings(retries=1), session, backoff_s=0.01)
    with pytest.raises(SourceUnavailable):
        await collect(source)


async def test_closing_early_cancels_in_flight_fetches(site: Site, session: aiohttp.ClientSession) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(site.release.wait(), 5)
        return web.Response(text="late", content_type="text/html")

    site.routes["/docs/"] = html_page("Index", "slow", "a")
    site.routes["/docs/slow"] = slow
    site.routes["/sitemap.xml"] = status(404)

    def ours() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if "_process_page" in repr(t.get_coro())]

    gen = make_source(site, session).documents()
    assert isinstance(await anext(gen), RawDocument)  # the start page
    assert isinstance(await anext(gen), RawDocument)  # /docs/a, while /docs/slow is still in flight
    assert ours()
    await gen.aclose()
    assert ours() == []


async def test_sitemap_caps(site: Site, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_source, "MAX_SITEMAP_FILES", 3)
    monkeypatch.setattr(web_source, "MAX_SITEMAP_URLS", 3)
    site.routes.update(
        {
            "/sitemap.xml": sitemap_index("/maps/1.xml", "/maps/2.xml", "/maps/3.xml"),
            "/maps/1.xml": urlset("/docs/a", "/docs/b"),
            "/maps/2.xml": urlset("/docs/new", "/docs/c", "/docs/sitemap-only"),
            "/maps/3.xml": urlset("/docs/flaky"),
        }
    )
    source = make_source(site, session, crawl=False)
    docs, _ = await collect(source)

    assert source.crawl_stats.sitemap_urls == 3
    assert paths(site, docs) == {"/docs/", "/docs/a", "/docs/b", "/docs/new"}
    assert site.hits("/maps/3.xml") == 0


async def test_links_are_parsed_off_the_event_loop(
    site: Site, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def recording_extract(html: str, page_url: str) -> list[str]:
        threads.append(threading.current_thread().name)
        return extract_links(html, page_url)

    monkeypatch.setattr(web_source, "extract_links", recording_extract)
    site.routes["/docs/"] = html_page("Index", "a")
    await collect(make_source(site, session))

    assert threads
    assert threading.main_thread().name not in threads


# -- pure helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Docs.Example.COM:80/a#frag", "http://docs.example.com/a"),
        ("https://docs.example.com:443", "https://docs.example.com/"),
        ("https://docs.example.com:8443/a?b=1", "https://docs.example.com:8443/a?b=1"),
        ("https://x.org/a?utm_source=n&v=2&fbclid=z", "https://x.org/a?v=2"),
        ("https://x.org/a?utm_medium=m", "https://x.org/a"),
        ("https://user:secret@x.org/a", "https://x.org/a"),
        ("mailto:me@x.org", None),
        ("javascript:void(0)", None),
        ("http://x.org:notaport/", None),
    ],
)
def test_normalise_url(url: str, expected: str | None) -> None:
    assert normalise_url(url) == expected


def test_scope_defaults_to_start_folder() -> None:
    scope = Scope.for_source(WebsiteSource(start_url="https://x.org/docs/v2/index.html"))
    assert scope.path_prefix == "/docs/v2/"
    assert scope.contains("https://x.org/docs/v2/a")
    assert not scope.contains("https://x.org/docs/v1/a")
    assert not scope.contains("http://x.org/docs/v2/a")
    assert not scope.contains("https://y.org/docs/v2/a")
    assert Scope.for_source(WebsiteSource(start_url="https://x.org/docs/", path_prefix="/docs/api/")).contains(
        "https://x.org/docs/api/z"
    )


def test_extract_links_resolves_against_base() -> None:
    html = (
        '<html><head><base href="/docs/v2/"></head><body>'
        '<a href="a">A</a><a href="../b#x">B</a><a href="#top">top</a><a href="a">again</a>'
        '<a href="mailto:x@y.z">m</a><a>no href</a><a href="http://[bad">bad</a></body></html>'
    )
    assert extract_links(html, "https://x.org/docs/v2/page") == [
        "https://x.org/docs/v2/a",
        "https://x.org/docs/b",
    ]


def test_parse_sitemap_kinds() -> None:
    assert parse_sitemap(b"<urlset><url><loc> https://x.org/a </loc></url></urlset>") == (
        "urlset",
        ["https://x.org/a"],
    )
    assert parse_sitemap(b"<sitemapindex><sitemap><loc>https://x.org/s.xml</loc></sitemap></sitemapindex>") == (
        "index",
        ["https://x.org/s.xml"],
    )
    assert parse_sitemap(b"https://x.org/a\nhttps://x.org/b\n") == (
        "urlset",
        ["https://x.org/a", "https://x.org/b"],
    )
    with pytest.raises(ValueError, match="DTD"):
        parse_sitemap(b'<!DOCTYPE x [<!ENTITY a "b">]><urlset/>')


async def test_calendar_style_endless_links_are_cut_off(site: Site, session: aiohttp.ClientSession) -> None:
    async def calendar(request: web.Request) -> web.StreamResponse:
        month = int(request.query.get("month", "0"))
        body = f"<html><body><h1>Month {month}</h1><a href='calendar?month={month + 1}'>next</a></body></html>"
        return web.Response(text=body, content_type="text/html")

    site.routes["/docs/"] = html_page("Index", "calendar")
    site.routes["/docs/calendar"] = calendar
    source = make_source(site, session)
    docs, failures = await collect(source)

    assert not failures
    assert site.hits("/docs/calendar") == web_source.MAX_QUERY_VARIANTS + 1  # the bare path, then 20 variants
    assert source.crawl_stats.skipped_traps == 1 and site.url("/docs/calendar?month=20") in docs


async def test_a_20_mb_page_is_skipped_without_reading_it_all(site: Site, session: aiohttp.ClientSession) -> None:
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(20 * 16):  # 20 MB in 64 KB writes
                await resp.write(b"<p>" + b"y" * 65_530 + b"</p>")
                sent += 65_537
            await resp.write_eof()
        return resp

    site.routes["/docs/"] = html_page("Index", "huge")
    site.routes["/docs/huge"] = huge
    docs, failures = await collect(make_source(site, session, make_settings(max_page_bytes=5_000_000)))

    assert failures[site.url("/docs/huge")].reason == "too large"
    assert site.url("/docs/") in docs
    assert sent < 20_000_000, "the download stopped early"


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/docs/secret",  # the same server under another name
        "http://127.0.0.2:{port}/docs/secret",  # loopback
        "http://10.0.0.1/admin",  # a private address
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "file:///etc/passwd",
    ],
)
async def test_redirects_to_private_or_loopback_addresses_are_never_followed(
    site: Site, session: aiohttp.ClientSession, target: str
) -> None:
    assert site.server is not None
    location = target.format(port=site.server.port)
    site.routes["/docs/"] = html_page("Index", "jump")
    site.routes["/docs/jump"] = redirect(location, 302)
    source = make_source(site, session)
    docs, failures = await collect(source)

    assert not failures and site.url("/docs/") in docs
    assert site.hits("/docs/jump") == 1
    assert site.client_urls and all(url.startswith(site.url("/")) for url in site.client_urls), site.client_urls
    assert site.hits("/docs/secret") == 0


# -- issue 9: request budget and caps -----------------------------------------------------------------


async def crawl_until_unavailable(source: WebsiteDocs) -> tuple[list[RawDocument | DocumentFailure], str]:
    """Everything yielded before the source gave up, and why it gave up."""
    items: list[RawDocument | DocumentFailure] = []
    with pytest.raises(SourceUnavailable) as raised:
        async for item in source.documents():
            items.append(item)
    return items, str(raised.value)


async def test_request_budget_counts_every_get(
    site: Site, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # 404s, a redirect and 500s (with retries) cost nothing today but each is an HTTP request.
    site.routes["/docs/"] = html_page("Index", *(f"missing{n}" for n in range(20)), "old", "broken", "a")
    site.routes["/sitemap.xml"] = status(404)
    source = make_source(site, session, make_settings(max_requests=9))
    with caplog.at_level("WARNING", logger="indexer.web"):
        items, reason = await crawl_until_unavailable(source)

    assert len(site.served) == 9  # robots, sitemap, the start page and 6 more: not one over
    assert site.url("/docs/") in {item.page_id for item in items}
    assert "max_requests" in reason and "nothing is pruned" in reason
    assert source.crawl_stats.requests == 9
    assert source.crawl_stats.budget_exhausted
    assert sum("request budget" in r.getMessage() for r in caplog.records) == 1


async def test_request_budget_counts_retries_and_redirect_hops(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", "broken", "older")
    site.routes["/docs/older"] = redirect("old")
    site.routes["/sitemap.xml"] = status(404)
    # robots + sitemap + index + broken x3 + older -> old -> new = 9 requests: a budget of 9 is just enough.
    docs, failures = await collect(make_source(site, session, make_settings(max_requests=9)))
    assert paths(site, docs) == {"/docs/", "/docs/new"} and set(paths(site, failures)) == {"/docs/broken"}
    assert len(site.served) == 9

    site.served.clear()
    source = make_source(site, session, make_settings(max_requests=8))
    _items, reason = await crawl_until_unavailable(source)
    assert len(site.served) == 8 and "max_requests" in reason


async def test_budget_stop_prunes_nothing(site: Site, session: aiohttp.ClientSession) -> None:
    """Pages the budget kept us from reaching must not look gone to the indexer: the source is incomplete."""
    site.routes["/docs/"] = html_page("Index", "a", "b", "new")
    site.routes["/sitemap.xml"] = status(404)
    source = make_source(site, session, make_settings(max_requests=3, concurrency=1))
    items, reason = await crawl_until_unavailable(source)

    assert [rel(site, item.page_id) for item in items] == ["/docs/"]
    assert "3 URLs not visited" in reason


async def test_links_per_page_are_capped(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/"] = html_page("Index", *(f"p{n}" for n in range(30)))
    for n in range(30):
        site.routes[f"/docs/p{n}"] = html_page(f"P{n}")
    site.routes["/sitemap.xml"] = status(404)
    source = make_source(site, session, make_settings(max_links_per_page=10))
    docs, _ = await collect(source)

    assert paths(site, docs) == {"/docs/"} | {f"/docs/p{n}" for n in range(10)}
    assert source.crawl_stats.dropped_links == 20 + 1  # the 20 pages and the footer's Home link
    assert site.hits("/docs/p10") == 0


async def test_frontier_is_capped_and_the_source_counts_as_incomplete(
    site: Site, session: aiohttp.ClientSession
) -> None:
    site.routes["/sitemap.xml"] = urlset(*(f"/docs/p{n}" for n in range(30)))
    for n in range(30):
        site.routes[f"/docs/p{n}"] = html_page(f"P{n}")
    source = make_source(site, session, make_settings(max_frontier=5), crawl=False)
    items, reason = await crawl_until_unavailable(source)

    assert {rel(site, item.page_id) for item in items} == {"/docs/"} | {f"/docs/p{n}" for n in range(5)}
    assert source.crawl_stats.dropped_frontier_full == 25
    assert "max_frontier" in reason
    assert site.hits("/docs/p5") == 0


# -- issue 9: decompression bombs ---------------------------------------------------------------------


def gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes gzipped: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    out = [packer.compress(block) for _ in range(inflated >> 20)]
    out.append(packer.flush())
    return b"".join(out)


async def test_gzip_bomb_is_refused_within_max_page_bytes(site: Site, session: aiohttp.ClientSession) -> None:
    bomb = gzip_bomb(200 << 20)  # 200 MB of zeros in ~200 KB
    assert len(bomb) < 300_000

    async def bomb_page(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
        resp.enable_chunked_encoding()  # no Content-Length: only the read limit can stop it
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            await resp.write(bomb)
            await resp.write_eof()
        return resp

    site.routes["/docs/"] = html_page("Index", "bomb")
    site.routes["/docs/bomb"] = bomb_page
    site.routes["/sitemap.xml"] = status(404)
    tracemalloc.start()
    try:
        docs, failures = await collect(make_source(site, session, make_settings(max_page_bytes=64 * 1024)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert failures[site.url("/docs/bomb")].reason == "too large"
    assert site.url("/docs/") in docs
    assert peak < 16 << 20, f"peak {peak >> 20} MB: the bomb was inflated into memory"


# -- issue 9: dot segments and the start folder -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.org/docs/../private/x.html", "https://x.org/private/x.html"),
        ("https://x.org/docs/%2e%2e/private/y.html", "https://x.org/private/y.html"),
        ("https://x.org/docs/%2E./private/y", "https://x.org/private/y"),
        ("https://x.org/docs/.%2E/private/y", "https://x.org/private/y"),
        ("https://x.org/docs/./a/%2e/b", "https://x.org/docs/a/b"),
        ("https://x.org/docs/a/..", "https://x.org/docs/"),
        ("https://x.org/docs/a/%2e%2e?q=1", "https://x.org/docs/?q=1"),
        ("https://x.org/../../etc/passwd", "https://x.org/etc/passwd"),
        ("https://x.org/docs/..a/b..", "https://x.org/docs/..a/b.."),  # not dot segments
    ],
)
def test_normalise_url_removes_dot_segments(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


async def test_sitemap_dot_segments_never_escape_the_scope(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs/index.html"] = html_page("Index")
    site.routes["/sitemap.xml"] = urlset(
        "/docs/../private/x.html", "/docs/%2e%2e/private/y.html", "/docs/%2E./private/z.html", "/docs/./a"
    )
    site.routes["/private/x.html"] = html_page("X")
    site.routes["/private/y.html"] = html_page("Y")
    site.routes["/private/z.html"] = html_page("Z")
    source = WebsiteDocs(
        WebsiteSource(start_url=site.url("/docs/index.html"), crawl=False), make_settings(), session, backoff_s=0.01
    )
    docs, _ = await collect(source)

    assert paths(site, docs) == {"/docs/index.html", "/docs/a"}
    assert not any("private" in served or "%2" in served.lower() for served in site.served), site.served
    assert not any("private" in url for url in site.client_urls), site.client_urls


@pytest.mark.parametrize(
    ("start_url", "prefix"),
    [
        ("https://x.org/docs", "/docs/"),
        ("https://x.org/docs?lang=en", "/docs/"),
        ("https://x.org/docs/v2", "/docs/v2/"),
        ("https://x.org/docs/index.html", "/docs/"),
        ("https://x.org/docs/", "/docs/"),
        ("https://x.org", "/"),
        ("https://x.org/docs/a/../guide", "/docs/guide/"),
    ],
)
def test_scope_of_a_start_url_without_trailing_slash(start_url: str, prefix: str) -> None:
    scope = Scope.for_source(WebsiteSource(start_url=start_url))
    assert scope.path_prefix == prefix
    folder = prefix.rstrip("/")
    assert scope.contains(f"https://x.org{folder}") and scope.contains(f"https://x.org{prefix}page")
    if prefix != "/":
        assert not scope.contains("https://x.org/other/page")
        assert not scope.contains(f"https://x.org{folder}-private/page")


async def test_start_url_without_slash_crawls_only_its_folder(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/docs"] = html_page("Docs", "/docs/a", "/blog/x", "/docsecret")
    site.routes["/docsecret"] = html_page("Not ours")
    site.routes["/sitemap.xml"] = urlset("/blog/y", "/docs/b")
    source = WebsiteDocs(WebsiteSource(start_url=site.url("/docs")), make_settings(), session, backoff_s=0.01)
    docs, _ = await collect(source)

    assert {"/docs", "/docs/a", "/docs/b"} <= paths(site, docs)
    for path in ("/blog/x", "/blog/y", "/docsecret"):
        assert site.hits(path) == 0, path


# -- issue 9: private addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("93.184.216.34", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert web_source.is_public_address(ipaddress.ip_address(address)) is public


async def test_loopback_start_url_is_refused_by_default(site: Site, session: aiohttp.ClientSession) -> None:
    source = make_source(site, session, make_settings(allow_private_addresses=False))
    with pytest.raises(SourceUnavailable, match=r"private address; set indexer\.allow_private_addresses"):
        await collect(source)
    assert site.served == [] and site.client_urls == []


async def test_a_name_resolving_to_loopback_is_refused_by_the_session(site: Site) -> None:
    """localhost is a name, so only the session's resolver can see where it points."""
    assert site.server is not None
    settings = make_settings(allow_private_addresses=False)
    config = WebsiteSource(start_url=f"http://localhost:{site.server.port}/docs/")
    async with http_session(settings) as guarded:
        with pytest.raises(SourceUnavailable, match=r"private address; set indexer\.allow_private_addresses"):
            await collect(WebsiteDocs(config, settings, guarded, backoff_s=0.01))
    assert site.served == []


async def test_private_addresses_are_crawled_when_allowed(site: Site) -> None:
    assert site.server is not None
    settings = make_settings(allow_private_addresses=True)
    config = WebsiteSource(start_url=f"http://localhost:{site.server.port}/docs/", crawl=False)
    async with http_session(settings) as session:
        docs, _ = await collect(WebsiteDocs(config, settings, session, backoff_s=0.01))
    assert f"http://localhost:{site.server.port}/docs/" in docs
    assert site.hits("/docs/") == 1


async def test_resolver_keeps_only_public_answers() -> None:
    class Answers(AbstractResolver):
        def __init__(self, *hosts: str) -> None:
            self.hosts = hosts

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0) for h in self.hosts
            ]

        async def close(self) -> None:
            pass

    mixed = web_source.PublicAddressResolver(Answers("10.0.0.7", "93.184.216.34", "::ffff:127.0.0.1"))
    assert [r["host"] for r in await mixed.resolve("docs.example", 443)] == ["93.184.216.34"]
    private = web_source.PublicAddressResolver(Answers("169.254.169.254", "fd00::1"))
    with pytest.raises(OSError, match="private address"):
        await private.resolve("metadata.example", 80)


# -- issue 9: hostile sitemaps and robots.txt ----------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10))
    + "]><urlset><url><loc>&lol9;</loc></url></urlset>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<urlset><url><loc>&xxe;</loc></url></urlset>"
)


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS.encode(),
        BILLION_LAUGHS.encode("utf-16"),
        EXTERNAL_ENTITY.encode(),
        EXTERNAL_ENTITY.encode("utf-16"),
        '<!DOCTYPE urlset [<!ENTITY p "https://x.org/a">]><urlset><url><loc>&p;</loc></url></urlset>'.encode("utf-16"),
        b'<!DOCTYPE urlset SYSTEM "https://evil.example/x.dtd"><urlset/>',
    ],
)
def test_parse_sitemap_refuses_dtds_and_entities(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sitemap(data)


@pytest.mark.parametrize("kind", ["billion-laughs", "external-entity", "utf16-entity"])
async def test_hostile_sitemap_is_reported_unreadable(
    site: Site, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    assert site.server is not None
    expanding = f'<!DOCTYPE urlset [<!ENTITY p "http://127.0.0.1:{site.server.port}/docs/">]>'
    xml = {
        "billion-laughs": BILLION_LAUGHS.encode("utf-16"),
        "external-entity": EXTERNAL_ENTITY.encode("utf-16"),
        "utf16-entity": (expanding + "<urlset><url><loc>&p;sitemap-only</loc></url></urlset>").encode("utf-16"),
    }[kind]
    site.routes["/sitemap.xml"] = raw(xml, "application/xml")
    site.routes["/docs/"] = html_page("Index", "a")
    with caplog.at_level("WARNING", logger="indexer.web"):
        docs, _ = await collect(make_source(site, session))

    assert {"/docs/", "/docs/a"} <= paths(site, docs)
    assert site.hits("/docs/sitemap-only") == 0  # the entity was never expanded
    assert any("sitemap" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)


async def test_robots_with_a_bogus_charset_is_read_as_utf8(site: Site, session: aiohttp.ClientSession) -> None:
    site.routes["/robots.txt"] = raw(b"User-agent: *\nDisallow: /docs/b\n", "text/plain; charset=undefined")
    site.routes["/docs/"] = html_page("Index", "a", "b", "odd")
    site.routes["/docs/odd"] = raw(b"<html><p>caf\xc3\xa9</p></html>", "text/html; charset=idna")
    site.routes["/sitemap.xml"] = status(404)
    docs, failures = await collect(make_source(site, session))

    assert paths(site, docs) == {"/docs/", "/docs/a", "/docs/c?lang=py", "/docs/odd"}
    assert docs[site.url("/docs/odd")].content == "<html><p>café</p></html>"
    assert site.hits("/docs/b") == 0 and not failures


@pytest.mark.parametrize("charset", ["undefined", "idna", "punycode", "rot13", "base64", "utf-8\x00", "nope"])
def test_decode_falls_back_to_utf8_for_any_bogus_charset(charset: str) -> None:
    assert web_source._decode("café".encode(), charset) == "café"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_sitemap_with_a_byte_order_mark_is_xml(encoding: str) -> None:
    xml = '<?xml version="1.0"?><urlset><url><loc>https://x.org/a</loc></url></urlset>'
    assert parse_sitemap(xml.encode(encoding)) == ("urlset", ["https://x.org/a"])
