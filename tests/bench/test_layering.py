"""``bench/``'s layers: the command lines ``bench.cv`` and ``bench.eval`` sit on the scoring library and never
import each other, the library never imports a command line, and ``bench`` never imports ``tests``.

Checked on the source, so imports inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import layering
from tests.layering import within

BENCH = Path(__file__).resolve().parents[2] / "bench"
COMMANDS = {"bench.cv", "bench.eval"}
LIBRARY = ("scoring.py", "crossval.py")
MODULES = sorted(path.relative_to(BENCH).as_posix() for path in BENCH.rglob("*.py"))


def imported_modules(source: str) -> set[str]:
    return layering.imported_modules(source, "bench")


def imports_of(name: str) -> set[str]:
    return imported_modules((BENCH / name).read_text(encoding="utf-8"))


def test_bench_cv_and_bench_eval_do_not_import_each_other() -> None:
    assert within(imports_of("cv.py"), "bench.eval") == set()
    assert within(imports_of("eval.py"), "bench.cv") == set()


@pytest.mark.parametrize("name", LIBRARY)
def test_the_scoring_library_imports_no_command_line(name: str) -> None:
    assert {m for m in imports_of(name) if m in COMMANDS} == set()


@pytest.mark.parametrize("name", MODULES)
def test_bench_never_imports_tests(name: str) -> None:
    assert within(imports_of(name), "tests") == set()


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("import bench.eval", "bench.eval"),
        ("from bench import eval", "bench.eval"),
        ("from bench.cv import main", "bench.cv"),
        ("def f():\n    from bench import cv\n", "bench.cv"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tests.conftest\n", "tests"),
        ("from . import cv", "bench.cv"),
        ("from .eval import main", "bench.eval"),
        ("from tests.bot.discord.harness import ALICE", "tests"),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, named: str) -> None:
    assert within(imported_modules(source), named), source


@pytest.mark.parametrize("source", ["from bench import scoring", "import bench.evaluation", "import testsuite"])
def test_the_check_allows_the_library_and_lookalikes(source: str) -> None:
    modules = imported_modules(source)
    assert within(modules, "bench.cv") | within(modules, "bench.eval") | within(modules, "tests") == set()
