"""A folder source reads only its folder, and cites pages without a link when it has no base_url."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from indexer.local import FolderDocs
from indexer.runner import Indexer
from indexer.sources import DocumentFailure
from rag.settings import FolderSource

pytestmark = pytest.mark.integration

SECRET = "the-launch-code-is-0000"


@pytest.fixture
def leaky_folder(tmp_path: Path) -> Path:
    """One real page, and links leading out of the folder in every way a docs repo could hold them."""
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "start.md").write_text("# Start\n\nInstall the widget with pip.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.md").write_text(f"# Secrets\n\n{SECRET}\n")
    (root / "notes.md").symlink_to("../outside/secrets.md")  # a file outside
    (root / "env.md").symlink_to("/proc/self/environ")  # size 0 by stat, the environment when read
    (root / "linked").symlink_to(outside, target_is_directory=True)  # a folder outside
    (root / "loop.md").symlink_to("loop.md")  # a link to itself
    (root / "guide" / "again").symlink_to("..", target_is_directory=True)  # a folder loop
    (root / "inside.md").symlink_to("guide/start.md")  # a link that stays inside is fine
    return root


async def stored_text(store) -> str:
    rows = await store.scan(["page_id", "url", "title", "heading", "text"])
    return "\n".join(str(value) for row in rows for value in row.values())


async def test_links_out_of_the_folder_are_refused_and_reported(leaky_folder: Path, embedder, store) -> None:
    source = FolderDocs(FolderSource(id="docs", path=leaky_folder, base_url="https://w.dev/"), max_bytes=1024)
    report = await Indexer(embedder, store).run([source])

    text = await stored_text(store)
    assert SECRET not in text
    assert "PATH=" not in text and os.environ["PATH"] not in text, "no environment variable was indexed"
    assert {row["page_id"] for row in await store.scan(["page_id"])} == {"guide/start.md", "inside.md"}
    reasons = {failure["page"]: failure["reason"] for failure in report.failures}
    assert reasons["notes.md"] == "links outside the docs folder"
    assert reasons["env.md"] == "links outside the docs folder"
    assert reasons["linked/"] == "links outside the docs folder"
    assert reasons["loop.md"].startswith("unreadable")
    assert report.pages_new == 2 and report.pages_failed == 4


async def test_a_file_is_read_only_up_to_the_cap_whatever_its_size_says(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "big.md").write_text("# Big\n\n" + "x" * 5000)
    (root / "alias.md").symlink_to("big.md")
    os.mkfifo(root / "pipe.md")  # opening a FIFO for reading would block a naive reader forever
    source = FolderDocs(FolderSource(id="docs", path=root), max_bytes=1024)
    items = [item async for item in source.documents()]
    reasons = {item.page_id: item.reason for item in items if isinstance(item, DocumentFailure)}
    assert len(reasons) == len(items), items
    assert reasons["big.md"] == "larger than 1024 bytes"
    assert reasons["alias.md"] == "larger than 1024 bytes"
    assert reasons["pipe.md"] == "not a regular file"

    outside = tmp_path / "fragment.md"
    outside.write_text("outside text")
    assert source.resolve_include("../fragment.md") is None
    assert source.resolve_include("/proc/self/environ") is None


async def test_without_base_url_pages_are_cited_without_a_link(
    tmp_path: Path, embedder, store, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "setup.md").write_text("# Setup\n\nIntro.\n\n## Install\n\nRun pip install widget.\n")
    (root / "api.html").write_text("<html><body><h1 id='api'>API</h1><h2 id='errors'>Errors</h2><p>Bad.</p></body>")
    source = FolderDocs(FolderSource(id="docs", path=root))
    assert source.published_url("setup.md") == ""

    with caplog.at_level(logging.WARNING, logger="indexer.local"):
        first = await Indexer(embedder, store).run([source])
        again = await Indexer(embedder, store).run([source])
    assert first.pages_new == 2 and first.pages_failed == 0 and again.pages_unchanged == 2
    rows = await store.scan(["page_id", "url", "heading"])
    assert {row["heading"] for row in rows} >= {"Install", "Errors"}, "sections with anchors were indexed"
    assert {row["url"] for row in rows} == {""}, "no file:// path, no bare #anchor"
    warnings = [r.getMessage() for r in caplog.records if "base_url" in r.getMessage()]
    assert len(warnings) == 1, "warned once per source, naming the setting"
