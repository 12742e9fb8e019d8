"""The embedder under the indexer's real concurrency: token counting in a worker thread while batches encode."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytestmark = pytest.mark.integration


async def test_counting_tokens_while_encoding_never_corrupts_a_batch(embedder) -> None:
    """A tokenizer shared with the encoding thread failed about one encode in six ("Unable to create
    tensor"); 200 encodes catch that in most runs."""
    stop = threading.Event()
    counted: list[int] = []

    def count_forever() -> None:
        while not stop.is_set():
            counted.extend(embedder.count_tokens("a b c") for _ in range(200))
            time.sleep(0.001)  # let the embedding thread have the GIL too

    worker = asyncio.create_task(asyncio.to_thread(count_forever))
    try:
        for i in range(200):
            vectors = await embedder.embed_passages(["x", "y " * (i % 50 + 2), "z z z"])
            assert len(vectors) == 3 and all(len(v) == embedder.dimension for v in vectors)
    finally:
        stop.set()
        await worker
    assert counted and set(counted) == {3}
