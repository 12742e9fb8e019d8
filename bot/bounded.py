"""A bounded, insertion-ordered map: the one type behind every in-memory registry a front-end keeps (events seen,
support threads, skip marks, conversations). Oldest entries go first, so memory stays flat on a busy server."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("a bounded map holds at least one item")
        self._items: OrderedDict[K, V] = OrderedDict()
        self._max_items = max_items

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def get(self, key: K | None, default: V | None = None) -> V | None:
        return self._items.get(key, default) if key is not None else default

    def touch(self, key: K) -> None:
        """Mark ``key`` recently used, so it outlives entries untouched since."""
        if key in self._items:
            self._items.move_to_end(key)

    def first_time(self, key: K, value: V) -> bool:
        """Add ``key`` unless present; True if it was new (events delivered twice are handled once)."""
        if key in self._items:
            return False
        self[key] = value
        return True
