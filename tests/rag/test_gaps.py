"""Knowledge gaps (``rag.gaps``): gap questions clustered by meaning with the real MiniLM embedder, each cluster's
size, trend, representatives (never a private question), nearest docs pages and community coverage, scoped like the
report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rag.feedback import FeedbackStore, View
from rag.gaps import DOCS_ONLY, WEEK_S, GapFinder, GapReport
from rag.learned import LearnedStore
from rag.models import Answer, Hit
from rag.scope import SearchScope
from rag.settings import GapSettings
from tests.pairs import capture

GUILD, OTHER = 101, 202
NOW = 1_800_000_000.0
PRICE = ("How much does Zilliz Cloud cost per month?", "what is the price of the zilliz cloud enterprise plan?")
LOGIN = ("does milvus support LDAP login?", "can I log in to milvus with SSO / single sign-on?")
SECRET = "how much does zilliz cloud cost per month for my company acme"


class Pages:
    """The store's dense search, as the gap report uses it: the same hits whatever the vector."""

    def __init__(self) -> None:
        self.scopes: list[SearchScope] = []

    async def search(self, vector: Sequence[float], limit: int, *, scope: SearchScope = DOCS_ONLY) -> list[Hit]:
        self.scopes.append(scope)

        def hit(url: str, similarity: float) -> Hit:
            return Hit(url, url, url, f"Page {url[-1]}", "", "text", similarity, similarity)

        return [
            hit("https://d/a#s1", 0.41),
            hit("https://d/b", 0.52),
            hit("https://d/a#s2", 0.47),
            hit("https://d/c", 0.3),
        ]


@pytest.fixture
async def stores(tmp_path: Path) -> Any:
    now = [NOW]
    feedback = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: now[0])
    learned = LearnedStore(tmp_path / "learned.sqlite3")

    async def ask(question: str, *, days_ago: float = 0, guild: int | None = GUILD, private: bool = False) -> None:
        now[0] = NOW - days_ago * 86400
        answer = Answer(question, "refused", (), True, (), f"r{question}{days_ago}{private}", {}, confidence=0.2)
        await feedback.record_answer(answer, 7, guild_id=guild, private=private)
        now[0] = NOW

    await ask(PRICE[0], days_ago=1)
    await ask(PRICE[0].upper(), days_ago=2)  # the same question, asked again: one representative, counted twice
    await ask(PRICE[1], days_ago=10)
    await ask(SECRET, private=True)  # counted, never shown
    for question in LOGIN:
        await ask(question, days_ago=9)
    await ask("does milvus support LDAP login?", guild=OTHER)  # another server's
    answered = Answer("What is HNSW?", "a graph [1]", (), False, (), "fine", {}, confidence=0.9)
    await feedback.record_answer(answered, 7, guild_id=GUILD)  # answered well: no gap
    covering = await capture(learned, question="How much does Zilliz Cloud cost?", space=str(GUILD))
    await learned.decide(covering, "approved")
    elsewhere = await capture(learned, question="does milvus support LDAP login?", space=str(OTHER), thread="9")
    await learned.decide(elsewhere, "approved")
    yield feedback, learned
    feedback.close()
    learned.close()


def finder(stores: Any, embedder: Any, pages: Pages | None = None) -> GapFinder:
    feedback, learned = stores
    return GapFinder(feedback, embedder, GapSettings(), pages=pages, learned=learned, clock=lambda: NOW)


async def test_gaps_are_clustered_by_meaning_with_size_trend_pages_and_coverage(stores: Any, embedder: Any) -> None:
    pages = Pages()
    report = await finder(stores, embedder, pages).report(View.of_space("discord", GUILD))
    assert report.questions == 5 and report.private == 0, "a server's admins: its public questions only"
    price, login = report.clusters
    assert (price.size, price.this_week, price.last_week, price.trend) == (3, 2, 1, "rising")
    assert sorted(price.representatives) == sorted(PRICE), "distinct questions, nearest the centre"
    assert price.reasons == {"refused": 3, "low_confidence": 3}
    nearest = [("https://d/b", 0.52), ("https://d/a", 0.47), ("https://d/c", 0.3)]
    assert [(p.url, p.similarity) for p in price.pages] == nearest, "a page once, at its closest section; best first"
    assert pages.scopes and all(scope == DOCS_ONLY for scope in pages.scopes), "the docs alone, no community answer"
    assert price.covered_by is not None and price.covered_by.question == "How much does Zilliz Cloud cost?"
    assert (login.size, login.this_week, login.last_week, login.trend) == (2, 0, 2, "falling")
    assert login.covered_by is None, "another server's community answer is not this server's"
    json.dumps(report.as_dict())


async def test_the_operator_counts_private_questions_and_never_sees_them(stores: Any, embedder: Any) -> None:
    report = await finder(stores, embedder).report(View())
    assert report.questions == 7 and report.private == 1
    price = next(c for c in report.clusters if PRICE[0] in c.representatives)
    assert price.size == 4 and price.private == 1, "the private asking counts in its cluster's size"
    shown = report.as_text() + json.dumps(report.as_dict())
    assert "acme" not in shown, "its words are never shown"
    assert "(1 private, not shown)" in report.as_text()
    login = next(c for c in report.clusters if LOGIN[0] in c.representatives)
    assert login.size == 3 and login.covered_by is not None, "the operator's view sees every community answer"
    assert "No nearest docs pages" not in report.as_text(), "no store given: simply no pages"


async def test_a_cluster_of_private_questions_shows_no_words(tmp_path: Path, embedder: Any) -> None:
    feedback = FeedbackStore(tmp_path / "feedback.sqlite3", clock=lambda: NOW)
    await feedback.record_answer(Answer(SECRET, "no", (), True, (), "s", {}), 7, private=True)
    report = await GapFinder(feedback, embedder, GapSettings(), clock=lambda: NOW).report(View(), since=NOW - WEEK_S)
    [cluster] = report.clusters
    assert (cluster.size, cluster.private, cluster.representatives) == (1, 1, ())
    assert "acme" not in report.as_text() and report.since == NOW - WEEK_S
    empty = await GapFinder(feedback, embedder, GapSettings()).report(View(platform="slack"))
    assert empty == GapReport("slack", None, None, empty.generated_at, 0, 0, (), "", empty.settings)
    feedback.close()


class Unreachable:
    async def search(self, vector: Sequence[float], limit: int, *, scope: SearchScope = DOCS_ONLY) -> list[Hit]:
        from rag.errors import StoreInUse

        raise StoreInUse("the bot holds the Milvus Lite index")


async def test_a_store_that_cannot_be_searched_leaves_out_the_pages_and_says_why(stores: Any, embedder: Any) -> None:
    report = await GapFinder(stores[0], embedder, GapSettings(), pages=Unreachable()).report(View())
    assert report.clusters and all(not c.pages for c in report.clusters)
    assert "the bot holds the Milvus Lite index" in report.as_text()
