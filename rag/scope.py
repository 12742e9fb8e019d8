"""Which sources a search may read: community answers stay in the server or workspace that approved them.

Community answers (``rag.learned``) are indexed under one source per space, ``community:<platform>:<space>``, and
``community:<platform>:<space>:private`` for answers captured in a private channel. A question from a space reads
its own two, plus, when the operator lists the space in ``learned.shared_spaces``, the public ones of the other
listed spaces. Private captures are never shared beyond their space. Answers indexed before this (the source
``community``) are read by no one's question; index runs remove them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

COMMUNITY = "community"
_PREFIX = COMMUNITY + ":"


def is_community(source_id: str) -> bool:
    return source_id == COMMUNITY or source_id.startswith(_PREFIX)


def space_key(platform: str, space: object) -> str:
    """How ``learned.shared_spaces`` names a space: ``discord:<guild id>`` or ``slack:<team id>``."""
    return f"{platform}:{space}"


def community_source(platform: str, space: object, *, private: bool | None) -> str:
    """The source an answer approved in ``space`` is indexed under. ``private`` None (captured before Docent
    recorded it) counts as private: never shared."""
    own = f"{_PREFIX}{space_key(platform, space)}"
    return own if private is False else own + ":private"


def visible_communities(platform: str, space: object | None, shared: Sequence[str] = ()) -> tuple[str, ...]:
    """The community sources a question asked in ``space`` may cite (none in a direct message)."""
    if space is None:
        return ()
    own = space_key(platform, space)
    ids = [community_source(platform, space, private=False), community_source(platform, space, private=True)]
    if own in shared:
        ids += [_PREFIX + other for other in dict.fromkeys(shared) if other != own]
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

    def expression(self) -> str:
        """The same rule as a Milvus filter ("" when everything is admitted)."""
        docs = [source for source in self.sources if source != COMMUNITY]
        communities_in = not self.sources or COMMUNITY in self.sources
        if self.communities is None:
            community = f'(source_id == "{COMMUNITY}" or source_id like "{_PREFIX}%")' if communities_in else ""
        else:
            community = _in(self.communities) if communities_in and self.communities else ""
        if not self.sources:
            if self.communities is None:
                return ""
            not_community = f'(source_id != "{COMMUNITY}" and not (source_id like "{_PREFIX}%"))'
            return f"{not_community} or {community}" if community else not_community
        parts = [part for part in (_in(docs) if docs else "", community) if part]
        return " or ".join(parts) if parts else 'source_id == ""'


def _in(values: Sequence[str]) -> str:
    return f"source_id in [{', '.join(json.dumps(v, ensure_ascii=False) for v in values)}]"


EVERYTHING = SearchScope()  # the operator's view: every source, every community's answers
