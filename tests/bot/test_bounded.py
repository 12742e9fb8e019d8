"""The one bounded map behind the front-ends' registries."""

from __future__ import annotations

import pytest

from bot.bounded import BoundedMap


def test_the_oldest_entry_goes_first_and_a_touch_keeps_one() -> None:
    seen: BoundedMap[str, int] = BoundedMap(2)
    seen["a"], seen["b"] = 1, 2
    seen.touch("a")
    seen["c"] = 3
    assert list(seen) == ["a", "c"] and len(seen) == 2
    assert seen.get("b") is None and seen.get(None) is None and seen["c"] == 3


def test_first_time_is_true_once() -> None:
    seen: BoundedMap[str, None] = BoundedMap(10)
    assert seen.first_time("event", None) and not seen.first_time("event", None) and "event" in seen


def test_a_map_holds_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedMap(0)
