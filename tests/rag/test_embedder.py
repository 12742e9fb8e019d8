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


async def test_questions_asked_together_are_encoded_together(embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of questions (a busy server) is encoded in a few batches, with the vectors each gets alone."""
    import numpy as np

    texts = [f"How do I create collection number {n} with {'a custom ' * (n % 4)}schema?" for n in range(20)]
    alone = [await embedder.embed_query(text) for text in texts]
    batches: list[int] = []
    encode = embedder._run

    async def counted(batch: list[str], *, queries: bool = False) -> list[list[float]]:
        batches.append(len(batch))
        return await encode(batch, queries=queries)

    monkeypatch.setattr(embedder, "_run", counted)
    together = await asyncio.gather(*(embedder.embed_query(text) for text in texts))
    assert sum(batches) == 20 and len(batches) <= 3, batches  # the first alone, then the rest together
    assert (np.array(together) * np.array(alone)).sum(axis=1).min() > 0.9999


async def test_a_failed_batch_fails_its_questions_and_not_the_next(embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    encode = embedder._run
    failing = True

    async def flaky(batch: list[str], *, queries: bool = False) -> list[list[float]]:
        if failing:
            raise RuntimeError("encoder broke")
        return await encode(batch, queries=queries)

    monkeypatch.setattr(embedder, "_run", flaky)
    results = await asyncio.gather(*(embedder.embed_query(f"q{n}") for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    failing = False
    assert len(await embedder.embed_query("and now?")) == embedder.dimension


def test_a_model_folder_that_is_gone_is_said_at_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted model folder (an adapted model removed) is a ConfigError before sentence-transformers (and torch,
    seconds of imports) is asked to load it; a hub name is left to the hub."""
    from rag.embedder import SentenceTransformerEmbedder, _names_a_folder
    from rag.errors import ConfigError
    from rag.settings import EmbeddingSettings

    def never(self: object, name: str) -> None:
        raise AssertionError(f"sentence-transformers was asked to load {name}")

    monkeypatch.setattr(SentenceTransformerEmbedder, "_sentence_transformer", never)
    with pytest.raises(ConfigError, match="no such folder"):
        SentenceTransformerEmbedder(EmbeddingSettings(model=str(tmp_path / "embedders" / "gone")), tmp_path)
    assert _names_a_folder("./models/x") and _names_a_folder("~/m") and _names_a_folder("data/embedders/m")
    assert not _names_a_folder("sentence-transformers/all-MiniLM-L6-v2") and not _names_a_folder("all-MiniLM-L6-v2")
