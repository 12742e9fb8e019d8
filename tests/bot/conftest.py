"""What the Discord and Slack front-end tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from rag.starting import BackgroundEngine
from tests.scripted import GatedStart


@pytest.fixture
async def starting() -> AsyncIterator[tuple[GatedStart, BackgroundEngine[Any]]]:
    """An engine start the test finishes (``gated.open()``), owned as the bot owns the real one."""
    gated = GatedStart("HNSW is a graph index [1].")
    async with BackgroundEngine(gated.start, model="scripted") as engine:
        yield gated, engine
