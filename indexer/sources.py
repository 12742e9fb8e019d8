"""What a docs source hands the indexer: raw documents, or a note that one failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class RawDocument:
    """A fetched or read document before extraction.

    ``page_id`` is stable within the source (a relative path, or a normalised URL);
    ``url`` is where a reader can open it.
    """

    page_id: str
    url: str
    content: str
    kind: Literal["markdown", "html"]


@dataclass(frozen=True)
class DocumentFailure:
    """A document the source knows exists but could not read this time.

    Its chunks already in the index are kept: a transient failure must not prune.
    """

    page_id: str
    url: str
    reason: str


class SourceUnavailable(Exception):
    """The source could not be listed at all (site down, folder missing): nothing is pruned."""


class DocumentSource(Protocol):
    source_id: str

    def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        """Yield every document of the source once; raise SourceUnavailable if it can't be listed."""
        ...
