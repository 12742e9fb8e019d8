"""The chunk index in Milvus (Lite by path, or a server by URI), called off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rag.bm25 import LocalBM25, Row, fuse
from rag.errors import ConfigError, IndexMissing, StoreInUse, StoreUnavailable
from rag.lexical import lexical_text
from rag.models import Chunk, Hit, page_key
from rag.scope import COMMUNITY, EVERYTHING, PREFIX, SearchScope
from rag.settings import MilvusSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

# VARCHAR limits are bytes; values are cut to fit on a character boundary.
_LIMITS = {
    "id": 64,
    "source_id": 512,
    "page_id": 2048,
    "page_key": 64,
    "url": 4096,
    "title": 1024,
    "heading": 2048,
    "text": 65535,
    "lexical": 65535,
    "headings": 8192,
    "page_hash": 64,
    "kind": 16,
}
_QUERY_WINDOW = 16384  # Milvus caps offset + limit of one query at this
_OUTPUT = ["id", "page_id", "url", "title", "heading", "text", "vector", "kind", "section"]
# Full-text (BM25) functions: (name, analysed text field, sparse field). ``lexical`` is stemmed title, headings
# and text (rag.lexical), for hybrid search; ``headings`` the same over the title and heading path alone, because
# users ask in a page's title words (searched when ``tuning.heading_search`` is on).
_BM25 = (("lexical_bm25", "lexical", "sparse"), ("headings_bm25", "headings", "heading_sparse"))
# A collection whose fields differ from these is an older layout and is rebuilt (see ensure_collection).
_INDEX_POLL_S = 0.05  # how often a new collection's indexes are looked at until built
# Physical collections are named <alias><_STAMP><time>_<random>; the configured name is their alias.
_STAMP = "__"
SCHEMA_FIELDS = frozenset(
    "id source_id page_id page_key ordinal kind section url title heading text lexical headings page_hash "
    "vector sparse heading_sparse".split()
)
# The collection property that records which embedding model built a collection (``embedding.model`` as given).
MODEL_PROPERTY = "docent.embedding_model"
# How often a process looks again at which collection its alias names: another process may have moved it.
ALIAS_CHECK_S = 10.0


@dataclass(frozen=True)
class Built:
    """The collection that answers, as its questions must be embedded: ``model`` is the embedding model recorded on
    it, "" for a collection from before models were recorded (taken as built by the configured model)."""

    collection: str
    model: str
    dimension: int
    collection_id: int = 0  # a server's id, which tells two collections of one name apart (Lite's is 0)

    def same_collection(self, other: Built) -> bool:
        return (self.collection, self.collection_id) == (other.collection, other.collection_id)


class _LiteNoise(logging.Filter):
    """Milvus Lite's in-process gRPC server logs a traceback for each RPC it lacks (AllocTimestamp) that
    pymilvus probes and then works around; drop those records, keep every other error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage() and not (
            record.exc_info and isinstance(record.exc_info[1], NotImplementedError)
        )


class _IteratorNoise(logging.Filter):
    """Lite has no MVCC timestamp to give query iterators; pymilvus warns and uses a client-side one, which is
    exactly right for a single-process database."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


class _LockedNoise(logging.Filter):
    """Milvus Lite logs a traceback when another process has the database open; ``StoreInUse`` says it in words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and type(record.exc_info[1]).__name__ == "DataDirLockedError")


logging.getLogger("grpc._server").addFilter(_LiteNoise())
logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_IteratorNoise())
logging.getLogger("milvus_lite.server_manager").addFilter(_LockedNoise())


