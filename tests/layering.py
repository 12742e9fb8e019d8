"""Which modules a source file imports, read with ``ast``: the layering tests of ``rag``, ``bot`` and ``bench`` use
it, so imports inside functions and under ``TYPE_CHECKING`` count too."""

from __future__ import annotations

import ast


def imported_modules(source: str, package: str) -> set[str]:
    """Every module an import anywhere in ``source`` names: ``from a import b`` names ``a`` and ``a.b`` (b may be a
    module); relative imports are resolved as seen from a module directly inside ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: max(0, len(parts) + 1 - node.level)] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module:
                found.add(module)
            found.update(f"{module}.{alias.name}".lstrip(".") for alias in node.names)
    return found


def within(modules: set[str], package: str) -> set[str]:
    """The modules of ``package`` (itself included) among ``modules``."""
    return {m for m in modules if m == package or m.startswith(package + ".")}
