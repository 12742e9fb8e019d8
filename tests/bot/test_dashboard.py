"""The dashboard over real HTTP on the real ops server: who gets in, what the pages show and never show, and that
every figure is the report's. (In a real browser: ``test_dashboard_browser``.)"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bs4 import BeautifulSoup, Tag

from bot.dashboard import COOKIE, LOGIN_FAILURES, DashboardData
from bot.report import print_report
from rag import stats
from rag.settings import Settings
from tests.bot.dashboard_data import (
    HOSTILE,
    NEVER,
    NOW,
    OTHER_SERVER,
    PRIVATE_TEXTS,
    SERVER,
    TOKEN,
    WORKSPACE,
    close,
    empty,
    fetch,
    fill,
    serving,
)

PAGES = ("/", "/questions", "/gaps", "/sources", "/community", "/index")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
async def data(make_settings: Callable[..., Settings]) -> AsyncIterator[DashboardData]:
    filled = await fill(make_settings().data_dir)
    yield filled
    close(filled)


async def test_without_a_token_there_is_no_dashboard_and_the_log_says_why(
    tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    data = empty(tmp_path)
    with caplog.at_level(logging.INFO, logger="bot.ops"):
        async with serving(data, token=None) as base:
            for path in ("/dashboard", "/dashboard/", "/dashboard/questions", "/dashboard/login"):
                assert (await fetch(http, base + path))[0] == 404, path
            assert (await fetch(http, base + "/healthz"))[0] == 200
    close(data)
    hints = [r.getMessage() for r in caplog.records if "dashboard_token" in r.getMessage()]
    assert len(hints) == 2, hints  # at start, and at the first request for it


async def test_access_is_refused_without_the_token_or_with_a_wrong_one(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    async with serving(data) as base:
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            for path in PAGES:
                status, body = await fetch(http, f"{base}/dashboard{path}", token=token)
                assert status == 401, (token, path)
                assert 'name="token"' in body and "How do I install" not in body, "the login form, no data"
        async with http.get(f"{base}/dashboard/", cookies={COOKIE: "9999999999.forged"}) as response:
            assert response.status == 401
        assert (await fetch(http, f"{base}/dashboard/"))[0] == 200, "the bearer token, for scripts"
        async with http.get(f"{base}/dashboard", allow_redirects=False) as response:
            assert response.status == 308 and response.headers["Location"] == "/dashboard/"


async def test_logging_in_gives_a_session_cookie_that_never_holds_the_token(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    clock = [NOW]
    async with serving(data, clock=lambda: clock[0]) as base:
        async with http.post(f"{base}/dashboard/login", data={"token": "nope"}, allow_redirects=False) as response:
            assert response.status == 401 and "not the dashboard" in await response.text()
            assert "Set-Cookie" not in response.headers
        async with http.post(f"{base}/dashboard/login", data={"token": TOKEN}, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/dashboard/"
            cookie = response.headers["Set-Cookie"]
        assert TOKEN not in cookie and TOKEN not in response.headers["Location"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path", "samesite", "max-age"} <= attributes
        assert "Path=/dashboard" in cookie and "SameSite=Strict" in cookie
        for path in PAGES:
            assert (await fetch(http, f"{base}/dashboard{path}", token=None))[0] == 200, path
        clock[0] += 8 * 3600 + 1  # ops.dashboard_session_hours later
        assert (await fetch(http, f"{base}/dashboard/", token=None))[0] == 401, "the session has ended"


async def test_logging_out_ends_the_session(data: DashboardData, http: aiohttp.ClientSession) -> None:
    async with serving(data) as base:
        async with http.post(f"{base}/dashboard/login", data={"token": TOKEN}) as response:
            assert response.status == 200 and "Questions per day" in await response.text()
        async with http.post(f"{base}/dashboard/logout") as response:
            assert response.status == 401 and 'name="token"' in await response.text()
        assert (await fetch(http, f"{base}/dashboard/", token=None))[0] == 401


async def test_a_form_from_another_site_and_repeated_guesses_are_refused(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    async with serving(data) as base:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            async with http.post(f"{base}/dashboard/login", data={"token": TOKEN}, headers=headers) as response:
                assert response.status == 403, headers
        for _ in range(LOGIN_FAILURES):
            async with http.post(f"{base}/dashboard/login", data={"token": "guess"}) as response:
                assert response.status == 401
        async with http.post(f"{base}/dashboard/login", data={"token": TOKEN}) as response:
            assert response.status == 429, "even the right token waits out the minute"


async def test_pages_are_read_only_and_carry_the_security_headers(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serving(data) as base:
        for method in ("PUT", "DELETE", "PATCH"):
            async with http.request(method, f"{base}/dashboard/", headers=auth) as response:
                assert response.status == 405, method
        async with http.post(f"{base}/dashboard/questions", headers=auth) as response:
            assert response.status == 405
        for path, token in (("/", TOKEN), ("/", None), ("/nowhere", TOKEN), ("/dashboard.css", None)):
            async with http.get(f"{base}/dashboard{path}", headers={"Authorization": f"Bearer {token}"}) as r:
                csp = r.headers.get("Content-Security-Policy", "")
                assert "default-src 'none'" in csp and "script-src" not in csp, path
                assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store", path
        status, body = await fetch(http, f"{base}/dashboard/questions?scope=discord:{SERVER}")
        assert status == 200 and "<script" not in body.lower(), "no script at all"
        links = [link for link in re.findall(r'(?:href|action)="([^"]*)"', body) if link.startswith("/")]
        assert links and not any(TOKEN in link for link in links)
        assert {link.partition("?")[2] for link in links} <= {"", f"scope=discord%3A{SERVER}"}, "ids only, in URLs"


async def test_private_questions_are_counted_never_shown_and_hostile_text_is_escaped(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    rows = await data.feedback.read(lambda db: db.execute("SELECT user_hash FROM answers").fetchall())
    hashes = [row[0] for row in rows]
    async with serving(data) as base:
        pages = {path: (await fetch(http, f"{base}/dashboard{path}"))[1] for path in PAGES}
        pages["scoped"] = (await fetch(http, f"{base}/dashboard/questions?scope=discord:{SERVER}"))[1]
    everything = "\n".join(pages.values())
    for private in (*PRIVATE_TEXTS, "Private community question"):
        assert private not in everything, private
    assert not any(user in everything for user in hashes), "askers' hashes are never shown"
    assert "<script>alert" not in everything and "<img src=x" not in everything
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in pages["/questions"], "shown, as text"
    soup = BeautifulSoup(pages["/questions"], "html.parser")
    assert HOSTILE in soup.get_text()
    assert text(BeautifulSoup(pages["/"], "html.parser"), '[data-figure="private"]') == "3", "counted"


def one(tag: Tag, selector: str) -> Tag:
    found = tag.select_one(selector)
    assert found is not None, selector
    return found


def text(tag: Tag, selector: str) -> str:
    return one(tag, selector).get_text()


def attribute(tag: Tag, name: str) -> str:
    value = tag.get(name)
    assert isinstance(value, str), name
    return value


def figures(row: Tag) -> dict[str, str]:
    return {attribute(cell, "data-figure"): cell.get_text() for cell in row.select("[data-figure]")}


def number(text: str) -> int:
    return int(text.replace(",", ""))


async def report(
    settings: Settings, capsys: pytest.CaptureFixture[str], platform: str | None = None, space: str | None = None
) -> list[dict[str, Any]]:
    """What ``python -m bot report --json`` prints."""
    capsys.readouterr()
    assert await print_report(settings, as_json=True, platform=platform, space=space) == 0
    result: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return result


async def test_every_figure_is_the_reports(
    make_settings: Callable[..., Settings],
    data: DashboardData,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    reported = await report(settings, capsys)
    async with serving(data) as base:
        overview = BeautifulSoup((await fetch(http, f"{base}/dashboard/"))[1], "html.parser")
        rows = overview.select("#spaces tr[data-platform]")
        assert [(attribute(r, "data-platform"), attribute(r, "data-space")) for r in rows] == [
            (entry["platform"], "" if entry["guild_id"] is None else str(entry["guild_id"])) for entry in reported
        ], "the report's spaces, in its order"
        for row, entry in zip(rows, reported, strict=True):
            figures_of = entry["report"]
            shown = {name: number(value) for name, value in figures(row).items()}
            assert shown == {
                "answers": figures_of["answers"],
                "answered": figures_of["answers"] - figures_of["refused"],
                "refused": figures_of["refused"],
                "helpful": figures_of["helpful"],
                "not-helpful": figures_of["not_helpful"],
            }, entry
        wanted = ("answers", "refused", "helpful", "not-helpful", "handed-off")
        tiles = {name: number(value) for name, value in figures(one(overview, ".tiles")).items() if name in wanted}

        def total(key: str) -> int:
            return sum(int(e["report"][key]) for e in reported)

        support = [c for e in reported for c in e["support_channels"]]
        assert tiles == {
            "answers": total("answers"),
            "refused": total("refused"),
            "helpful": total("helpful"),
            "not-helpful": total("not_helpful"),
            "handed-off": sum(c["handed_off"] for c in support),
        }
        channels = [figures(row) for row in overview.select("#support tr[data-channel]")]
        assert [{k: number(v) for k, v in c.items()} for c in channels] == [
            {
                "questions": c["questions"],
                "answered": c["answered"],
                "handed-off": c["handed_off"],
                "solved": c["solved"],
            }
            for c in support
        ]

        # One space: its figures, and its lists as the report's without the questions only asked privately.
        (space,) = await report(settings, capsys, platform="discord", space=str(SERVER))
        scoped = BeautifulSoup((await fetch(http, f"{base}/dashboard/?scope=discord:{SERVER}"))[1], "html.parser")
        assert number(text(scoped, '.tiles [data-figure="answers"]')) == space["report"]["answers"]
        page = BeautifulSoup(
            (await fetch(http, f"{base}/dashboard/questions?scope=discord:{SERVER}"))[1], "html.parser"
        )

        def listed(section: str) -> list[list[object]]:
            return [
                [text(row, ".question"), number(text(row, '[data-figure="count"]'))]
                for row in page.select(f"#{section} tbody tr")
            ]

        public = lambda entries: [e for e in entries if e[0] not in PRIVATE_TEXTS]  # noqa: E731
        assert listed("top") == public(space["report"]["top_questions"])
        assert listed("not-in-docs") == public(space["report"]["not_in_docs"])
        assert ["How do I install?", 4] in listed("top"), "the private asking is counted with the public ones"


async def test_the_charts_and_lists_hold_the_data(data: DashboardData, http: aiohttp.ClientSession) -> None:
    async with serving(data) as base:
        overview = BeautifulSoup((await fetch(http, f"{base}/dashboard/"))[1], "html.parser")
        sources = BeautifulSoup((await fetch(http, f"{base}/dashboard/sources"))[1], "html.parser")
        index = BeautifulSoup((await fetch(http, f"{base}/dashboard/index"))[1], "html.parser")
        community = BeautifulSoup((await fetch(http, f"{base}/dashboard/community"))[1], "html.parser")
    chart = one(overview, "#per-day svg")
    bars = chart.select("rect.bar")
    per_platform: dict[str, float] = {}
    for bar in bars:
        series = attribute(bar, "data-series")
        per_platform[series] = per_platform.get(series, 0) + float(attribute(bar, "data-value"))
        assert text(bar, "title"), "each bar has its tooltip"
    # Within the last 90 days: all of Discord's 10, Slack's 2 (the one 100 days ago is older).
    assert per_platform == {"discord": 10, "slack": 2}
    slack = {attribute(bar, "data-key") for bar in bars if attribute(bar, "data-series") == "slack"}
    assert slack == {"2026-01-01", "2025-11-22"}
    assert [t.get_text() for t in chart.select("text.axis.y")][-1] != "0", "the y axis is labelled"
    rows = overview.select("#spaces tr[data-platform]")
    sparks = {attribute(row, "data-space"): one(row, "svg.spark") for row in rows}
    assert float(attribute(sparks[str(OTHER_SERVER)], "data-total")) == 1
    busiest = f"Discord server {SERVER}: 8; busiest Dec 26, 2"  # the first of its busiest days
    assert text(sparks[str(SERVER)], "title") == busiest
    assert text(overview, '[data-figure="p50"]') == "6.0 s", "of 12 latencies, 1 to 12 s"
    assert text(overview, '[data-figure="p95"]') == "12.0 s"
    assert text(overview, '[data-figure="resolved-rate"]') == "not available yet"
    cited = {text(row, "a"): number(text(row, "[data-figure]")) for row in sources.select("#most-cited tbody tr")}
    assert cited == {"Install": 7, "Configure Slack": 2}, "refusals' closest pages are not citations"
    assert [a.get_text() for a in sources.select("#never-cited tbody a")] == [NEVER.title]
    assert [cell.get_text() for cell in index.select('#runs [data-figure="failed"]')] == ["1", "0"]
    assert len(index.select("#durations rect.bar")) == 2
    assert text(community, '[data-figure="pending"]') == "2"
    assert "Community question 0" in community.get_text() and "/learned" in text(community, "#approve")


async def test_gaps_and_resolution_come_from_their_sources_when_wired(
    data: DashboardData, http: aiohttp.ClientSession
) -> None:
    asked: list[stats.Scope] = []

    async def gaps(scope: stats.Scope) -> Sequence[stats.Gap]:
        asked.append(scope)
        page = stats.PageRef("Sharding", "https://docs.example.org/sharding")
        return [stats.Gap(4, ("Can I shard by tenant?", HOSTILE), trend=2, pages=(page,), community=1)]

    async def resolution(scope: stats.Scope) -> Sequence[stats.Resolution]:
        return [stats.Resolution("discord", str(SERVER), "C1", resolved=3, handed_off=1, unresolved=0)]

    wired = DashboardData(data.feedback, data.learned, data.index_record, gaps=gaps, resolution=resolution)
    async with serving(wired) as base:
        page = (await fetch(http, f"{base}/dashboard/gaps?scope=slack:{WORKSPACE}"))[1]
        overview = BeautifulSoup((await fetch(http, f"{base}/dashboard/"))[1], "html.parser")
    assert asked == [stats.Scope("slack", WORKSPACE), stats.EVERYTHING], "each page asks for its scope"
    assert "Can I shard by tenant?" in page and "Sharding" in page and "not available" not in page
    assert "<script>alert" not in page
    assert text(overview, '[data-figure="resolved-rate"]') == "75.0%"
    assert text(overview, '[data-figure="handed-off-rate"]') == "25.0%"


async def test_an_empty_install_says_what_to_do(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    data = empty(tmp_path)
    async with serving(data) as base:
        pages = {path: (await fetch(http, f"{base}/dashboard{path}")) for path in PAGES}
    close(data)
    assert all(status == 200 for status, _ in pages.values())
    overview = pages["/"][1]
    assert "No questions yet" in overview and "python -m indexer" in overview
    assert "No index run recorded yet" in pages["/index"][1]
    assert "Nothing waits for approval" in pages["/community"][1]
    assert "No answer has cited a page yet" in pages["/sources"][1]
