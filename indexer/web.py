"""A website as a docs source: sitemap plus optional link crawl, polite and bounded.

Everything fetched stays on the configured site: pages must be under the path prefix,
and robots.txt and sitemaps must be on the same scheme and host. Redirects are followed
by hand so a redirect can never take us somewhere else. A page we could not read this
time becomes a ``DocumentFailure`` (its old chunks are kept); a page that is gone (404/410)
or no longer ours yields nothing, so the indexer prunes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import aiohttp
from bs4 import BeautifulSoup, SoupStrainer

from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from rag.errors import ConfigError
from rag.settings import IndexerSettings, WebsiteSource

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
GONE_STATUSES = frozenset({404, 410})
MAX_REDIRECTS = 5
MAX_SITEMAP_DEPTH = 3  # the root sitemap is depth 1; an index at depth 3 is not followed further
MAX_SITEMAP_FILES = 100
MAX_SITEMAP_URLS = 50_000
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
READ_CHUNK = 64 * 1024
MAX_QUERY_VARIANTS = 20  # query-string variants of one path crawled at most (crawler traps)
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga", "ref_src"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str | None:
    """Canonical form used as page_id, so one page is not indexed under several URLs.

    Lower-cases scheme and host, drops credentials, default ports, fragments and
    tracking parameters (utm_* and friends); keeps any other query string. Returns
    None for anything that is not a plain http(s) URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not (k.lower().startswith("utm_") or k.lower() in TRACKING_PARAMS)]
        query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def resolve_url(base: str, ref: str) -> str | None:
    """``ref`` (a link, Location or <loc>) made absolute and normalised; None if it is not usable."""
    try:
        return normalise_url(urljoin(base, ref.strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Scope:
    """Which URLs belong to this source: same origin and under ``path_prefix``."""

    scheme: str
    netloc: str
    path_prefix: str

    @classmethod
    def for_source(cls, config: WebsiteSource) -> Scope:
        start = normalise_url(config.start_url)
        if start is None:
            raise ConfigError(f"Website source start_url must be an http(s) URL, got {config.start_url!r}.")
        parts = urlsplit(start)
        prefix = config.path_prefix or parts.path[: parts.path.rfind("/") + 1] or "/"
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        return cls(parts.scheme, parts.netloc, prefix)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == self.scheme and parts.netloc == self.netloc

    def contains(self, url: str) -> bool:
        """``url`` must already be normalised."""
        return self.same_origin(url) and urlsplit(url).path.startswith(self.path_prefix)


@dataclass
class CrawlStats:
    """Counts for the indexer's run report; one page lands in exactly one bucket."""

    fetched: int = 0
    failed: int = 0
    not_found: int = 0
    skipped_out_of_scope: int = 0
    skipped_robots: int = 0
    skipped_non_html: int = 0
    duplicates: int = 0
    sitemap_urls: int = 0
    skipped_traps: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Outcome = Literal["ok", "gone", "out_of_scope", "robots", "non_html", "duplicate", "failed"]


@dataclass(frozen=True)
class _Fetched:
    """What one GET (after retries and redirects) came to."""

    outcome: Outcome
    url: str  # the final URL after redirects
    status: int = 0
    body: bytes = b""
    charset: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class _PageResult:
    fetched: _Fetched
    requested: str
    content: str = ""
    links: tuple[str, ...] = ()


class _TooLarge(Exception):
    pass


class WebsiteDocs:
    """Yields the HTML pages of one website source (see the module docstring)."""

    def __init__(
        self,
        config: WebsiteSource,
        settings: IndexerSettings,
        session: aiohttp.ClientSession,
        *,
        backoff_s: float = 0.2,
        max_retry_after_s: float = 5.0,
    ) -> None:
        self.config = config
        self.settings = settings
        self.session = session
        self.source_id = config.source_id()
        self.scope = Scope.for_source(config)
        self.start_url = normalise_url(config.start_url) or config.start_url
        self.crawl_stats = CrawlStats()
        self._backoff_s = backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        self._robots: RobotFileParser | None = None
        self._seen: set[str] = set()
        self._query_variants: dict[str, int] = {}
        if not self.scope.contains(self.start_url):
            logger.warning(
                "start_url %s is outside path_prefix %s; only the sitemap can list pages",
                self.start_url,
                self.scope.path_prefix,
            )

    # -- the crawl ---------------------------------------------------------------------------------

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        """Sitemap first, then the start page, then a bounded BFS over in-scope links."""
        self.crawl_stats = stats = CrawlStats()
        self._seen = set()
        self._query_variants = {}
        self._robots = await self._load_robots()
        sitemap_urls, sitemap_ok = await self._read_sitemaps()
        stats.sitemap_urls = len(sitemap_urls)
        max_pages = self.config.max_pages
        produced = 0
        frontier: deque[str] = deque()

        if self._admit(self.start_url):
            first = await self._process_page(self.start_url)
            if not sitemap_ok and first.fetched.outcome != "ok":
                raise SourceUnavailable(
                    f"{self.source_id}: no sitemap and start_url {self.start_url} could not be read "
                    f"({first.fetched.outcome}: {first.fetched.reason or first.fetched.status})"
                )
            item = self._account(first, frontier)
            if item is not None:
                produced += 1
                yield item
        elif not sitemap_ok:
            why = "disallowed by robots.txt" if self.scope.contains(self.start_url) else "outside path_prefix"
            raise SourceUnavailable(f"{self.source_id}: no sitemap and start_url {self.start_url} is {why}")

        for url in sitemap_urls:
            if self._admit(url):
                frontier.append(url)

        in_flight: set[asyncio.Task[_PageResult]] = set()
        try:
            while produced < max_pages and (frontier or in_flight):
                # Reserving a slot per in-flight page keeps yielded+failed within max_pages.
                while frontier and len(in_flight) < self.settings.concurrency and produced + len(in_flight) < max_pages:
                    in_flight.add(asyncio.create_task(self._process_page(frontier.popleft())))
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    item = self._account(task.result(), frontier)
                    if item is not None:
                        produced += 1
                        yield item
            if produced >= max_pages and frontier:
                logger.info(
                    "%s: stopped at max_pages=%d with %d URLs unvisited",
                    self.source_id,
                    max_pages,
                    len(frontier),
                )
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        logger.info("%s: crawl done %s", self.source_id, stats.as_dict())

    def _admit(self, url: str) -> bool:
        """First sighting of a normalised URL: is it ours and allowed? Each URL is judged once."""
        if url in self._seen:
            return False
        self._seen.add(url)
        if not self.scope.contains(url):
            self.crawl_stats.skipped_out_of_scope += 1
            return False
        if not self._robots_allows(url):
            logger.debug("robots.txt disallows %s", url)
            self.crawl_stats.skipped_robots += 1
            return False
        parts = urlsplit(url)
        if parts.query:  # calendars, faceted search: endless ?month=… variants of one page
            path = parts.path
            self._query_variants[path] = self._query_variants.get(path, 0) + 1
            if self._query_variants[path] > MAX_QUERY_VARIANTS:
                self.crawl_stats.skipped_traps += 1
                return False
        return True

    def _account(self, result: _PageResult, frontier: deque[str]) -> RawDocument | DocumentFailure | None:
        """Turn a page result into stats, new frontier entries and maybe an item to yield."""
        stats, fetched = self.crawl_stats, result.fetched
        if self.config.crawl:
            for link in result.links:
                if self._admit(link):
                    frontier.append(link)
        match fetched.outcome:
            case "ok":
                stats.fetched += 1
                return RawDocument(page_id=fetched.url, url=fetched.url, content=result.content, kind="html")
            case "failed":
                stats.failed += 1
                logger.warning("%s: could not fetch %s: %s", self.source_id, fetched.url, fetched.reason)
                return DocumentFailure(page_id=fetched.url, url=fetched.url, reason=fetched.reason)
            case "gone":
                stats.not_found += 1
            case "out_of_scope":
                stats.skipped_out_of_scope += 1
            case "robots":
                stats.skipped_robots += 1
            case "non_html":
                stats.skipped_non_html += 1
            case "duplicate":
                stats.duplicates += 1
        return None

    async def _process_page(self, url: str) -> _PageResult:
        """Fetch one page and, for HTML, decode it and pull out its links (parsed off the loop)."""
        try:
            fetched = await self._fetch(
                url,
                allowed=self.scope.contains,
                limit=self.settings.max_page_bytes,
                check_robots=True,
                html_only=True,
                dedupe=True,
            )
            if fetched.outcome != "ok":
                return _PageResult(fetched, url)
            content = _decode(fetched.body, fetched.charset)
            links: tuple[str, ...] = ()
            if self.config.crawl:
                links = tuple(await asyncio.to_thread(extract_links, content, fetched.url))
            return _PageResult(fetched, url, content, links)
        except Exception as exc:  # one odd page must not abort the whole source
            logger.exception("%s: unexpected error on %s", self.source_id, url)
            return _PageResult(_Fetched("failed", url, reason=f"internal error: {type(exc).__name__}"), url)

    # -- robots.txt and sitemaps -------------------------------------------------------------------

    async def _load_robots(self) -> RobotFileParser:
        """RFC 9309: 4xx means no rules; an unreachable robots.txt means we may not crawl now."""
        url = f"{self.scope.origin}/robots.txt"
        parser = RobotFileParser(url)
        fetched = await self._fetch(url, allowed=self.scope.same_origin, limit=ROBOTS_MAX_BYTES, truncate=True)
        if fetched.outcome == "ok":
            parser.parse(_decode(fetched.body, fetched.charset).splitlines())
            return parser
        if fetched.outcome == "failed" and (fetched.status == 0 or fetched.status >= 500 or fetched.status == 429):
            raise SourceUnavailable(f"{self.source_id}: robots.txt at {url} is unreachable ({fetched.reason})")
        logger.info(
            "%s: no usable robots.txt at %s (%s); allowing all",
            self.source_id,
            url,
            fetched.reason or fetched.outcome,
        )
        parser.allow_all = True
        return parser

    def _robots_allows(self, url: str) -> bool:
        return self._robots is None or self._robots.can_fetch(self.settings.user_agent, url)

    def _sitemap_roots(self) -> list[str]:
        """The configured sitemap, else those robots.txt declares on our origin, else /sitemap.xml."""
        robots_url = f"{self.scope.origin}/robots.txt"
        if self.config.sitemap_url:
            candidates = [self.config.sitemap_url]
        else:
            candidates = list((self._robots.site_maps() if self._robots is not None else None) or [])
        roots: list[str] = []
        for candidate in candidates:
            url = resolve_url(robots_url, candidate)
            if url is None or not self.scope.same_origin(url):
                logger.warning("%s: ignoring sitemap %s: not on %s", self.source_id, candidate, self.scope.origin)
            elif url not in roots:
                roots.append(url)
        if not roots and not self.config.sitemap_url:
            roots.append(f"{self.scope.origin}/sitemap.xml")
        return roots

    async def _read_sitemaps(self) -> tuple[list[str], bool]:
        """All page URLs listed by the sitemap tree (indexes followed breadth-first, bounded).

        The flag says whether at least one sitemap was read, which alone makes the source listable.
        """
        pending = deque((url, 1) for url in self._sitemap_roots())
        visited: set[str] = set()
        urls: list[str] = []
        listed: set[str] = set()
        read_any = False
        while pending and len(visited) < MAX_SITEMAP_FILES and len(urls) < MAX_SITEMAP_URLS:
            url, depth = pending.popleft()
            if url in visited:
                continue
            visited.add(url)
            fetched = await self._fetch(url, allowed=self.scope.same_origin, limit=self.settings.max_page_bytes)
            if fetched.outcome != "ok":
                log = logger.info if fetched.outcome == "gone" else logger.warning
                log("%s: sitemap %s not read (%s)", self.source_id, url, fetched.reason or fetched.outcome)
                continue
            try:
                data = _maybe_gunzip(fetched.body, self.settings.max_page_bytes)
                kind, locs = await asyncio.to_thread(parse_sitemap, data)
            except (ValueError, zlib.error, ElementTree.ParseError) as exc:
                logger.warning("%s: sitemap %s is unreadable: %s", self.source_id, url, exc)
                continue
            read_any = True
            if kind == "index":
                if depth >= MAX_SITEMAP_DEPTH:
                    logger.warning("%s: sitemap index %s nested too deep; not followed", self.source_id, url)
                    continue
                for loc in locs:
                    child = resolve_url(url, loc)
                    if child is not None and self.scope.same_origin(child):
                        pending.append((child, depth + 1))
                continue
            for loc in locs:
                page = resolve_url(url, loc)
                if page is not None and page not in listed and len(urls) < MAX_SITEMAP_URLS:
                    listed.add(page)
                    urls.append(page)
        if pending:
            logger.warning("%s: sitemap limits reached; %d sitemaps not read", self.source_id, len(pending))
        logger.info("%s: %d URLs from %d sitemaps", self.source_id, len(urls), len(visited))
        return urls, read_any

    # -- HTTP --------------------------------------------------------------------------------------

    async def _fetch(
        self,
        url: str,
        *,
        allowed: Callable[[str], bool],
        limit: int,
        check_robots: bool = False,
        html_only: bool = False,
        dedupe: bool = False,
        truncate: bool = False,
    ) -> _Fetched:
        """GET with manual redirects that never leave ``allowed``; in-scope hops are deduplicated."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            fetched, location = await self._get_with_retries(
                current, limit=limit, html_only=html_only, truncate=truncate
            )
            if location is None:
                return fetched
            target = resolve_url(current, location)
            if target is None or not allowed(target):
                logger.info(
                    "%s: %s redirects out of scope to %s; skipped",
                    self.source_id,
                    current,
                    target or location,
                )
                return _Fetched("out_of_scope", current, status=fetched.status)
            if check_robots and not self._robots_allows(target):
                return _Fetched("robots", target, status=fetched.status)
            if dedupe:  # the final URL is the page_id, so each one is claimed once
                if target in self._seen:
                    return _Fetched("duplicate", target, status=fetched.status)
                self._seen.add(target)
            logger.debug("%s: %s -> %d -> %s", self.source_id, current, fetched.status, target)
            current = target
        return _Fetched("failed", url, reason=f"more than {MAX_REDIRECTS} redirects")

    async def _get_with_retries(
        self, url: str, *, limit: int, html_only: bool, truncate: bool
    ) -> tuple[_Fetched, str | None]:
        """One hop. Returns the result, or a redirect Location to follow."""
        reason = ""
        status = 0
        for attempt in range(self.settings.retries + 1):
            retry_after: float | None = None
            try:
                async with self.session.get(
                    url,
                    allow_redirects=False,
                    timeout=self._timeout,
                    headers={"User-Agent": self.settings.user_agent},
                ) as resp:
                    status = resp.status
                    if status in REDIRECT_STATUSES:
                        location = resp.headers.get("Location")
                        if not location:
                            return _Fetched("failed", url, status, reason=f"HTTP {status} without Location"), None
                        return _Fetched("ok", url, status), location
                    if status in GONE_STATUSES:
                        logger.debug("%s: %s is gone (HTTP %d)", self.source_id, url, status)
                        return _Fetched("gone", url, status, reason=f"HTTP {status}"), None
                    if status >= 500 or status == 429:
                        reason = f"HTTP {status}"
                        retry_after = _retry_after(resp.headers.get("Retry-After"))
                    elif not 200 <= status < 300:
                        return _Fetched("failed", url, status, reason=f"HTTP {status}"), None
                    else:
                        has_type = "Content-Type" in resp.headers
                        if html_only and has_type and resp.content_type not in HTML_TYPES:
                            logger.debug("%s: skipping %s (%s)", self.source_id, url, resp.content_type)
                            return _Fetched("non_html", url, status), None
                        try:
                            body = await _read_limited(resp, limit, truncate=truncate)
                        except _TooLarge:
                            logger.warning("%s: %s is larger than %d bytes", self.source_id, url, limit)
                            return _Fetched("failed", url, status, reason="too large"), None
                        if html_only and not has_type and not _looks_like_html(body):
                            return _Fetched("non_html", url, status), None
                        return _Fetched("ok", url, status, body=body, charset=resp.charset), None
            except aiohttp.InvalidURL:
                return _Fetched("failed", url, reason="invalid URL"), None
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = 0
                reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            if attempt < self.settings.retries:
                delay = self._backoff_s * 2**attempt
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self._max_retry_after_s))
                logger.debug("%s: %s failed (%s); retry %d in %.2fs", self.source_id, url, reason, attempt + 1, delay)
                await asyncio.sleep(delay)
        return _Fetched("failed", url, status, reason=reason), None


# -- pure helpers (run in threads where they may be slow) ---------------------------------------------


def extract_links(html: str, page_url: str) -> list[str]:
    """Normalised absolute targets of ``<a href>``, honouring ``<base href>``; CPU-bound, call in a thread."""
    soup = BeautifulSoup(html, "html.parser", parse_only=SoupStrainer(["a", "base"]))
    base = page_url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        with contextlib.suppress(ValueError):
            base = urljoin(page_url, str(base_tag.get("href", "")).strip())
    links: list[str] = []
    seen: set[str] = set()
    for anchor in soup.find_all("a", href=True):
        href = str(anchor.get("href", "")).strip()
        if not href or href.startswith("#"):
            continue
        url = resolve_url(base, href)
        if url is not None and url not in seen:
            seen.add(url)
            links.append(url)
    return links


def parse_sitemap(data: bytes) -> tuple[Literal["index", "urlset"], list[str]]:
    """``<loc>`` entries of a sitemap or sitemap index (namespace-agnostic), or a plain-text URL list."""
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        text = stripped.decode("utf-8", errors="replace")
        return "urlset", [line.strip() for line in text.splitlines() if line.strip().startswith("http")]
    if b"<!ENTITY" in stripped:  # sitemaps never need entities; refuse expansion tricks
        raise ValueError("sitemap declares XML entities")
    root = ElementTree.fromstring(stripped)
    kind: Literal["index", "urlset"] = "index" if _local(root.tag) == "sitemapindex" else "urlset"
    entry = "sitemap" if kind == "index" else "url"
    locs = [
        loc.text.strip()
        for item in root
        if _local(item.tag) == entry
        for loc in item
        if _local(loc.tag) == "loc" and loc.text and loc.text.strip()
    ]
    return kind, locs


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _maybe_gunzip(data: bytes, limit: int) -> bytes:
    """Sitemaps may be served as raw .gz files; inflate with a size cap (no gzip bombs)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise ValueError(f"decompressed sitemap is larger than {limit} bytes")
    if not inflater.eof:
        raise ValueError("truncated gzip data")
    return out


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes:
    """Stream at most ``limit`` bytes; the rest is never read into memory."""
    if not truncate and resp.content_length is not None and resp.content_length > limit:
        raise _TooLarge
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(READ_CHUNK):
        buf += chunk
        if len(buf) > limit:
            if truncate:
                return bytes(buf[:limit])
            raise _TooLarge
    return bytes(buf)


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _retry_after(value: str | None) -> float | None:
    """Only the numeric form; an HTTP-date falls back to our own backoff."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
