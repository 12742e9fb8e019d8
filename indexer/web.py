"""A website as a docs source: sitemap plus optional link crawl, polite and bounded.

Everything fetched stays on the configured site: pages must be under the path prefix,
and robots.txt and sitemaps must be on the same scheme and host. Redirects are followed
by hand so a redirect can never take us somewhere else. A page we could not read this
time becomes a ``DocumentFailure`` (its old chunks are kept); a page that is gone (404/410)
or no longer ours yields nothing, so the indexer prunes it.

Bounded against hostile or runaway sites: every GET spends one request of a per-run budget
(``indexer.max_requests``), the frontier and the links taken per page are capped, bodies are
read up to ``max_page_bytes`` (aiohttp>=3.14 inflates compressed bodies in bounded steps),
sitemaps are parsed without DTDs, and hosts on loopback, private or link-local addresses are
refused unless ``indexer.allow_private_addresses`` is on. A crawl cut short by the budget or the
frontier cap raises ``SourceUnavailable`` after yielding what it read, so nothing is pruned.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ipaddress
import logging
import re
import socket
import zlib
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import aiohttp
import defusedxml.ElementTree as SafeXML
from aiohttp.abc import AbstractResolver, ResolveResult
from bs4 import BeautifulSoup, SoupStrainer

from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from rag.errors import ConfigError, DocentError
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
XML_STARTS = (b"<", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
PRIVATE_ADDRESS_REASON = "refused: resolves to a private address; set indexer.allow_private_addresses"
BUDGET_REASON = "request budget (indexer.max_requests) spent"
_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def normalise_url(url: str) -> str | None:
    """Canonical form used as page_id, so one page is not indexed under several URLs.

    Lower-cases scheme and host, drops credentials, default ports, fragments and
    tracking parameters (utm_* and friends) and dot segments; keeps any other query
    string. Returns None for anything that is not a plain http(s) URL.
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
    return urlunsplit((scheme, netloc, remove_dot_segments(parts.path or "/"), query, ""))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, reading ``%2e`` as ``.`` (an unreserved character, RFC 3986 6.2.2.2).

    Servers and yarl resolve ``/docs/../private`` and ``/docs/%2e%2e/private`` to ``/private``,
    so the scope check must judge the resolved path, not the one a sitemap spelled.
    """
    segments = _ENCODED_DOT.sub(".", path).split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:  # never above the root: kept[0] is the empty string before the first /
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # /a/b/.. is the folder /a/
    return "/".join(kept) or "/"


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
        prefix = config.path_prefix or start_folder(parts.path)
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        return cls(parts.scheme, parts.netloc, remove_dot_segments(prefix))

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == self.scheme and parts.netloc == self.netloc

    def contains(self, url: str) -> bool:
        """``url`` must already be normalised. The folder itself counts without its slash (``/docs``)."""
        path = urlsplit(url).path
        in_folder = path.startswith(self.path_prefix) or path == self.path_prefix.rstrip("/")
        return in_folder and self.same_origin(url)


def start_folder(path: str) -> str:
    """The folder a start URL stands for: ``/docs/index.html`` (a file) and ``/docs`` (a folder) both give ``/docs/``.

    A last segment with a dot is read as a file; set ``path_prefix`` where that guess is wrong.
    """
    head, _, last = path.rpartition("/")
    return f"{head}/" if not last or "." in last else f"{path}/"


@dataclass
class CrawlStats:
    """Counts for the indexer's run report; one page lands in exactly one bucket (up to ``skipped_traps``)."""

    fetched: int = 0
    failed: int = 0
    not_found: int = 0
    skipped_out_of_scope: int = 0
    skipped_robots: int = 0
    skipped_non_html: int = 0
    duplicates: int = 0
    sitemap_urls: int = 0
    skipped_traps: int = 0
    dropped_links: int = 0  # links past max_links_per_page on their page
    dropped_frontier_full: int = 0  # new in-scope links not queued because the frontier was full
    requests: int = 0  # every GET: robots.txt, sitemaps, pages, redirect hops, retries
    budget_exhausted: bool = False  # a request was wanted after max_requests were spent

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Outcome = Literal["ok", "gone", "out_of_scope", "robots", "non_html", "duplicate", "failed", "refused", "budget"]


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


# -- the private-address guard ------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(ip: IPAddress) -> bool:
    """Globally routable unicast only. IPv4 inside IPv6 (mapped, 6to4) is judged as the IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
    return ip.is_global and not (special or ip.is_unspecified)


def _is_public_host(host: str) -> bool:
    try:
        return is_public_address(ipaddress.ip_address(host))
    except ValueError:
        return False


class PrivateAddressRefused(DocentError, OSError):
    """A host resolved only to non-public addresses. An OSError, so aiohttp reports it as a connection error."""


class PublicAddressResolver(AbstractResolver):
    """aiohttp's resolver keeping only public addresses; installed by ``indexer.build.http_session``.

    The connector connects to exactly the addresses returned here, so a DNS answer that changes
    between a check and the connection (rebinding) cannot slip through. aiohttp never asks a
    resolver about IP literals: ``WebsiteDocs`` refuses private literals itself.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        public = [answer for answer in answers if _is_public_host(answer["host"])]
        if not public:
            raise PrivateAddressRefused(f"{host} {PRIVATE_ADDRESS_REASON}")
        if len(public) < len(answers):
            logger.info("%s: ignoring its non-public addresses", host)
        return public

    async def close(self) -> None:
        await self._inner.close()


