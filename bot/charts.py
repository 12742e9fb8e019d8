"""The dashboard's charts as SVG geometry, drawn on the server: no script, nothing to fetch, read at a glance.

A chart is a frozen dataclass of shapes in its own coordinate space (the SVG's viewBox); the dashboard's template
macros (``bot/templates/dashboard/charts.html``) write them out as ``<rect>`` and ``<text>``, each bar with a
``<title>`` the browser shows as its tooltip and ``data-`` attributes that say what it stands for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # which series (its colour)
    key: str  # the column it stands in (a day, a run)
    value: float
    tooltip: str


@dataclass(frozen=True)
class Tick:
    at: float  # x for the x axis, y for the y axis
    label: str


@dataclass(frozen=True)
class BarChart:
    """Columns of stacked bars, one colour per series, with axes (a sparkline has none)."""

    title: str
    width: int
    height: int
    left: float  # the plot area
    top: float
    right: float
    bottom: float
    bars: tuple[Bar, ...]
    series: tuple[str, ...]
    x_ticks: tuple[Tick, ...] = ()
    y_ticks: tuple[Tick, ...] = ()
    unit: str = ""  # of the values, for the y axis's label
    colours: tuple[int, ...] = ()  # each series' colour (the stylesheet's s0, s1…); unset: in order

    @property
    def total(self) -> float:
        return sum(bar.value for bar in self.bars)

    def colour(self, series: int) -> int:
        return self.colours[series] if series < len(self.colours) else series


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # not reached


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def stacked_bars(
    title: str,
    columns: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    width: int = 960,
    height: int = 240,
    labels: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    label_every: int = 0,
    unit: str = "",
    describe: str = "{column} · {series}: {value}",
    colours: Sequence[int] = (),
) -> BarChart:
    """One column per entry of ``columns`` (its key), each stacking the series' values in order; ``labels`` name
    the columns on the x axis, one in every ``label_every`` (0: about eight in all), and ``names`` in the tooltips
    (the labels by default). Zero values draw nothing."""
    labels = list(columns) if labels is None else list(labels)
    names = labels if names is None else list(names)
    left, top, right, bottom = 48.0, 10.0, width - 8.0, height - 26.0
    slot = (right - left) / max(1, len(columns))
    gap = min(slot * 0.2, 4.0)
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    ceiling = nice_ceiling(max(totals, default=0))
    scale = (bottom - top) / ceiling
    bars: list[Bar] = []
    for i, column in enumerate(columns):
        stacked = 0.0
        for s, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            y = bottom - (stacked + value) * scale
            tooltip = describe.format(column=names[i], series=name, value=_number(value), unit=unit)
            bars.append(
                Bar(left + i * slot + gap / 2, y, max(slot - gap, 0.5), value * scale, s, column, value, tooltip)
            )
            stacked += value
    every = label_every or max(1, math.ceil(len(columns) / 8))
    x_ticks = tuple(Tick(left + (i + 0.5) * slot, labels[i]) for i in range(0, len(columns), every))
    y_ticks = tuple(Tick(bottom - ceiling * f * scale, _number(ceiling * f)) for f in (0, 0.25, 0.5, 0.75, 1))
    return BarChart(
        title,
        width,
        height,
        left,
        top,
        right,
        bottom,
        tuple(bars),
        tuple(series),
        x_ticks,
        y_ticks,
        unit,
        tuple(colours),
    )


@dataclass(frozen=True)
class Sparkline:
    """A small chart without axes: one bar per column, all drawn as one SVG path (a hundred ``<rect>`` a space
    would weigh on the page), its tooltip the total and the busiest column."""

    title: str
    width: int
    height: int
    path: str
    values: tuple[float, ...]
    tooltip: str

    @property
    def total(self) -> float:
        return sum(self.values)


def sparkline(
    title: str, columns: Sequence[str], values: Sequence[float], *, width: int = 180, height: int = 28
) -> Sparkline:
    ceiling = max(values, default=0) or 1
    slot = width / max(1, len(columns))
    bar = max(slot - 0.4, 0.4)
    path = " ".join(
        f"M{i * slot:.2f} {height}v{-height * v / ceiling:.2f}h{bar:.2f}v{height * v / ceiling:.2f}z"
        for i, v in enumerate(values)
        if v > 0
    )
    busiest = max(range(len(values)), key=lambda i: values[i], default=None)
    tooltip = f"{title}: {_number(sum(values))}"
    if busiest is not None and values[busiest] > 0:
        tooltip += f"; busiest {columns[busiest]}, {_number(values[busiest])}"
    return Sparkline(title, width, height, path, tuple(values), tooltip)
