"""Which sources a search may read: community answers stay in the server or workspace that approved them.

Community answers (``rag.learned``) are indexed under one source per space, ``community:<platform>:<space>``, and
``community:<platform>:<space>:private`` for answers captured in a private channel. A question from a space reads
its own two, plus, when the operator lists the space in ``learned.shared_spaces``, the public ones of the other
listed spaces. Private captures are never shared beyond their space. Answers indexed before this (the source
``community``) are read by no one's question; index runs remove them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COMMUNITY = "community"
PREFIX = COMMUNITY + ":"  # of every scoped community source


def is_community(source_id: str) -> bool:
    return source_id == COMMUNITY or source_id.startswith(PREFIX)


def space_key(platform: str, space: object) -> str:
    """How ``learned.shared_spaces`` names a space: ``discord:<guild id>`` or ``slack:<team id>``."""
    return f"{platform}:{space}"


def community_source(platform: str, space: object, *, private: bool | None) -> str:
    """The source an answer approved in ``space`` is indexed under. ``private`` None (captured before Docent
    recorded it) counts as private: never shared."""
    own = f"{PREFIX}{space_key(platform, space)}"
    return own if private is False else own + ":private"


def visible_communities(platform: str, space: object | None, shared: Sequence[str] = ()) -> tuple[str, ...]:
    """The community sources a question asked in ``space`` may cite (none in a direct message)."""
    if space is None:
        return ()
    own = space_key(platform, space)
    ids = [community_source(platform, space, private=False), community_source(platform, space, private=True)]
    if own in shared:
        ids += [PREFIX + other for other in dict.fromkeys(shared) if other != own]
    return tuple(ids)


@dataclass(frozen=True)
class SearchScope:
    """``sources``: the docs sources a search reads (empty: all; ``community`` among them lets community answers
    in). ``communities``: of the community answers, only these sources (None: all of them, for the operator's own
    command line and benchmarks; empty: none)."""

    sources: tuple[str, ...] = ()
    communities: tuple[str, ...] | None = None

    def admits(self, source_id: str) -> bool:
        if is_community(source_id):
            listed = self.communities is None or source_id in self.communities
            return listed and (not self.sources or COMMUNITY in self.sources)
        return not self.sources or source_id in self.sources


EVERYTHING = SearchScope()  # the operator's view: every source, every community's answers
