"""Sources and the indexer built from settings, for every entry point that indexes."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from indexer.chunking import Granularity
from indexer.local import FolderDocs
from indexer.manifest import IndexManifest
from indexer.runner import Indexer
from indexer.sources import DocumentSource
from indexer.web import PublicAddressResolver, WebsiteDocs
from rag.embedder import Embedder
from rag.metrics import Metrics
from rag.settings import PROJECT_ROOT, FolderSource, IndexerSettings, Settings, WebsiteSource
from rag.store import Store


def resolve_folder(path: Path) -> Path:
    """Relative folders in config files are relative to the project, not the current directory."""
    path = path.expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def make_source(
    config: FolderSource | WebsiteSource, settings: IndexerSettings, session: aiohttp.ClientSession
) -> DocumentSource:
    if isinstance(config, FolderSource):
        config = config.model_copy(update={"path": resolve_folder(config.path)})
        return FolderDocs(config, max_bytes=settings.max_page_bytes)
    return WebsiteDocs(config, settings, session)


def folder_source_for(
    path: Path, settings: IndexerSettings, base_url: str = "", flatten: bool = False, strip_suffix: bool = False
) -> FolderSource:
    """The configured source for this folder if there is one (so its id and URL mapping hold), else an ad-hoc one."""
    target = path.expanduser().resolve()
    mapping = {"base_url": base_url, "flatten": flatten, "strip_suffix": strip_suffix}
    for config in settings.sources:
        if isinstance(config, FolderSource) and resolve_folder(config.path) == target:
            return config.model_copy(update=mapping) if base_url else config
    return FolderSource(path=target, **mapping)


RECORD_FILE = "index-record.sqlite3"


def index_record(settings: Settings, collection: str = "") -> IndexManifest:
    """The durable record of what is indexed in ``collection`` (the configured one by default); opens a file."""
    return IndexManifest(settings.data_dir / RECORD_FILE, collection or settings.milvus.collection)


def make_indexer(
    settings: Settings, embedder: Embedder, store: Store, *, collection: str = "", metrics: Metrics | None = None
) -> Indexer:
    """The indexer with its durable record (``<data_dir>/index-record.sqlite3``) for this collection, and the
    cross-process lock (``<data_dir>/indexer.lock``) that keeps two indexers from pruning each other's rows."""
    manifest = index_record(settings, collection)
    return Indexer(
        embedder,
        store,
        overlap_tokens=settings.indexer.chunk_overlap_tokens,
        granularity=Granularity.from_settings(settings.tuning),
        upsert_batch=settings.indexer.upsert_batch,
        embedding_model=settings.embedding.model,
        manifest=manifest,
        max_prune_fraction=settings.indexer.max_prune_fraction,
        metrics=metrics,
        lock_path=settings.data_dir / "indexer.lock",
    )


def http_session(settings: IndexerSettings) -> aiohttp.ClientSession:
    """The crawlers' session: unless ``allow_private_addresses``, its resolver drops non-public addresses,
    so no name (nor a redirect to one) reaches loopback, the LAN or a cloud metadata service."""
    resolver = None if settings.allow_private_addresses else PublicAddressResolver()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver),
        headers={"User-Agent": settings.user_agent},
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout_s),
    )
