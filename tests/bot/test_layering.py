"""The front-ends' layers: Discord and Slack never import each other (what both need lives in ``bot/``), and
neither do their tests; the shared ``bot/`` modules import no platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import imported_modules, within

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ("discord", "slack")
SHARED = sorted(p.name for p in (ROOT / "bot").glob("*.py") if p.name != "__main__.py")


def imports(path: Path, package: str) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), package)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("tree", ["bot", "tests/bot"])
def test_a_platform_never_imports_the_other(tree: str, platform: str) -> None:
    other = next(p for p in PLATFORMS if p != platform)
    package = f"{tree.replace('/', '.')}.{platform}"
    files = sorted((ROOT / tree / platform).rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(ROOT)): sorted(within(imports(path, package), f"{tree.replace('/', '.')}.{other}"))
        for path in files
    }
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("name", SHARED)
def test_shared_front_end_modules_import_no_platform(name: str) -> None:
    found = imports(ROOT / "bot" / name, "bot")
    assert within(found, "bot.discord") | within(found, "bot.slack") == set()


@pytest.mark.parametrize(
    ("source", "package", "named"),
    [
        ("from bot.slack.render import escape", "bot.discord", "bot.slack"),
        ("from ..slack import render", "bot.discord", "bot.slack"),
        ("def f():\n    import bot.discord.client\n", "bot.slack", "bot.discord"),
        ("from tests.bot.slack.harness import MEMBER", "tests.bot.discord", "tests.bot.slack"),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, package: str, named: str) -> None:
    assert within(imported_modules(source, package), named), source


@pytest.mark.parametrize("package", ["bot", "bot.discord", "bot.slack"])
def test_the_front_end_modules_import_each_other_without_a_cycle(package: str) -> None:
    """Features are handed their state, not the client: the client imports them, never the reverse."""
    folder = ROOT / package.replace(".", "/")
    modules = {f"{package}.{p.stem}": p for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__")}
    edges = {name: {m for m in modules if m in imports(path, package) and m != name} for name, path in modules.items()}
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        for nxt in sorted(edges[name]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < len(modules):
                visit(nxt, [*path, nxt])

    for name in sorted(modules):
        visit(name, [name])
    assert cycles == []
