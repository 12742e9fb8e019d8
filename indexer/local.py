"""A local folder of markdown and HTML docs.

Whatever is indexed can be read back by anyone who asks the bot, so nothing outside the folder is: links are
resolved and a file whose real path leaves the folder is refused (``notes.md -> ../../secrets.txt``,
``env.md -> /proc/self/environ``), linked directories are not descended, and at most ``max_bytes + 1`` bytes
are read from any file, whatever its size claims to be.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Literal

from indexer.sources import DocumentFailure, RawDocument, SourceUnavailable
from rag.settings import FolderSource

logger = logging.getLogger(__name__)
_MARKDOWN = {".md", ".markdown", ".mdx"}
OUTSIDE = "links outside the docs folder"


class FolderDocs:
    """Every matching file under ``config.path``; the page id is its path relative to the folder."""

    def __init__(self, config: FolderSource, *, max_bytes: int = 5_000_000) -> None:
        self.config = config
        self.source_id = config.source_id()
        self.root = config.path.expanduser().resolve()
        self._max_bytes = max_bytes
        self._warned_no_base_url = False
        self._patterns = [PurePosixPath(p).parts for p in config.include]

    def published_url(self, relative: str) -> str:
        """Map ``reference/index.md`` to its public URL; "" (cited by title, no link) without a ``base_url``.

        A ``file://`` link would show users the server's layout and open nothing.
        """
        if not self.config.base_url:
            return ""
        published = PurePosixPath(relative).name if self.config.flatten else relative
        if self.config.strip_suffix:
            published = str(PurePosixPath(published).with_suffix(""))
        return self.config.base_url.rstrip("/") + "/" + published

    def resolve_include(self, include: str) -> str | None:
        """Text of a ``{{fragments/x.md}}`` include, confined to the folder like every page."""
        content = self._read_confined(self.root / include.strip())
        return content.decode("utf-8", errors="replace") if isinstance(content, bytes) else None

    def _read_confined(self, path: Path) -> bytes | str:
        """The file's bytes, or why it was refused: outside the folder, not a regular file, too large."""
        try:
            real = Path(os.path.realpath(path, strict=True))  # strict: a loop or a dangling link is an error
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc}"
        if not real.is_relative_to(self.root):
            return OUTSIDE
        try:
            # O_NOFOLLOW: the resolved path must not have become a link since; O_NONBLOCK: a FIFO doesn't hang.
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    return "not a regular file"
                data = file.read(self._max_bytes + 1)  # /proc files claim size 0: never trust stat
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc}"
        if len(data) > self._max_bytes:
            return f"larger than {self._max_bytes} bytes"
        return data

    def _wanted(self, relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        if not any(_match(parts, pattern) for pattern in self._patterns):
            return False
        return not any(fnmatch.fnmatchcase(relative, pattern) for pattern in self.config.exclude)

    def _list(self) -> tuple[list[str], list[str]]:
        """Matching files, and linked directories that lead out of the folder (reported, never descended)."""
        if not self.root.is_dir():
            raise SourceUnavailable(
                f"docs folder {self.root} does not exist: set the path of source {self.source_id!r} "
                "(config/sources.toml, or DOCENT_INDEXER__SOURCES), or index a folder with "
                "`python -m indexer --dir PATH --base-url URL`"
            )
        files: list[str] = []
        linked_out: list[str] = []
        for directory, dirnames, filenames in os.walk(self.root, followlinks=False):
            base = Path(directory)
            for name in dirnames:
                path = base / name
                if not path.is_symlink():
                    continue
                relative = path.relative_to(self.root).as_posix()
                could_match = any(_could_contain(PurePosixPath(relative).parts, p) for p in self._patterns)
                if could_match and not Path(os.path.realpath(path)).is_relative_to(self.root):
                    linked_out.append(relative)
            for name in filenames:
                relative = (base / name).relative_to(self.root).as_posix()
                if self._wanted(relative):
                    files.append(relative)
        return sorted(files), sorted(linked_out)

    def _read(self, relative: str) -> RawDocument | DocumentFailure:
        url = self.published_url(relative)
        content = self._read_confined(self.root / relative)
        if isinstance(content, str):
            return DocumentFailure(relative, url, content)
        kind: Literal["markdown", "html"] = (
            "markdown" if PurePosixPath(relative).suffix.lower() in _MARKDOWN else "html"
        )
        return RawDocument(page_id=relative, url=url, content=content.decode("utf-8", errors="replace"), kind=kind)

    async def documents(self) -> AsyncIterator[RawDocument | DocumentFailure]:
        if not self.config.base_url and not self._warned_no_base_url:
            self._warned_no_base_url = True
            logger.warning(
                "docs folder %s has no base_url: its pages are cited by title without a link; set base_url "
                "(in config/sources.toml, or --base-url) to the URL the pages are published under",
                self.root,
            )
        files, linked_out = await asyncio.to_thread(self._list)
        for relative in linked_out:
            yield DocumentFailure(relative + "/", "", OUTSIDE)
        for relative in files:
            yield await asyncio.to_thread(self._read, relative)


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Path.glob's matching of a relative path: ``**`` is any number of folders, ``*`` stays inside one."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(parts[skip:], pattern[1:]) for skip in range(len(parts)))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(parts[1:], pattern[1:])


def _could_contain(folder: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a file somewhere under ``folder`` could match ``pattern``."""
    if not folder:
        return bool(pattern)
    if not pattern:
        return False
    if pattern[0] == "**":
        return _could_contain(folder, pattern[1:]) or _could_contain(folder[1:], pattern)
    return fnmatch.fnmatchcase(folder[0], pattern[0]) and _could_contain(folder[1:], pattern[1:])
