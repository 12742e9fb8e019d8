"""The dashboard's charts: bars in proportion, stacked in order, labelled, each with its tooltip."""

from __future__ import annotations

import pytest

from bot.charts import nice_ceiling, sparkline, stacked_bars


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (7, 8), (2600, 3000), (1234, 1500), (0.3, 0.3), (101, 150)]
)
def test_the_y_axis_ends_on_a_round_number_at_or_above_the_tallest_column(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_stacked_bars_are_in_proportion_and_say_what_they_are() -> None:
    chart = stacked_bars(
        "Questions", ["d1", "d2", "d3"], {"discord": [4, 0, 2], "slack": [4, 1, 0]}, labels=["Jan 1", "Jan 2", "Jan 3"]
    )
    assert chart.total == 11 and chart.series == ("discord", "slack")
    assert [(b.key, chart.series[b.series], b.value) for b in chart.bars] == [
        ("d1", "discord", 4), ("d1", "slack", 4), ("d2", "slack", 1), ("d3", "discord", 2),
    ], "zero draws nothing"  # fmt: skip
    first, on_top = chart.bars[:2]
    assert first.y + first.height == pytest.approx(chart.bottom), "from the axis up"
    assert on_top.y + on_top.height == pytest.approx(first.y), "stacked on it"
    assert chart.bottom - on_top.y == pytest.approx(chart.bottom - chart.top), "8 of a ceiling of 8: full height"
    assert chart.bars[2].height == pytest.approx(first.height / 4)
    assert first.tooltip == "Jan 1 · discord: 4"
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    assert [t.label for t in chart.x_ticks] == ["Jan 1", "Jan 2", "Jan 3"]
    assert all(chart.left <= b.x and b.x + b.width <= chart.right for b in chart.bars)


def test_a_chart_of_nothing_draws_no_bar_and_a_sparkline_scales_to_its_tallest() -> None:
    assert stacked_bars("Nothing", ["a", "b"], {"x": [0, 0]}).bars == ()
    line = sparkline("Server 1", ["Jan 1", "Jan 2", "Jan 3"], [3, 6, 0], width=90, height=20)
    assert line.path == "M0.00 20v-10.00h29.60v10.00z M30.00 20v-20.00h29.60v20.00z", "one bar a column, none for 0"
    assert line.total == 9 and line.tooltip == "Server 1: 9; busiest Jan 2, 6"
    assert sparkline("Quiet", ["Jan 1"], [0]).path == ""
