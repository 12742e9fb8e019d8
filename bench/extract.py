"""Extraction speed on hostile and large inputs, at two sizes, to show how time grows with input.

    python -m bench.extract [--scale 4] [--repeat 3]

Each case runs at its base size n and at ``scale`` * n; the growth exponent log(t2/t1)/log(scale) is about 1
for linear work and about 2 for a quadratic blow-up (the pathology these inputs once triggered).
The tests only check that these inputs come out whole and right; speed is measured here, not asserted.
Prints a table and writes bench/results/extract.json.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, write_results

PROSE = "Docent indexes documentation pages and answers questions with citations. " * 3
UNIT = (
    f'<h2 id="s{{i}}">Section {{i}}</h2><p>{PROSE}Some <b>bold</b> text with <a href="#">a link</a> '
    f"and <code>code</code>.</p><p>{PROSE}</p><pre>line one<br>line two</pre>"
    "<ul><li>first item</li><li>second<br>item</li></ul>"
    "<table><tr><th>key</th><th>value</th></tr><tr><td>1</td><td>2</td></tr></table>\n"
)


def large_page(n: int) -> str:
    body = "".join(UNIT.format(i=i) for i in range(n))
    return f"<html><body><nav>menu</nav><main>{body}</main></body></html>"


# name -> (kind, input for size n, base n); the bases match tests/indexer/test_extract.py.
CASES: dict[str, tuple[str, Callable[[int], str], int]] = {
    "html: 2 MB page": ("html", large_page, 2_000_000 // len(UNIT)),
    "html: unclosed tags": ("html", lambda n: "<div " * n, 50_000),
    "html: titles": ("html", lambda n: "<title>" * n, 20_000),
    "html: nested lists": ("html", lambda n: "<ul><li>" * n + "deep item", 10_000),
    "html: void tags": ("html", lambda n: "<br>" * n + "<p>after breaks</p>", 50_000),
    "md: unmatched backticks": ("md", lambda n: "` `` " * n, 50_000),
    "md: emphasis heading": ("md", lambda n: "# " + "*a " * n, 50_000),
    "md: unclosed tags": ("md", lambda n: "<div " * n, 50_000),
    "md: tables": ("md", lambda n: "<table>" * n, 20_000),
    "md: comments": ("md", lambda n: "<!--" * n, 50_000),
    "md: template": ("md", lambda n: "{{" + " " * n + "x", 100_000),
    "md: spaced heading": ("md", lambda n: "# a" + " " * n + "b", 100_000),
    "md: stray fences": ("md", lambda n: "```a\n" * n, 20_000),
    "md: deep quotes": ("md", lambda n: "> " * n + "deep", 5_000),
    "md: admonition blocks": ("md", lambda n: "/// tip | T\n\ntext\n\n///\n\n!!! note\n    more\n\n" * n, 5_000),
}


def best_of(repeat: int, extract: Callable[[str], object], text: str) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        extract(text)
        times.append(time.perf_counter() - started)
    return min(times)


def measure(scale: int, repeat: int) -> dict[str, Any]:
    from indexer.extract import extract_html, extract_markdown

    extract: dict[str, Callable[[str], object]] = {"html": extract_html, "md": extract_markdown}
    results: dict[str, Any] = {}
    for name, (kind, make, base) in CASES.items():
        small, large = make(base), make(base * scale)
        t_small, t_large = best_of(repeat, extract[kind], small), best_of(repeat, extract[kind], large)
        growth = math.log(max(t_large, 1e-6) / max(t_small, 1e-6)) / math.log(scale)
        results[name] = {
            "chars": len(small),
            "seconds": round(t_small, 4),
            f"chars_x{scale}": len(large),
            f"seconds_x{scale}": round(t_large, 4),
            "growth_exponent": round(growth, 2),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.extract", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, help="the second size is this many times the first")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extract.json")
    args = parser.parse_args()
    results = measure(args.scale, args.repeat)
    x = f"x{args.scale}"
    print(f"\n{'case':<26}{'chars':>11}{'s':>9}{'chars ' + x:>14}{'s ' + x:>9}{'growth':>8}")
    for name, row in results.items():
        print(
            f"{name:<26}{row['chars']:>11,}{row['seconds']:>9.3f}{row[f'chars_{x}']:>14,}"
            f"{row[f'seconds_{x}']:>9.3f}{row['growth_exponent']:>8.2f}"
        )
    print("\ngrowth: ~1 is linear, ~2 is quadratic")
    write_results(args.out, {"scale": args.scale, "repeat": args.repeat, "cases": results})


if __name__ == "__main__":
    main()
