"""Embedding backends: the exported runtime agrees with torch, its export is cached by model hash, and a damaged
or half-written cache is never trusted."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag import encoders
from rag.embedder import SentenceTransformerEmbedder
from rag.errors import ConfigError
from rag.settings import EmbeddingSettings

TEXTS = [
    "How do I create a collection with a custom schema?",
    "Milvus supports IVF_FLAT and HNSW indexes on dense float vectors; HNSW trades memory for recall. " * 8,
    "pymilvus MilvusClient(uri='http://localhost:19530')",
]


@pytest.fixture(scope="module")
def torch_embedder(minilm_dir: str) -> Iterator[SentenceTransformerEmbedder]:
    model = SentenceTransformerEmbedder(EmbeddingSettings(model=minilm_dir, backend="torch", threads=1))
    yield model
    model.close()


async def test_the_default_backend_is_openvino_and_agrees_with_torch(
    embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert embedder.backend == "openvino"
    fast = np.array(await embedder.embed_passages(TEXTS))
    reference = np.array(await torch_embedder.embed_passages(TEXTS))
    assert fast.shape == reference.shape == (3, 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    assert (fast * reference).sum(axis=1).min() > 0.999
    query = np.array(await embedder.embed_query("which index uses more memory, HNSW or IVF?"))
    assert int(np.argmax(fast @ query)) == int(np.argmax(reference @ query)) == 1


def test_the_export_is_made_once_and_reused(minilm_dir: str, tmp_path: Path) -> None:
    first: list[str] = []
    settings = EmbeddingSettings(model=minilm_dir, backend="openvino", threads=1)
    SentenceTransformerEmbedder(settings, tmp_path, step=first.append).close()
    assert any("exporting" in step for step in first)
    [folder] = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert folder.name.startswith("openvino-") and (folder / "done").exists()

    again: list[str] = []
    model = SentenceTransformerEmbedder(settings, tmp_path, step=again.append)
    assert not any("exporting" in step for step in again) and again
    assert len(asyncio.run(model.embed_query("hello"))) == 384
    model.close()
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no leftover work folders


def test_the_cache_key_follows_the_weights(minilm_dir: str) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_dir, device="cpu")
    before = encoders.model_hash(model)
    assert encoders.model_hash(model) == before
    with torch.no_grad():
        next(iter(model.parameters())).add_(1e-3)
    assert encoders.model_hash(model) != before


def test_a_damaged_export_is_rebuilt(minilm_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = EmbeddingSettings(model=minilm_dir, backend="openvino", threads=1)
    SentenceTransformerEmbedder(settings, tmp_path).close()
    [folder] = list(tmp_path.iterdir())
    (folder / "model.xml").write_text("<net broken")
    steps: list[str] = []
    model = SentenceTransformerEmbedder(settings, tmp_path, step=steps.append)
    assert any("exporting" in step for step in steps)
    assert "exporting it again" in caplog.text
    assert len(asyncio.run(model.embed_query("hello"))) == 384
    model.close()


def test_an_export_cut_off_leaves_nothing_to_trust(minilm_dir: str, tmp_path: Path) -> None:
    def crash(step: str) -> None:
        if "exporting" in step:
            raise KeyboardInterrupt

    settings = EmbeddingSettings(model=minilm_dir, backend="openvino", threads=1)
    with pytest.raises(KeyboardInterrupt):
        SentenceTransformerEmbedder(settings, tmp_path, step=crash)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_runtime_is_a_clear_configuration_error(
    minilm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match=r"embedding.backend=onnx needs the onnxruntime package"):
        SentenceTransformerEmbedder(EmbeddingSettings(model=minilm_dir, backend="onnx"), tmp_path)


def test_without_a_cache_folder_the_model_runs_on_torch(torch_embedder: SentenceTransformerEmbedder) -> None:
    assert torch_embedder.backend == "torch"