def lite_in_use(uri: str) -> bool:
    """Whether another process has the Milvus Lite database at ``uri`` open: it holds the lock file Lite takes (in
    this process too, once Lite serves it here, so ask only after opening it failed)."""
    try:
        from milvus_lite.db import LOCK_FILENAME
    except ImportError:
        LOCK_FILENAME = "LOCK"
    try:
        fd = os.open(Path(uri) / LOCK_FILENAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the lock, if it was taken here
    return False


class Store(Protocol):
    async def ensure_collection(self, dimension: int, model: str = "") -> bool: ...

    @property
    def rebuilding(self) -> bool: ...

    async def finish_rebuild(self) -> None: ...

    async def fit_index(self) -> str | None: ...

    async def warm(self) -> None: ...

    async def page_hashes(self, source_id: str) -> dict[str, str]:
        """page_key(page_id) -> content hash of every page of a source (one row per page: ordinal 0)."""
        rows = await self.scan(["page_key", "page_hash"], f"source_id == {literal(source_id)} and ordinal == 0")
        return {row["page_key"]: row["page_hash"] for row in rows}

    async def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None: ...

    async def delete_page_tail(self, page_id: str, keep: int, *, source_id: str | None = None) -> None: ...

    async def delete_pages(self, page_ids: Iterable[str], *, source_id: str | None = None) -> None:
        await self.delete_keys([page_key(p) for p in page_ids], source_id=source_id)

    async def delete_keys(self, keys: Iterable[str], *, source_id: str | None = None) -> None: ...

    async def scan(self, fields: Sequence[str], expr: str = "") -> list[dict[str, Any]]: ...

    async def search(
        self,
        vector: Sequence[float],
        limit: int,
        *,
        lexical: str = "",
        rrf_k: int = 60,
        headings: bool = False,
        scope: SearchScope = EVERYTHING,
    ) -> list[Hit]:
        """Nearest chunks; with ``lexical`` terms, dense and BM25 results fused by reciprocal rank (and with
        ``headings``, BM25 over titles and headings alone as a third list); only what ``scope`` admits."""
        ...

    async def flush(self) -> None: ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...


def literal(value: str) -> str:
    """A Milvus filter string literal (Lite has no filter templates)."""
    return json.dumps(value, ensure_ascii=False)


def _fit(name: str, value: str) -> str:
    limit = _LIMITS[name]
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value
    return raw[:limit].decode("utf-8", errors="ignore")


# A ``*.db`` URI is Milvus Lite: a gRPC server on a thread of this process, with gRPC's default ping policy (a
# client ping sooner than 5 minutes after the last one, 2 hours while idle, is a strike; the third strike ends the
# connection with GOAWAY "too_many_pings", which the client logs at E level). pymilvus pings every 10 s even without
# calls and BDP-probes after responses. A loopback peer in our own process needs neither keepalive nor bandwidth
# probing, so the client sends Lite no pings at all. Remote servers keep pymilvus' defaults.
_LITE_GRPC_OPTIONS: dict[str, int] = {
    "grpc.keepalive_time_ms": 2**31 - 1,  # INT_MAX: keepalive off (gRPC's own client default)
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.http2.bdp_probe": 0,
}


class MilvusStore:
    """Chunks keyed by a stable id, with the page's content hash on every row.

    The sync client is used from worker threads: pymilvus' gRPC channel is thread
    safe, and Lite's async client cannot do DDL.
    """

    def __init__(self, uri: str, settings: MilvusSettings) -> None:
        self._uri = uri
        self._settings = settings
        self._name = settings.collection  # what searches use: an alias (or a collection from before aliases)
        self._write = self._name  # what the indexer writes: a new collection while one is rebuilt beside it
        self._client: Any = None
        self._lock = threading.Lock()
        # Calls running in worker threads: a call whose awaiting task was cancelled runs on, and closing the client
        # under it fails it midway ("should create connection first"), so ``close`` waits for them.
        self._busy = 0
        self._idle = threading.Condition()
        self._exclusive = False  # set while the name is briefly unbound (see ``_swap``): new calls wait
        self._retired: list[Any] = []  # clients dropped by ``_reset`` while other calls still used them
        self._limiter = asyncio.Semaphore(8)
        self._loaded_by: Any = None
        self._built: Built | None = None  # the collection that answers, once loaded
        self._check_at = 0.0  # when to look again at which collection the alias names (``ALIAS_CHECK_S``)
        self._output = list(_OUTPUT)
        self._has_headings = True
        self._index_type = _configured_index(settings)  # of the collection that answers, once loaded
        self._fields: set[str] = set()
        lite = uri.endswith(".db")
        self._local_bm25 = settings.bm25 == "local" or (settings.bm25 == "auto" and lite)
        # Field -> index of the collection that answers, built at the first search (see rag.bm25); None until then.
        self._bm25: dict[str, LocalBM25] | None = None
        self._bm25_lock = threading.Lock()

    def _connect(self) -> Any:
        from pymilvus import MilvusClient

        with self._lock:
            if self._client is None:
                started = time.perf_counter()
                token = self._settings.token.get_secret_value() if self._settings.token else ""
                self._client = MilvusClient(
                    self._uri,
                    token=token,
                    timeout=self._settings.timeout_s,
                    grpc_options=_LITE_GRPC_OPTIONS if self._uri.endswith(".db") else {},
                )
                logger.info("connected to milvus in %.2fs", time.perf_counter() - started)
            return self._client

    def _reset(self, failed: Any) -> None:
        """Drop the client a call failed on, so the next call reconnects; in a worker thread, because
        ``_connect`` can hold the lock for ``milvus.timeout_s`` and the event loop must never wait for it."""
        with self._lock:
            if self._client is failed:
                self._client = None
                with self._idle:
                    alone = self._busy <= 1
                if alone:
                    _drop(failed)
                else:  # closing it would fail the calls still running on it ("should create connection first")
                    self._retired.append(failed)

    async def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        def call() -> T:
            try:
                client = self._connect()
            except Exception as exc:
                if self._uri.endswith(".db") and lite_in_use(self._uri):
                    raise StoreInUse(
                        f"the Milvus Lite database {self._uri} is in use by another process (Milvus Lite opens in "
                        "one process at a time)"
                    ) from exc
                raise
            try:
                return fn(client)
            except (ConfigError, IndexMissing):
                raise
            except Exception:
                self._reset(client)
                raise

        def run() -> T:
            with self._idle:
                self._idle.wait_for(lambda: not self._exclusive)  # a swap that leaves the name unbound for a moment
                self._busy += 1
            try:
                return call()
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        async with self._limiter:
            try:
                return await asyncio.to_thread(run)
            except (ConfigError, IndexMissing):
                raise
            except StoreInUse as exc:
                logger.warning("milvus %s failed: %s", what, exc)
                raise
            except Exception as exc:  # pymilvus raises many types (gRPC, MilvusException, OSError)
                logger.warning("milvus %s failed: %s", what, exc)
                raise StoreUnavailable(f"milvus {what} failed: {exc}") from exc

    @property
    def rebuilding(self) -> bool:
        """A new collection is being filled beside the one that answers (see ``ensure_collection``)."""
        return self._write != self._name

    async def ensure_collection(self, dimension: int, model: str = "") -> bool:
        """Make sure there is a collection in today's layout, of ``dimension`` and built by the embedding ``model``,
        to write to, without ever leaving searches without one.

        The configured name is a Milvus alias of a physical collection ``<name>__<stamp>``, which records the model
        that built it (``MODEL_PROPERTY``). When the collection behind the alias has an older layout, another
        dimension or another model, a new one is created beside it (or the half-built one of an interrupted run of
        the same model is resumed; spares of other models are dropped): writes go there while searches keep reading
        the old one, and ``finish_rebuild`` moves the alias once an index run has filled it. A collection from
        before aliases is replaced the same way. A collection from before models were recorded is taken as built by
        ``model`` and the record is written: nothing is rebuilt for an existing install, and its next switch is
        seen. Without a ``model`` (benchmarks), any model will do.

        True when it dropped a rebuild to write to the collection that answers (a switch of model given up, or a
        rebuild finished by another process): an index record that followed the rebuild does not describe it.
        """

        def run(client: Any) -> bool:
            names = client.list_collections()
            current = self._behind_alias(client, names)
            spare = [c for c in names if c.startswith(self._name + _STAMP) and c != current]
            why = None if current is None else self._unfit(client, current, dimension, model)
            if current is not None and why is None:
                for name in spare:  # a rebuild made obsolete (another change, or one finished elsewhere)
                    client.drop_collection(name)
                self._record(client, current, model)
                self._write = self._name
                client.load_collection(self._name)
                return bool(spare)
            resume = next((c for c in spare if self._unfit(client, c, dimension, model) is None), None)
            for name in spare:
                if name != resume:
                    client.drop_collection(name)
            if resume is not None:
                self._record(client, resume, model)
            target = resume or self._create(client, dimension, model=model)
            client.load_collection(target)
            if current is None:
                client.create_alias(target, self._name)
                self._write = self._name
                return False
            self._write = target
            logger.warning(
                "collection %s %s: %s the new index in %s beside it; the old one answers until an index run "
                "completes it",
                self._name,
                why,
                "resuming" if resume else "building",
                target,
            )
            return False

        return await self._call("ensure_collection", run)

    async def finish_rebuild(self) -> None:
        """Point the alias at the rebuilt collection (searches move over at once) and drop the old one."""
        if not self.rebuilding:
            return
        target = self._write

        await self._call("finish_rebuild", lambda client: self._swap(client, target))
        logger.info("the rebuilt index %s now answers as %s", target, self._name)

    def _swap(self, client: Any, target: str) -> None:
        """Point the alias at ``target`` (searches move over at once), drop the collection it replaces."""
        client.flush(target)
        client.load_collection(target)
        old = self._behind_alias(client, client.list_collections())
        if old == self._name:  # a collection from before aliases holds the name
            # Dropping it and creating the alias leave the name unbound in between: this process's other calls
            # finish first and the next ones wait, so no search meets the gap.
            with self._idle:
                self._exclusive = True
                try:
                    self._idle.wait_for(lambda: self._busy <= 1, timeout=self._settings.timeout_s)
                    client.drop_collection(self._name)
                    client.create_alias(target, self._name)
                finally:
                    self._exclusive = False
                    self._idle.notify_all()
        else:
            client.alter_alias(target, self._name)
            if old is not None:
                client.drop_collection(old)
        self._write = self._name
        self._loaded_by = None  # searches look at the new collection's layout and index again
        with self._bm25_lock:
            self._bm25 = None  # and local BM25 reads the new collection

    async def fit_index(self) -> str | None:
        """With ``index_type=auto``, move a FLAT collection that has grown past ``auto_index_rows`` to IVF_FLAT:
        its rows (vectors included: nothing is embedded again) are copied into a new collection beside it, and the
        alias moves when the copy is complete, so searches never go without an index. The new index type, if
        it changed. Called after an index run, which is the only writer meanwhile."""
        if self._settings.index_type != "auto" or self.rebuilding:
            return None

        def run(client: Any) -> str | None:
            current = self._behind_alias(client, client.list_collections())
            if current is None or _vector_index(client, current) != "FLAT":
                return None
            rows = _rows(client, current)
            if rows < self._settings.auto_index_rows:
                return None
            started = time.perf_counter()
            described = client.describe_collection(current)
            fields = {f["name"]: f for f in described["fields"]}
            dimension = int(fields["vector"]["params"]["dim"])
            target = self._create(client, dimension, "IVF_FLAT", model=_recorded_model(described))
            copied = [name for name in fields if name not in ("sparse", "heading_sparse")]  # BM25 makes those
            for batch in _batches(client, current, copied, batch_size=2048):
                client.insert(target, batch)
            self._swap(client, target)
            logger.info(
                "%d chunks: moved the index from FLAT to IVF_FLAT (%s) in %.1fs",
                rows,
                target,
                time.perf_counter() - started,
            )
            return "IVF_FLAT"

        return await self._call("fit_index", run)

    def _behind_alias(self, client: Any, names: list[str]) -> str | None:
        """The physical collection of ``names`` that searches of the configured name reach, if any. (Asked
        collection by collection: ``describe_alias`` of a missing alias makes pymilvus log an error.)"""
        if self._name in names:
            return self._name
        for name in names:
            if name.startswith(self._name + _STAMP) and self._name in client.list_aliases(name)["aliases"]:
                return str(name)
        return None

    def _unfit(self, client: Any, name: str, dimension: int, model: str) -> str | None:
        """Why collection ``name`` cannot take this run's vectors (its layout, dimension or recorded model); None
        when it can. A collection that records no model fits any."""
        described = client.describe_collection(name)
        dims = {f["name"]: f.get("params", {}).get("dim") for f in described["fields"]}
        if set(dims) != SCHEMA_FIELDS:
            return "has an older layout"
        if int(dims.get("vector") or 0) != dimension:
            return f"holds {dims.get('vector')}-d vectors and the embedding model makes {dimension}-d ones"
        built = _recorded_model(described)
        if model and built and built != model:
            return f"was built by the embedding model {built!r}, not {model!r}"
        return None

    def _record(self, client: Any, name: str, model: str) -> None:
        """Write down that ``model`` built collection ``name`` if it records none (one from before the record)."""
        if model and not _recorded_model(client.describe_collection(name)):
            client.alter_collection_properties(name, properties={MODEL_PROPERTY: model})
            logger.info("collection %s recorded no embedding model: it is taken as built by %s", name, model)

    def _create(self, client: Any, dimension: int, index_type: str = "", *, model: str = "") -> str:
        index_type = index_type or _configured_index(self._settings)
        name = f"{self._name}{_STAMP}{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(2)}"
        indexes = self._indexes(client, index_type)
        started = time.perf_counter()
        # The collection bare, then its indexes without pymilvus' wait (a fixed half-second sleep per index before
        # its first look: 2.5 s for the five), then one short poll for all of them.
        properties = {MODEL_PROPERTY: model} if model else {}
        client.create_collection(name, schema=self._schema(client, dimension), properties=properties)
        client.create_index(name, indexes, sync=False)
        self._await_indexes(client, name)
        logger.info(
            "created collection %s (%d-d, %s, model %s) in %.2fs",
            name,
            dimension,
            index_type,
            model or "unrecorded",
            time.perf_counter() - started,
        )
        return name

    def _await_indexes(self, client: Any, name: str) -> None:
        """Wait until every index of ``name`` is built (at once for an empty collection; the copy of
        ``fit_index`` inserts after this); a failed one raises, so no half-indexed collection is used."""
        deadline = time.monotonic() + self._settings.timeout_s
        pending = set(client.list_indexes(name))
        while pending:
            for index in sorted(pending):
                described = client.describe_index(name, index) or {}
                state = str(described.get("state", "Finished"))
                if state == "Finished":
                    pending.discard(index)
                elif state == "Failed":
                    raise StoreUnavailable(
                        f"building index {index} of {name} failed: {described.get('index_state_fail_reason', '')}"
                    )
            if pending:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"the indexes of {name} were not built in {self._settings.timeout_s}s")
                time.sleep(_INDEX_POLL_S)

    def _schema(self, client: Any, dimension: int) -> Any:
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_LIMITS["id"])
        schema.add_field("source_id", DataType.VARCHAR, max_length=_LIMITS["source_id"])
        schema.add_field("page_id", DataType.VARCHAR, max_length=_LIMITS["page_id"])  # shown, may be cut
        schema.add_field("page_key", DataType.VARCHAR, max_length=_LIMITS["page_key"])  # what filters use
        schema.add_field("ordinal", DataType.INT64)
        schema.add_field("kind", DataType.VARCHAR, max_length=_LIMITS["kind"])  # "section" | "window"
        schema.add_field("section", DataType.INT64)  # the page's packed section a row belongs to
        schema.add_field("url", DataType.VARCHAR, max_length=_LIMITS["url"])
        schema.add_field("title", DataType.VARCHAR, max_length=_LIMITS["title"])
        schema.add_field("heading", DataType.VARCHAR, max_length=_LIMITS["heading"])
        schema.add_field("text", DataType.VARCHAR, max_length=_LIMITS["text"])
        schema.add_field("lexical", DataType.VARCHAR, max_length=_LIMITS["lexical"], enable_analyzer=True)
        schema.add_field("headings", DataType.VARCHAR, max_length=_LIMITS["headings"], enable_analyzer=True)
        schema.add_field("page_hash", DataType.VARCHAR, max_length=_LIMITS["page_hash"])
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("heading_sparse", DataType.SPARSE_FLOAT_VECTOR)
        for function, text_field, sparse_field in _BM25:
            schema.add_function(
                Function(
                    name=function,
                    function_type=FunctionType.BM25,
                    input_field_names=[text_field],
                    output_field_names=[sparse_field],
                )
            )
        return schema

    def _indexes(self, client: Any, index_type: str) -> Any:
        params = client.prepare_index_params()
        extra: dict[str, Any] = {"M": 16, "efConstruction": 200} if index_type == "HNSW" else {}
        if index_type == "IVF_FLAT":  # Lite ignores nlist and uses 128 (or the segment's size, if smaller)
            extra = {"nlist": 128}
        params.add_index("vector", index_type=index_type, metric_type=self._settings.metric, params=extra)
        for _, _, sparse_field in _BM25:
            params.add_index(sparse_field, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        params.add_index("page_key", index_type="INVERTED")
        params.add_index("source_id", index_type="INVERTED")
        return params

    async def page_hashes(self, source_id: str) -> dict[str, str]:
        """page_key(page_id) -> content hash of every page of a source (one row per page: ordinal 0).

        Keyed by the page key, not the stored page id, which is cut to fit its field.
        """

        expr = f"source_id == {literal(source_id)} and ordinal == 0"
        fields = ["page_key", "page_hash"]

        def run(client: Any) -> dict[str, str]:
            rows = client.query(self._write, filter=expr, output_fields=fields, limit=_QUERY_WINDOW)
            if len(rows) >= _QUERY_WINDOW:  # more pages than one query window: page through them
                rows = [row for batch in _batches(client, self._write, fields, expr) for row in batch]
            return {row["page_key"]: row["page_hash"] for row in rows}

        return await self._call("page_hashes", run)

    async def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        if not chunks:
            return
        rows = [
            {
                "id": _fit("id", c.chunk_id),
                "source_id": _fit("source_id", c.source_id),
                "page_id": _fit("page_id", c.page_id),
                "page_key": page_key(c.page_id),
                "ordinal": c.ordinal,
                "kind": _fit("kind", c.kind),
                "section": c.section,
                "url": _fit("url", c.url),
                "title": _fit("title", c.title),
                "heading": _fit("heading", c.heading),
                "text": _fit("text", c.text),
                "lexical": _fit("lexical", lexical_text(c.embed_text)),
                "headings": _fit("headings", lexical_text(f"{c.title}\n{c.heading}")),
                "page_hash": _fit("page_hash", c.content_hash),
                "vector": list(v),
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]

        def write(client: Any) -> None:
            with self._bm25_lock:  # a local BM25 being read from the collection sees this write, or gets it here
                client.upsert(self._write, rows)
                for field, index in self._following().items():
                    index.put(_bm25_row(r, field) for r in rows)

        await self._call("upsert", write)

    async def delete_page_tail(self, page_id: str, keep: int, *, source_id: str | None = None) -> None:
        """Drop a page's chunks from ordinal ``keep`` on: what is left after it shrank."""
        scope = f"source_id == {literal(source_id)} and " if source_id is not None else ""
        expr = f"{scope}page_key == {literal(page_key(page_id))} and ordinal >= {int(keep)}"
        await self._delete(expr, [page_key(page_id)], source_id, int(keep))

    async def delete_pages(self, page_ids: Iterable[str], *, source_id: str | None = None) -> None:
        await self.delete_keys([page_key(p) for p in page_ids], source_id=source_id)

    async def delete_keys(self, keys: Iterable[str], *, source_id: str | None = None) -> None:
        """Drop every row of the pages with these page keys (``rag.models.page_key``)."""
        wanted = list(keys)
        scope = f"source_id == {literal(source_id)} and " if source_id is not None else ""
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            await self._delete(f"{scope}page_key in {literal_list(batch)}", batch, source_id)

    async def _delete(self, expr: str, keys: list[str], source_id: str | None, from_ordinal: int = 0) -> None:
        def delete(client: Any) -> None:
            with self._bm25_lock:
                client.delete(self._write, filter=expr)
                for index in self._following().values():
                    index.delete_pages(keys, source_id=source_id, from_ordinal=from_ordinal)

        await self._call("delete", delete)

    def _following(self) -> dict[str, LocalBM25]:
        """The local BM25 indexes that follow this process's writes: those of the collection that answers, once
        built, and none while a rebuild writes elsewhere. Called with ``_bm25_lock`` held."""
        return self._bm25 or {} if self._write == self._name else {}

    async def search(
        self,
        vector: Sequence[float],
        limit: int,
        *,
        lexical: str = "",
        rrf_k: int = 60,
        headings: bool = False,
        scope: SearchScope = EVERYTHING,
    ) -> list[Hit]:
        """Nearest chunks; with ``lexical`` terms, dense and BM25 results fused by reciprocal rank, and with
        ``headings`` a third list: BM25 over titles and heading paths alone. Every list reads only what ``scope``
        admits (a channel limited to the SDK docs; the community answers of the asker's own server).

        ``Hit.similarity`` is always the dense cosine, computed from the returned vectors, so confidence does
        not depend on the fusion (whose scores are ranks) or on BM25 (whose scores Lite returns negated).
        """
        from pymilvus import AnnSearchRequest, RRFRanker

        query = list(vector)
        expr = scope_filter(scope)

        def run(client: Any) -> list[Hit]:
            self._ensure_loaded(client)
            # After loading: the parameters of the index the answering collection has, not of the setting.
            dense_params: dict[str, Any] = {"metric_type": self._settings.metric}
            if self._index_type == "HNSW":  # ef below the candidates asked for would cut them short
                dense_params["params"] = {"ef": max(2 * limit, 64)}
            elif self._index_type == "IVF_FLAT":
                dense_params["params"] = {"nprobe": 16}
            if lexical.strip():
                self._load_bm25(client)
            local = self._bm25  # once: a rebuild finishing meanwhile replaces it
            if lexical.strip() and local:
                lists = [local["lexical"].search(lexical, limit, scope)]
                if headings and "headings" in local:
                    lists.append(local["headings"].search(lexical, limit, scope))
                return self._search_local(client, query, dense_params, expr, limit, lists, rrf_k)
            if lexical.strip():
                requests = [
                    AnnSearchRequest([query], "vector", dense_params, limit, expr=expr or None),
                    AnnSearchRequest([lexical], "sparse", {"metric_type": "BM25"}, limit, expr=expr or None),
                ]
                if headings and self._has_headings:
                    requests.append(
                        AnnSearchRequest([lexical], "heading_sparse", {"metric_type": "BM25"}, limit, expr=expr or None)
                    )
                results = client.hybrid_search(
                    self._name, requests, RRFRanker(rrf_k), limit=limit, output_fields=self._output
                )
            else:
                results = client.search(
                    self._name,
                    data=[query],
                    anns_field="vector",
                    limit=limit,
                    output_fields=self._output,
                    search_params=dense_params,
                    filter=expr,
                )
            return [_hit(row, query) for row in results[0]]

        return await self._call("search", run)

    def _search_local(
        self,
        client: Any,
        query: list[float],
        dense_params: dict[str, Any],
        expr: str,
        limit: int,
        lexical: list[list[str]],
        rrf_k: int,
    ) -> list[Hit]:
        """Hybrid search with BM25 run here (Lite): Milvus' vector search, fused with the local BM25 lists
        (``lexical``: keys, best first) as Milvus' RRFRanker does, then the rows only BM25 found, fetched by key.
        The vector search's own distance is the cosine, so only those rows bring their vectors back."""
        dense = client.search(
            self._name,
            data=[query],
            anns_field="vector",
            limit=limit,
            output_fields=[field for field in self._output if field != "vector"],
            search_params=dense_params,
            filter=expr,
        )[0]
        rows = {row["id"]: row for row in dense}
        cosine = {row["id"]: float(row["distance"]) for row in dense}
        fused = fuse([list(rows), *lexical], rrf_k, limit)
        missing = [key for key, _ in fused if key not in rows]
        if missing:
            for entity in client.get(self._name, ids=missing, output_fields=self._output):
                rows[entity["id"]] = {"id": entity["id"], "entity": entity}
        return [_hit({**rows[key], "distance": score}, query, cosine.get(key)) for key, score in fused if key in rows]

    async def scan(self, fields: Sequence[str], expr: str = "") -> list[dict[str, Any]]:
        """Every row matching ``expr`` (all rows when empty), paged past Milvus' query window."""

        def run(client: Any) -> list[dict[str, Any]]:
            if self._write == self._name:
                self._ensure_loaded(client)
            rows: list[dict[str, Any]] = client.query(
                self._write, filter=expr, output_fields=list(fields), limit=_QUERY_WINDOW
            )
            if len(rows) < _QUERY_WINDOW:  # it all fit in one query
                return rows
            return [row for batch in _batches(client, self._write, list(fields), expr) for row in batch]

        return await self._call("scan", run)

    async def warm(self) -> None:
        """Load the collection and read the local BM25 index now rather than at the first question (about 6 s
        at 43k chunks). The bot calls it while the engine starts; an empty store has nothing to warm."""

        def run(client: Any) -> None:
            self._ensure_loaded(client)
            self._load_bm25(client)

        with contextlib.suppress(IndexMissing):
            await self._call("warm", run)

    async def require_index(self) -> None:
        """Raise IndexMissing unless the collection exists and holds chunks."""
        await self._call("load", self._ensure_loaded)
        if await self._count(self._name) == 0:
            raise IndexMissing(f"The collection {self._name!r} is empty: run `python -m indexer`.")

    async def answering(self) -> Built:
        """The collection that answers, with the model its questions must be embedded by. Cheap: read when the
        collection is loaded, and looked at again at most every ``ALIAS_CHECK_S``."""
        if self._built is None or self._loaded_by is not self._client or time.monotonic() >= self._check_at:
            await self._call("load", self._ensure_loaded)
        assert self._built is not None
        return self._built

    def _ensure_loaded(self, client: Any) -> None:
        """A fresh process finds the collection released: load it once (and say so if it doesn't exist). Every
        ``ALIAS_CHECK_S`` it looks again at which collection the alias names: another process (an indexer beside
        the bot, on a Milvus server) may have moved it, and then the layout, index, model and local BM25 of the
        collection that answers now are read again, as after a move in this process (``_swap``)."""
        now = time.monotonic()
        if self._loaded_by is client and now < self._check_at:
            return
        if self._loaded_by is not client and not client.has_collection(self._name):
            raise IndexMissing(
                f"No docs are indexed yet (collection {self._name!r} does not exist): run `python -m indexer`."
            )
        described = client.describe_collection(self._name)
        built = _built(described)
        self._check_at = now + ALIAS_CHECK_S
        if self._loaded_by is client and built == self._built:
            return
        if self._built is not None and not built.same_collection(self._built):
            logger.info("collection %s now answers as %s", built.collection, self._name)
            with self._bm25_lock:
                self._bm25 = None  # local BM25 reads the collection that answers now
        client.load_collection(self._name)
        # During a rebuild the collection that answers may have an older layout: ask only for what it has.
        fields = {f["name"] for f in described["fields"]}
        self._output = [name for name in _OUTPUT if name in fields]
        self._has_headings = "heading_sparse" in fields
        self._index_type = _vector_index(client, self._name)
        self._fields = fields
        self._built = built
        self._loaded_by = client

    def _load_bm25(self, client: Any) -> None:
        """With local BM25, read the collection that answers (loaded) into its indexes, once (again after the
        alias moves). At the first search or ``warm``, so a process that only indexes never holds them."""
        if not self._local_bm25 or self._bm25 is not None:
            return
        with self._bm25_lock:
            if self._bm25 is not None:
                return
            started = time.perf_counter()
            texts: list[str] = [f for f in ("lexical", "headings") if f in self._fields]
            indexes = {field: LocalBM25() for field in texts}
            for batch in _batches(client, self._name, ["id", "source_id", "page_key", "ordinal", *texts]):
                for field, index in indexes.items():
                    index.put(_bm25_row(r, field) for r in batch)
            self._bm25 = indexes
            count = len(indexes["lexical"]) if "lexical" in indexes else 0
            logger.info("local BM25 over %d chunks ready in %.2fs", count, time.perf_counter() - started)

    async def flush(self) -> None:
        await self._call("flush", lambda client: client.flush(self._write))

    async def count(self) -> int:
        """Rows in the collection being written (the one that answers, unless a rebuild is under way)."""
        return await self._count(self._write)

    async def _count(self, name: str) -> int:
        return await self._call("count", lambda client: _rows(client, name))

    async def close(self) -> None:
        def run() -> None:
            with self._idle:  # the calls in flight finish first (each is bounded by milvus.timeout_s)
                self._idle.wait_for(lambda: self._busy == 0, timeout=self._settings.timeout_s)
            with self._lock:
                for client in [self._client, *self._retired]:
                    _drop(client)
                self._client = None
                self._retired = []

        await asyncio.to_thread(run)  # the lock may be held by a slow connect: never wait for it on the loop


def _hit(row: dict[str, Any], query: list[float], similarity: float | None = None) -> Hit:
    """A result row as a Hit; ``similarity`` is the dense cosine when the search already gave it."""
    entity = row["entity"]
    if similarity is None:
        similarity = sum(a * b for a, b in zip(entity["vector"], query, strict=True))
    return Hit(
        chunk_id=row["id"],
        page_id=entity["page_id"],
        url=entity["url"],
        title=entity["title"],
        heading=entity["heading"],
        text=entity["text"],
        score=float(row["distance"]),
        similarity=float(similarity),
        kind=str(entity.get("kind") or "section"),
        section=int(entity["section"]) if entity.get("section") is not None else None,
    )


def _recorded_model(described: dict[str, Any]) -> str:
    """The embedding model a described collection records; "" for one from before models were recorded."""
    return str((described.get("properties") or {}).get(MODEL_PROPERTY) or "")


def _built(described: dict[str, Any]) -> Built:
    """What ``describe_collection`` of the alias says answers (Milvus names the collection behind it)."""
    dims = {f["name"]: f.get("params", {}).get("dim") for f in described["fields"]}
    return Built(
        str(described.get("collection_name") or ""),
        _recorded_model(described),
        int(dims.get("vector") or 0),
        int(described.get("collection_id") or 0),
    )


def _configured_index(settings: MilvusSettings) -> str:
    """The vector index a new collection gets: ``auto`` starts exact (``fit_index`` moves it on as it grows)."""
    return "FLAT" if settings.index_type == "auto" else settings.index_type


def _vector_index(client: Any, collection: str) -> str:
    """The vector index type a collection was built with (describe_index takes the alias too)."""
    for name in client.list_indexes(collection):
        described = client.describe_index(collection, name)
        if described.get("field_name") == "vector":
            return str(described.get("index_type", ""))
    return ""


def _rows(client: Any, collection: str) -> int:
    return int(client.query(collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _batches(
    client: Any, collection: str, fields: list[str], expr: str = "", batch_size: int = 4096
) -> Iterator[list[dict[str, Any]]]:
    """Every row of ``collection`` matching ``expr``, a batch at a time, past Milvus' query window."""
    iterator = client.query_iterator(collection, batch_size=batch_size, filter=expr, output_fields=fields)
    try:
        while batch := iterator.next():
            yield batch
    finally:
        iterator.close()


def _bm25_row(row: dict[str, Any], field: str) -> Row:
    return Row(str(row["id"]), str(row["source_id"]), str(row["page_key"]), int(row["ordinal"]), str(row[field] or ""))


def scope_filter(scope: SearchScope) -> str:
    """``scope``'s rule (``SearchScope.admits``) as a Milvus filter; "" when it admits everything."""
    docs = [source for source in scope.sources if source != COMMUNITY]
    communities_in = not scope.sources or COMMUNITY in scope.sources
    if scope.communities is None:
        community = f"(source_id == {literal(COMMUNITY)} or source_id like {literal(PREFIX + '%')})"
        community = community if communities_in else ""
    else:
        community = f"source_id in {literal_list(scope.communities)}" if communities_in and scope.communities else ""
    if not scope.sources:
        if scope.communities is None:
            return ""
        not_community = f"(source_id != {literal(COMMUNITY)} and not (source_id like {literal(PREFIX + '%')}))"
        return f"{not_community} or {community}" if community else not_community
    parts = [part for part in (f"source_id in {literal_list(docs)}" if docs else "", community) if part]
    return " or ".join(parts) if parts else 'source_id == ""'


def literal_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


def _drop(client: Any) -> None:
    """Close a client, if any; the caller forgets it."""
    if client is not None:
        try:
            client.close()
        except Exception:  # closing a broken client must not mask the original error
            logger.debug("milvus close failed", exc_info=True)
    return None
