"""The dashboard in a real headless browser: the system's Chromium, driven by Selenium through the system's driver,
one browser for the whole session. It logs in through the form as a person would; no sleeps, no timings: Selenium
returns once a page has loaded, and a form's redirect is waited for by what the next page shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.browser import chromium, missing
from bot.dashboard import DashboardData
from rag.settings import Settings
from tests.bot.dashboard_data import HOSTILE, PRIVATE_TEXTS, TOKEN, close, empty, fill, serving

pytestmark = pytest.mark.integration
PAGES = {"": "Overview", "questions": "Questions", "gaps": "Knowledge gaps", "sources": "Sources"}
PAGES |= {"community": "Community answers", "index": "Index runs"}


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    problem = missing()
    if problem:
        pytest.fail(f"the dashboard's browser tests need Chromium: {problem}")
    with chromium() as browser:
        yield browser


class Browser:
    """The session's browser, called from the event loop: each step in a worker thread, so the server it visits
    (on this loop) answers meanwhile."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    async def __call__(self, step: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(step, self.driver)

    async def open(self, path: str = "") -> Any:
        from selenium.webdriver.common.by import By

        await self(lambda d: d.get(f"{self.base}/dashboard/{path}"))
        return await self(lambda d: d.find_element(By.TAG_NAME, "body"))

    async def log_in(self, token: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        await self.open()

        def submit(d: Any) -> None:
            field = d.find_element(By.ID, "token")
            field.send_keys(token)
            field.submit()
            # The form's answer has replaced the page once the field we typed into is gone from the document.
            WebDriverWait(d, 60).until(expected_conditions.staleness_of(field))

        await self(submit)

    async def texts(self, selector: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await self(lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, selector)])

    async def attributes(self, selector: str, name: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await self(lambda d: [e.get_attribute(name) for e in d.find_elements(By.CSS_SELECTOR, selector)])


@pytest.fixture
async def data(make_settings: Callable[..., Settings]) -> AsyncIterator[DashboardData]:
    filled = await fill(make_settings().data_dir)
    yield filled
    close(filled)


@pytest.fixture
def fresh(driver: Any) -> Any:
    """The session's browser with no cookies: every test starts logged out."""
    driver.delete_all_cookies()
    return driver


async def test_after_logging_in_every_page_renders_and_the_charts_hold_the_data(
    fresh: Any, data: DashboardData
) -> None:
    async with serving(data) as base:
        browser = Browser(fresh, base)
        await browser.log_in(TOKEN)
        assert await browser.texts("h1") == ["Overview"]
        values = await browser.attributes("#per-day rect.bar", "data-value")
        series = await browser.attributes("#per-day rect.bar", "data-series")
        per_platform = {
            name: sum(float(v) for v, s in zip(values, series, strict=True) if s == name) for name in series
        }
        assert per_platform == {"discord": 10, "slack": 2}, "every question of the last 90 days is a bar's"
        heights = [float(h) for h in await browser.attributes("#per-day rect.bar", "height")]
        assert all(h > 0 for h in heights), "drawn"
        tooltips = await browser.attributes("#per-day rect.bar title", "textContent")
        assert len(tooltips) == len(values) and all("on discord" in t or "on slack" in t for t in tooltips)
        tiles = " ".join(await browser.texts(".tiles .tile"))
        assert "13" in tiles and "not available yet" in tiles
        for path, title in PAGES.items():
            await browser.open(path)
            assert await browser.texts("h1") == [title], path
            (text,) = await browser.texts("body")
            assert not any(private in text for private in PRIVATE_TEXTS), path
        await browser.open("questions")
        assert HOSTILE in " ".join(await browser.texts("#not-in-docs .question")), "shown as text, not run"
        assert await browser.attributes("script", "src") == []
        assert await browser(lambda d: d.get_cookies()[0]["httpOnly"]) is True


async def test_without_the_right_token_the_browser_sees_only_the_login_page(fresh: Any, data: DashboardData) -> None:
    async with serving(data) as base:
        browser = Browser(fresh, base)
        for path in PAGES:
            await browser.open(path)
            assert await browser.texts("h1") == ["Docent dashboard"], path
            assert await browser.texts("#per-day, #spaces, .tiles") == []
        await browser.log_in("not-the-token")
        assert "That token is not the dashboard's." in await browser.texts(".error")
        assert await browser(lambda d: d.get_cookies()) == []
        await browser.open()
        assert await browser.texts("h1") == ["Docent dashboard"]


async def test_an_empty_install_shows_what_to_do(fresh: Any, tmp_path: Path) -> None:
    data = empty(tmp_path)
    try:
        async with serving(data) as base:
            browser = Browser(fresh, base)
            await browser.log_in(TOKEN)
            (section,) = await browser.texts("#no-questions")
            assert "No questions yet" in section and "python -m indexer" in section
            assert await browser.texts("#per-day") == []
            await browser.open("index")
            assert "No index run recorded yet" in " ".join(await browser.texts("#no-runs"))
    finally:
        close(data)
