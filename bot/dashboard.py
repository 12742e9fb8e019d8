"""The dashboard (issue 24): what people ask and how Docent does, as read-only pages on the ops server.

    GET /dashboard/             overview: questions per day by platform and space, rates, latency, and the top of
                                every other page
    GET /dashboard/questions    most asked, not in the docs, marked not helpful
    GET /dashboard/gaps         knowledge gaps (from a ``GapsSource``)
    GET /dashboard/sources      pages most cited, and never cited
    GET /dashboard/community    community answers waiting for approval, and where to approve them
    GET /dashboard/index        index runs: when, how long, pages failed
    POST /dashboard/login, /dashboard/logout

Off unless ``ops.dashboard_token`` is set (then /dashboard answers 404, and the log says how to turn it on). A
browser types the token into the login form once and gets a session cookie: HttpOnly, SameSite=Strict, limited to
/dashboard, holding an expiry and an HMAC of it keyed by the token and a secret drawn at start (never the token; a
restart logs everyone out). Scripts may send the token as a bearer header instead. Nothing sensitive goes in a URL:
a page takes only ``platform`` and ``space`` (ids, not private) as its filter. Every figure is the report's or is read
over the same scope (``rag.stats``); askers' hashes are never read, private questions are counted and their words never
shown, and every text is escaped by the templates (Jinja2's autoescape). No script runs: the charts are SVG drawn on
the server (``bot.charts``), and the Content-Security-Policy forbids scripts altogether.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.charts import sparkline, stacked_bars
from indexer.manifest import IndexManifest, IndexRun
from rag import stats
from rag.feedback import PLATFORMS, FeedbackStore
from rag.learned import LearnedStore
from rag.settings import OpsSettings, secret_text

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates" / "dashboard"
COOKIE = "docent_dashboard"
PREFIX = "/dashboard"
DAYS = 90  # days in the overview's charts
LOGIN_FAILURES = 10  # wrong tokens per minute before logins are refused for the rest of that minute
_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # nothing to other sites (the docs pages linked); our own forms keep Origin
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class DashboardData:
    """What the pages read. ``gaps`` and ``resolution`` are computed elsewhere (issue 24, items 1 and 2); without
    them the gaps page and the resolved rate say "not available yet"."""

    feedback: FeedbackStore
    learned: LearnedStore | None = None
    index_record: IndexManifest | None = None
    gaps: stats.GapsSource | None = None
    resolution: stats.ResolutionSource | None = None
    learned_command: str = "/docent-learned"  # Slack's command to review community answers (slack.learned_command)


class Access:
    """Who may see the dashboard: the token (from the login form or a bearer header), then the session cookie it
    earned. Tokens are compared in constant time (as digests, so not even their length shows)."""

    def __init__(self, token: str, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()
        # Keyed by the token and a secret of this process: a session dies with a new token or a restart.
        self._key = hmac.new(token.encode(), secrets.token_bytes(32), hashlib.sha256).digest()
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._failures: collections.deque[float] = collections.deque()

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)

    def _sign(self, expires: int) -> str:
        return hmac.new(self._key, f"docent dashboard session until {expires}".encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        expires = int(self._clock() + self.lifetime_s)
        return f"{expires}.{self._sign(expires)}"

    def session_valid(self, value: str) -> bool:
        expires, _, mac = value.partition(".")
        if not expires.isdigit() or len(expires) > 12:
            return False
        if not hmac.compare_digest(mac.encode(), self._sign(int(expires)).encode()):
            return False
        return self._clock() < int(expires)

    def allowed(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            return self.token_matches(given.strip())
        return self.session_valid(request.cookies.get(COOKIE, ""))

    def throttled(self) -> bool:
        """Too many wrong tokens in the last minute: guessing is slowed to ``LOGIN_FAILURES`` a minute."""
        now = self._clock()
        while self._failures and self._failures[0] < now - 60:
            self._failures.popleft()
        return len(self._failures) >= LOGIN_FAILURES

    def failed(self) -> None:
        self._failures.append(self._clock())


Page = Callable[[web.Request, stats.Scope], Awaitable[dict[str, Any]]]


class Dashboard:
    """The pages as an aiohttp sub-application, mounted by ``OpsServer`` under /dashboard."""

    def __init__(self, settings: OpsSettings, data: DashboardData, *, clock: Callable[[], float] = time.time) -> None:
        token = secret_text(settings.dashboard_token)
        if not token:
            raise ValueError("the dashboard needs ops.dashboard_token")
        self._data = data
        self._clock = clock
        self.access = Access(token, settings.dashboard_session_hours * 3600, clock)
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,  # every value is escaped: questions are anyone's text
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters.update(
            percent=_percent,
            number=_number,
            when=_when,
            ago=_ago,
            ms=_milliseconds,
            seconds=_seconds,
            space=_space_name,
            linkable=_linkable,
        )
        for name in self._templates.list_templates(extensions=["html"]):
            self._templates.get_template(name)  # compiled now, not while a page waits
        self._stylesheet_body = (TEMPLATES / "dashboard.css").read_bytes()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers, self._guard])
        pages: dict[str, tuple[str, Page]] = {
            "/": ("overview", self._overview),
            "/questions": ("questions", self._questions),
            "/gaps": ("gaps", self._gaps),
            "/sources": ("sources", self._sources),
            "/community": ("community", self._community),
            "/index": ("index", self._index),
        }
        for path, (name, page) in pages.items():
            app.router.add_get(path, self._page(name, page))
        app.router.add_get("/dashboard.css", self._stylesheet)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        return app

    # -- access ----------------------------------------------------------------------------------------------------

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(HEADERS)
            raise
        response.headers.update(HEADERS)
        return response

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == PREFIX:  # the bare prefix: the overview is one slash further
            raise web.HTTPPermanentRedirect(f"{PREFIX}/")
        if request.method == "POST" and not _same_origin(request):
            return self._render("login", status=403, message="This form must be sent from the dashboard itself.")
        if request.path in (f"{PREFIX}/login", f"{PREFIX}/dashboard.css") or self.access.allowed(request):
            return await handler(request)
        return self._render(
            "login", status=401, headers={"WWW-Authenticate": 'Bearer realm="docent-dashboard"'}, message=""
        )

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self.access.throttled():
            return self._render("login", status=429, message="Too many wrong tokens: wait a minute and try again.")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not self.access.token_matches(given.strip()):
            self.access.failed()
            logger.warning("dashboard: a wrong token was sent from %s", request.remote)
            return self._render("login", status=401, message="That token is not the dashboard's.")
        logger.info("dashboard: logged in from %s", request.remote)
        response = web.HTTPSeeOther(f"{PREFIX}/")
        response.set_cookie(
            COOKIE,
            self.access.new_session(),
            max_age=int(self.access.lifetime_s),
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        response = web.HTTPSeeOther(f"{PREFIX}/")
        response.del_cookie(COOKIE, path=PREFIX)
        return response

    async def _stylesheet(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._stylesheet_body, content_type="text/css")

    # -- pages -----------------------------------------------------------------------------------------------------

    def _render(
        self, name: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> web.Response:
        html = self._templates.get_template(f"{name}.html").render(prefix=PREFIX, page=name, **context)
        return web.Response(text=html, status=status, content_type="text/html", headers=headers)

    def _page(self, name: str, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            scope = _scope(request.query)
            context = await page(request, scope)
            if "spaces" not in context:  # the filter's choices, unless the page read them already
                context["spaces"] = await stats.spaces(self._data.feedback)
            return self._render(name, scope=scope, **context)

        return handler

    async def _overview(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        data = self._data
        overview = await stats.overview(
            data.feedback, scope, days=DAYS, now=self._clock(), top=5, resolution=data.resolution
        )
        days = [day.isoformat() for day in overview.days]
        labels = [f"{day:%b} {day.day}" for day in overview.days]
        per_day = stacked_bars(
            "Questions per day by platform",
            days,
            overview.per_platform(),
            labels=labels,
            describe="{column}: {value} on {series}",
        )
        space_charts = {
            (space.platform, space.space): sparkline(_space_name(space.platform, space.space), labels, space.per_day)
            for space in overview.spaces
        }
        pages = await self._pages()
        runs = await data.index_record.runs(limit=1) if data.index_record is not None else []
        found = {"spaces": tuple((s.platform, s.space) for s in overview.spaces)} if scope == stats.EVERYTHING else {}
        return {
            **found,
            "overview": overview,
            "per_day": per_day,
            "space_charts": space_charts,
            "top": overview.top,
            "gaps": None if data.gaps is None else list(await data.gaps(scope))[:5],
            "cited": overview.cited[:5],
            "never_cited": None if pages is None else len(stats.never_cited(pages, overview.cited)),
            "pending": await self._pending(),
            "last_run": runs[0] if runs else None,
            "indexed": data.index_record is not None,
        }

    async def _questions(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        return {"questions": await stats.questions(self._data.feedback, scope, limit=50)}

    async def _gaps(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        gaps = None if self._data.gaps is None else list(await self._data.gaps(scope))
        not_in_docs = () if gaps is not None else await stats.top_questions(self._data.feedback, scope, refused=True)
        return {"gaps": gaps, "not_in_docs": not_in_docs}

    async def _sources(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        cited = await stats.citations(self._data.feedback, scope)
        pages = await self._pages()
        never = None if pages is None else stats.never_cited(pages, cited)
        undescribed = 0
        if self._data.index_record is not None:
            undescribed = sum(1 for p in await self._data.index_record.pages() if p.url is None)
        return {
            "cited": cited[:100],
            "most": max((c.count for c in cited), default=0),
            "never_cited": never,
            "undescribed": undescribed,
        }

    async def _community(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        pending = await self._pending(scope)
        return {"pending": pending, "learned_command": self._data.learned_command, "now": self._clock()}

    async def _index(self, request: web.Request, scope: stats.Scope) -> dict[str, Any]:
        if self._data.index_record is None:
            return {"runs": None, "chart": None, "sources": {}}
        runs = await self._data.index_record.runs(limit=100)
        shown = list(reversed(runs[:60]))  # oldest first, left to right
        chart = stacked_bars(
            "Index runs: seconds each",
            [str(i) for i in range(len(shown))],
            {
                "run": [r.seconds if _run_ok(r) else 0 for r in shown],
                "run with failures": [0 if _run_ok(r) else r.seconds for r in shown],
            },
            labels=[f"{dt.datetime.fromtimestamp(r.started_at, dt.UTC):%b} {_day(r.started_at)}" for r in shown],
            names=[_when(r.started_at) for r in shown],
            height=200,
            unit="s",
            describe="{column} ({series}): {value} s",
            colours=(0, 3),
        )
        sources = collections.Counter(p.source_id for p in await self._data.index_record.pages())
        return {"runs": runs, "chart": chart, "sources": dict(sorted(sources.items()))}

    async def _pages(self) -> list[stats.KnownPage] | None:
        if self._data.index_record is None:
            return None
        return [
            stats.KnownPage(p.source_id, p.title or p.page_id, p.url)
            for p in await self._data.index_record.pages()
            if p.url is not None
        ]

    async def _pending(self, scope: stats.Scope = stats.EVERYTHING) -> list[Any] | None:
        if self._data.learned is None:
            return None
        pending = await self._data.learned.list("pending", limit=10_000, platform=scope.platform, space=scope.space)
        return pending


def _run_ok(run: IndexRun) -> bool:
    return run.error is None and not run.pages_failed and not run.sources_failed


def _same_origin(request: web.Request) -> bool:
    """A form posted by a page of another site is refused (its cookie would not come with it either): browsers say
    where a request comes from (``Sec-Fetch-Site``, ``Origin``); a script says nothing and is let through."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == request.host


def _scope(query: Mapping[str, str]) -> stats.Scope:
    """``?scope=discord`` or ``?scope=slack:T0123ABC``: a platform, or a space on it (ids only; anything else is
    ignored)."""
    platform, _, space = query.get("scope", "").partition(":")
    if platform not in PLATFORMS:
        return stats.Scope()
    return stats.Scope(platform, space if _SPACE_ID.fullmatch(space) else None)


def _linkable(url: str) -> bool:
    """Only web addresses become links (never ``javascript:`` and the like, whoever indexed what)."""
    return url.lower().startswith(("https://", "http://"))


def _space_name(platform: str, space: object) -> str:
    kind = {"discord": "server", "slack": "workspace"}.get(platform, "space")
    return f"{platform.capitalize()} direct messages" if space is None else f"{platform.capitalize()} {kind} {space}"


def _percent(rate: stats.Rate | None) -> str:
    share = None if rate is None else rate.share
    return "–" if share is None else f"{share * 100:.1f}%"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


def _day(timestamp: float) -> int:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).day


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(timestamp: float, now: float) -> str:
    seconds = max(0.0, now - timestamp)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def _milliseconds(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"
