"""A local folder of markdown and HTML docs."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from rag.settings import FolderSource

logger = logging.getLogger(__name__)
_MARKDOWN = {".md", ".markdown", ".mdx"}


class FolderDocs:
    """Every matching file under ``config.path``; the page id is its path relative to the folder."""

    def __init__(self, config: FolderSource, *, max_bytes: int = 5_000_000) -> None:
        self.config = config
        self.source_id = config.source_id()
        self.root = config.path.expanduser().resolve()
        self._max_bytes = max_bytes

    def published_url(self, relative: str) -> str:
        """Map ``reference/index.md`` to its public URL (or a file URI when none is configured)."""
        path = PurePosixPath(relative)
        if not self.config.base_url:
            return (self.root / relative).as_uri()
        published = path.name if self.config.flatten else relative
        if self.config.strip_suffix:
            published = str(PurePosixPath(published).with_suffix(""))
        return self.config.base_url.rstrip("/") + "/" + published

    def resolve_include(self, include: str) -> str | None:
        """Text of a ``{{fragments/x.md}}`` include, confined to the folder."""
        target = (self.root / include.strip()).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        try:
            return target.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def _list(self) -> list[str]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"docs folder {self.root} does not exist")
        found: set[str] = set()
        for pattern in self.config.include:
            for path in self.root.glob(pattern):
                if path.is_file():
                    found.add(path.relative_to(self.root).as_posix())
        excluded = {rel for rel in found for pattern in self.config.exclude if fnmatch.fnmatchcase(rel, pattern)}
        return sorted(found - excluded)

    def _read(self, relative: str) -> RawDocument | DocumentFailure:
        path = self.root / relative
        url = self.published_url(relative)
        try:
            if path.stat().st_size > self._max_bytes:
                return DocumentFailure(relative, url, f"larger than {self._max_bytes} bytes")
            content = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            return DocumentFailure(relative, url, f"unreadable: {exc.strerror or exc}")
        kind = "markdown" if path.suffix.lower() in _MARKDOWN else "html"
        return RawDocument(page_id=relative, url=url, content=content, kind=kind)

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        for relative in await asyncio.to_thread(self._list):
            yield await asyncio.to_thread(self._read, relative)