def _refused_by_resolver(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, PrivateAddressRefused)


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

    async def documents(self) -> AsyncGenerator[RawDocument | DocumentFailure, None]:
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
            if not sitemap_ok and first.fetched.outcome not in ("ok", "budget"):
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
            self._enqueue(url, frontier)

        in_flight: set[asyncio.Task[_PageResult]] = set()
        try:
            while frontier or in_flight:
                while frontier and self._may_start(len(in_flight), produced):
                    in_flight.add(asyncio.create_task(self._process_page(frontier.popleft())))
                if not in_flight:
                    break
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
        unfinished = self._unfinished(len(frontier), reached_max_pages=produced >= max_pages)
        if unfinished:
            # The indexer prunes every known page that was not yielded: an incomplete listing must prune nothing.
            raise SourceUnavailable(f"{self.source_id}: {unfinished}; the crawl is incomplete, so nothing is pruned")

    def _may_start(self, in_flight: int, produced: int) -> bool:
        """Reserving a slot per in-flight page keeps yielded+failed within max_pages."""
        return (
            in_flight < self.settings.concurrency
            and produced + in_flight < self.config.max_pages
            and not self.crawl_stats.budget_exhausted
        )

    def _unfinished(self, unvisited: int, *, reached_max_pages: bool) -> str | None:
        """Why this crawl missed URLs it knew of, if a safety cap (not max_pages) made it."""
        stats = self.crawl_stats
        if stats.budget_exhausted:
            return f"stopped after {stats.requests} requests (indexer.max_requests) with {unvisited} URLs not visited"
        if stats.dropped_frontier_full and not reached_max_pages:  # FIFO: max_pages would have cut them anyway
            return f"{stats.dropped_frontier_full} links did not fit in the frontier (indexer.max_frontier)"
        return None

    def _spend_request(self) -> bool:
        """Take one request from this run's budget; the first refusal is logged."""
        stats = self.crawl_stats
        if stats.requests < self.settings.max_requests:
            stats.requests += 1
            return True
        if not stats.budget_exhausted:
            stats.budget_exhausted = True
            logger.warning(
                "%s: request budget of %d (indexer.max_requests) spent; stopping the crawl",
                self.source_id,
                self.settings.max_requests,
            )
        return False

    def _enqueue(self, url: str, frontier: deque[str]) -> None:
        """Queue a URL we want, while the frontier has room; a full frontier drops (and counts) new ones."""
        if len(frontier) < self.settings.max_frontier:
            if self._admit(url):
                frontier.append(url)
            return
        if url in self._seen or not self.scope.contains(url) or not self._robots_allows(url):
            return
        if not self.crawl_stats.dropped_frontier_full:
            logger.warning(
                "%s: frontier full at %d URLs (indexer.max_frontier); dropping new links",
                self.source_id,
                self.settings.max_frontier,
            )
        self.crawl_stats.dropped_frontier_full += 1

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
            cap = self.settings.max_links_per_page
            for link in result.links[:cap]:
                self._enqueue(link, frontier)
            if len(result.links) > cap:
                stats.dropped_links += len(result.links) - cap
                logger.info(
                    "%s: %s has %d links; took the first %d (indexer.max_links_per_page)",
                    self.source_id,
                    fetched.url,
                    len(result.links),
                    cap,
                )
        match fetched.outcome:
            case "ok":
                stats.fetched += 1
                return RawDocument(page_id=fetched.url, url=fetched.url, content=result.content, kind="html")
            case "failed" | "refused":
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
            case "budget":
                frontier.appendleft(result.requested)  # not reached: still known and unvisited
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
        if fetched.outcome in ("refused", "budget"):
            raise SourceUnavailable(f"{self.source_id}: {self.scope.origin} {fetched.reason}")
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
        parser.parse([])  # no rules: everything is allowed
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
            if self.crawl_stats.budget_exhausted:
                break
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
            except (ValueError, zlib.error, SafeXML.ParseError) as exc:
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
            if self._is_private_literal(current):
                logger.warning("%s: %s %s", self.source_id, current, PRIVATE_ADDRESS_REASON)
                return _Fetched("refused", current, reason=PRIVATE_ADDRESS_REASON)
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

    def _is_private_literal(self, url: str) -> bool:
        """An IP-literal host that is not public; names are judged by the session's resolver."""
        if self.settings.allow_private_addresses:
            return False
        try:
            ip = ipaddress.ip_address(urlsplit(url).hostname or "")
        except ValueError:
            return False
        return not is_public_address(ip)

    async def _get_with_retries(
        self, url: str, *, limit: int, html_only: bool, truncate: bool
    ) -> tuple[_Fetched, str | None]:
        """One hop. Returns the result, or a redirect Location to follow."""
        reason = ""
        status = 0
        for attempt in range(self.settings.retries + 1):
            if not self._spend_request():
                return _Fetched("budget", url, reason=BUDGET_REASON), None
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
                if _refused_by_resolver(exc):
                    logger.warning("%s: %s %s", self.source_id, url, PRIVATE_ADDRESS_REASON)
                    return _Fetched("refused", url, reason=PRIVATE_ADDRESS_REASON), None
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
    if not stripped.startswith(XML_STARTS):
        text = stripped.decode("utf-8", errors="replace")
        return "urlset", [line.strip() for line in text.splitlines() if line.strip().startswith("http")]
    # Sitemaps never need a DTD: refusing any DOCTYPE stops entity expansion and external entities in every encoding.
    root = SafeXML.fromstring(stripped, forbid_dtd=True)
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
    """The declared charset, else UTF-8. A bogus one falls back too: unknown or non-text codecs raise
    LookupError, and some real codecs fail on any input (``charset=undefined`` raises UnicodeError)."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except (LookupError, ValueError):  # UnicodeError is a ValueError, as is a NUL in the name
            logger.debug("unusable charset %r; decoding as UTF-8", charset)
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
