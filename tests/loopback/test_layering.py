"""``loopback/`` stands in for Discord and Slack, so it imports no Docent package (``rag``, ``indexer``, ``bot``,
``bench``, ``tests``), and its Discord and its Slack never import each other.

Checked on the source, so imports inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import imported_modules, within

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ROOT / "loopback"
DOCENT = ("rag", "indexer", "bot", "bench", "tests")
MODULES = sorted(path.relative_to(ROOT).as_posix() for path in LOOPBACK.rglob("*.py"))


def imports(name: str) -> set[str]:
    """What the module at ``name`` (a path from the repository root) imports; relative imports are resolved from
    its package."""
    path = ROOT / name
    package = ".".join(path.relative_to(ROOT).parent.parts)
    return imported_modules(path.read_text(encoding="utf-8"), package)


@pytest.mark.parametrize("name", MODULES)
def test_loopback_imports_nothing_of_docent(name: str) -> None:
    found = imports(name)
    assert {m for package in DOCENT for m in within(found, package)} == set()


@pytest.mark.parametrize("name", MODULES)
def test_the_fake_discord_and_the_fake_slack_never_import_each_other(name: str) -> None:
    found = imports(name)
    if name.startswith("loopback/discord"):
        assert within(found, "loopback.slack") == set()
    if name.startswith("loopback/slack"):
        assert within(found, "loopback.discord") == set()


def test_every_module_is_checked() -> None:
    assert {"loopback/__init__.py", "loopback/slack.py", "loopback/discord/__init__.py"} <= set(MODULES)


@pytest.mark.parametrize(
    ("source", "package", "named"),
    [
        ("import bot.discord.client", "loopback.discord", "bot"),
        ("from rag.settings import Settings", "loopback", "rag"),
        ("def f():\n    from tests.bot.discord.harness import ALICE\n", "loopback.discord", "tests"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bench.common\n", "loopback", "bench"),
        ("from ..slack import FakeSlack", "loopback.discord", "loopback.slack"),
        ("from loopback.discord import FakeDiscord", "loopback", "loopback.discord"),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, package: str, named: str) -> None:
    assert within(imported_modules(source, package), named), source


@pytest.mark.parametrize("source", ["import discord", "from aiohttp import web", "import botocore", "import testsuite"])
def test_the_check_allows_the_client_libraries_and_lookalikes(source: str) -> None:
    found = imported_modules(source, "loopback")
    assert {m for package in DOCENT for m in within(found, package)} == set()
