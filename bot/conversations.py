"""Short conversation memory: which answer a reply or a thread continues."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from bot.bounded import BoundedMap
from rag.prompt import Turn


class Conversations:
    """Bounded in-memory map from a bot message or thread to the turns so far.

    Kept in memory on purpose: follow-ups are minutes apart, and after a restart a new
    question simply starts a new conversation.
    """

    def __init__(self, max_items: int = 5000, max_turns: int = 3) -> None:
        self._by_key: BoundedMap[Hashable, tuple[Turn, ...]] = BoundedMap(max_items)
        self._max_turns = max_turns

    def history(self, key: Hashable | None) -> tuple[Turn, ...]:
        if key is None or key not in self._by_key:
            return ()
        self._by_key.touch(key)
        return self._by_key[key]

    def knows(self, key: Hashable | None) -> bool:
        return key is not None and key in self._by_key

    def remember(self, keys: Iterable[Hashable], history: tuple[Turn, ...], turn: Turn) -> None:
        """Store the conversation including ``turn`` under each key (answer messages, the thread)."""
        turns = (*history, turn)[-self._max_turns :] if self._max_turns else ()
        for key in keys:
            self._by_key[key] = turns
