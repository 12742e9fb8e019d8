"""``rag/`` is the leaf every entry point builds on: it must not import the bot or the indexer.

Checked on the source, so imports inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import imported_modules

RAG = Path(__file__).resolve().parents[2] / "rag"
FORBIDDEN = ("bot", "indexer")


def forbidden_imports(source: str) -> list[str]:
    return sorted(m for m in imported_modules(source, "rag") if m.split(".")[0] in FORBIDDEN)


def test_rag_modules_exist() -> None:
    assert len(list(RAG.glob("*.py"))) > 5


@pytest.mark.parametrize("path", sorted(RAG.rglob("*.py")), ids=lambda p: str(p.relative_to(RAG)))
def test_rag_never_imports_bot_or_indexer(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import indexer",
        "import bot.render as render",
        "from indexer.runner import IndexReport",
        "def f():\n    from bot import cli\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from indexer.runner import IndexReport\n",
        "from .. import bot",
        "from ..indexer import runner",
    ],
)
def test_the_check_sees_every_form_of_import(source: str) -> None:
    assert forbidden_imports(source), source


@pytest.mark.parametrize("source", ["from . import models", "from .models import Hit", "import botocore", "import rag"])
def test_the_check_allows_rag_and_lookalikes(source: str) -> None:
    assert forbidden_imports(source) == []
