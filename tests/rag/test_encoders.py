"""Embedding backends: the exported runtime agrees with torch, its export is cached by model hash, and a damaged
or half-written cache is never trusted."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
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
    "Text longer than the model's 256 tokens is cut where sentence-transformers cuts it. " * 40,
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
    assert fast.shape == reference.shape == (4, 384)
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


def test_the_cache_key_follows_the_weights(minilm_dir: str, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(minilm_dir, copy)
    before = encoders.files_hash(copy)
    assert encoders.files_hash(copy) == before
    (copy / "README.md").write_text("notes do not change the model")
    assert encoders.files_hash(copy) == before
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert encoders.files_hash(copy) != before


def test_a_cached_export_runs_without_torch(minilm_dir: str, embedding_cache: Path) -> None:
    """The point of the export for memory: a process with the export cached never imports torch (~450 MB)."""
    script = f"""
import sys
from pathlib import Path
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import EmbeddingSettings
model = SentenceTransformerEmbedder(EmbeddingSettings(model={minilm_dir!r}, threads=1), Path({str(embedding_cache)!r}))
vector = model.encode(["hello"], queries=True)[0]
print(len(vector), model.count_tokens("hello world"), model.max_tokens, model.backend)
print(sorted(name for name in ("torch", "transformers", "sentence_transformers") if name in sys.modules))
"""
    SentenceTransformerEmbedder(EmbeddingSettings(model=minilm_dir, threads=1), embedding_cache).close()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["384 2 256 openvino", "[]"]


@pytest.mark.parametrize(
    "modes", [("mean",), ("cls",), ("max",), ("lasttoken",), ("mean_sqrt_len_tokens",), ("cls", "mean")]
)
def test_numpy_pooling_matches_sentence_transformers(modes: tuple[str, ...]) -> None:
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(7)
    hidden = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int64)
    module = Pooling(4, pooling_mode=modes[0] if len(modes) == 1 else modes)
    expected = module({"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(mask)})
    assert np.allclose(encoders.pool(hidden, mask, modes), expected["sentence_embedding"].numpy(), atol=1e-5)


def test_models_of_other_shapes_are_left_to_torch(minilm_dir: str, tmp_path: Path) -> None:
    assert encoders.read_layout(Path(minilm_dir)) == encoders.Layout(
        folder=Path(minilm_dir),
        tokenizer=Path(minilm_dir) / "tokenizer.json",
        pooling=("mean",),
        max_tokens=256,
        lowercase=False,
        dimension=384,
    )
    copy = tmp_path / "model"
    shutil.copytree(minilm_dir, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    modules = json.loads((copy / "modules.json").read_text())
    (copy / "modules.json").write_text(
        json.dumps([*modules, {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}])
    )
    assert encoders.read_layout(copy) is None
    (copy / "modules.json").write_text(json.dumps(modules))
    (copy / "tokenizer.json").unlink()
    assert encoders.read_layout(copy) is None
    assert encoders.read_layout(tmp_path / "missing") is None


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


PROMPTS = {"query": "search_query: ", "document": "search_document: "}
QUESTION = "which index uses more memory, HNSW or IVF?"


@pytest.fixture(scope="module")
def prompted_dir(minilm_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with query and document prompts in its sentence-transformers config, as nomic or e5 models ship."""
    copy = tmp_path_factory.mktemp("prompted") / "model"
    shutil.copytree(minilm_dir, copy)
    (copy / "config_sentence_transformers.json").write_text(json.dumps({"prompts": PROMPTS}))
    return copy


@pytest.mark.parametrize("backend", ["torch", "openvino"])
async def test_the_models_own_query_and_document_prompts_are_honoured_on_every_backend(
    backend: str, prompted_dir: Path, torch_embedder: SentenceTransformerEmbedder, embedding_cache: Path
) -> None:
    settings = EmbeddingSettings(model=str(prompted_dir), backend=backend, threads=1)
    model = SentenceTransformerEmbedder(settings, embedding_cache)
    try:
        assert model.backend == backend
        query = np.array(await model.embed_query(QUESTION))
        passages = np.array(await model.embed_passages(TEXTS[:2]))
        # The prompt's tokens come out of the chunk budget, so a chunk with its prompt still fits the model.
        assert model.max_tokens == 256 - model.count_tokens(PROMPTS["document"])
    finally:
        model.close()
    expected_query = np.array(await torch_embedder.embed_query(PROMPTS["query"] + QUESTION))
    expected_passages = np.array(await torch_embedder.embed_passages([PROMPTS["document"] + t for t in TEXTS[:2]]))
    assert float(query @ expected_query) > 0.999
    assert (passages * expected_passages).sum(axis=1).min() > 0.999


def test_a_configured_prefix_replaces_the_models_prompt(prompted_dir: Path) -> None:
    settings = EmbeddingSettings(model=str(prompted_dir), backend="torch", threads=1, query_prefix="query: ")
    model = SentenceTransformerEmbedder(settings)
    try:
        assert (model.query_prompt, model.document_prompt) == ("query: ", PROMPTS["document"])
    finally:
        model.close()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ("", "")),
        ({"prompts": {"query": "", "document": ""}}, ("", "")),
        ({"prompts": {"query": None, "document": None}}, ("", "")),
        ({"prompts": PROMPTS}, ("search_query: ", "search_document: ")),
        ({"prompts": {"query": "query: ", "passage": "passage: "}}, ("query: ", "passage: ")),
        ({"prompts": {"query": "q: ", "document": None, "corpus": "c: "}}, ("q: ", "c: ")),
        ({"prompts": {"retrieval": "r: "}, "default_prompt_name": "retrieval"}, ("r: ", "r: ")),
        ({"prompts": {"query": "q: ", "all": "a: "}, "default_prompt_name": "all"}, ("q: ", "a: ")),
    ],
)
def test_prompts_are_read_as_sentence_transformers_names_them(
    config: dict[str, object], expected: tuple[str, str]
) -> None:
    assert encoders.prompts(config) == expected


def test_the_sequence_limit_of_a_folder_saved_by_sentence_transformers_6_is_read_from_its_tokenizer(
    minilm_dir: str, tmp_path: Path
) -> None:
    """sentence-transformers 6 saves max_seq_length as the tokenizer's model_max_length, not in
    sentence_bert_config.json: read as torch reads it, or the exported backend chunks and truncates at 512."""
    copy = tmp_path / "model"
    shutil.copytree(minilm_dir, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    (copy / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": "feature-extraction"}))
    tokenizer_config = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "model_max_length": 256}))
    layout = encoders.read_layout(copy)
    assert layout is not None and layout.max_tokens == 256
    # A tokenizer without a limit of its own (transformers' huge placeholder) leaves it to the model's positions.
    (copy / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "model_max_length": int(1e30)}))
    layout = encoders.read_layout(copy)
    assert layout is not None and layout.max_tokens == 512
