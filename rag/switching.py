"""Questions embedded by the model that built the collection answering them.

A change of ``embedding.model`` is indexed into a new collection beside the old one (``rag.store``), and the old one
answers until the alias moves. Its vectors only mean something next to questions embedded by the model that built
them: a bot restarted with the new model, or one whose rebuild is still running, embeds questions with the model
recorded on the collection that answers, loaded once and off the event loop, from the same embedding settings. When
the configured model's collection answers (the alias moved here, or in another process), questions go back to the
configured embedder and the other model is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Protocol

from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.errors import IndexMissing, StoreUnavailable
from rag.settings import EmbeddingSettings
from rag.store import Built

logger = logging.getLogger(__name__)


class Model(Embedder, Protocol):
    """An embedder this class loads, and so closes."""

    def close(self) -> None: ...


class Load(Protocol):
    def __call__(self, settings: EmbeddingSettings, /) -> Model: ...


class AnsweringStore(Protocol):
    async def answering(self) -> Built: ...


class AnsweringEmbedder:
    """``embed_query`` with the model of the collection that answers: the configured embedder (owned by the caller),
    or the model the collection records, loaded at the first question that needs it and closed once it no longer
    answers. A recorded model that cannot be loaded (its folder deleted) is warned about once; the configured model
    embeds the questions meanwhile, with degraded answers."""

    def __init__(
        self,
        configured: Embedder,
        settings: EmbeddingSettings,
        store: AnsweringStore,
        *,
        cache_dir: Path | None = None,
        load: Load | None = None,
    ) -> None:
        self._configured = configured
        self._settings = settings
        self._store = store
        self._cache_dir = cache_dir
        self._load: Load = load or self._sentence_transformer
        self._other: Model | None = None
        self._other_model = ""
        self._loading = asyncio.Lock()
        self._unloadable: set[str] = set()
        self._unanswerable: set[Built] = set()
        self._busy: dict[Model, int] = {}  # questions being embedded, per loaded model
        self._retired: list[Model] = []  # no longer answering; closed once no question uses them

    def _sentence_transformer(self, settings: EmbeddingSettings) -> Model:
        return SentenceTransformerEmbedder(settings, self._cache_dir)

    async def embed_query(self, text: str) -> list[float]:
        embedder = await self.current()
        other = self._other
        if other is None or embedder is not other:
            return await embedder.embed_query(text)
        self._busy[other] = self._busy.get(other, 0) + 1
        try:
            return await other.embed_query(text)
        finally:
            self._busy[other] -= 1
            if not self._busy[other]:
                del self._busy[other]
            self._release()

    async def current(self) -> Embedder:
        """The embedder for the collection that answers now."""
        built = await self._store.answering()
        chosen: Embedder = self._configured
        if built.model and built.model != self._settings.model:
            chosen = await self._built_by(built.model) or self._configured
        else:
            self._retire()
        if chosen.dimension and built.dimension and chosen.dimension != built.dimension:
            # Searching with the wrong dimension fails in Milvus (and drops the connection): say why instead.
            message = (
                f"the collection answering now ({built.collection}) holds {built.dimension}-d vectors and the "
                f"embedding model at hand makes {chosen.dimension}-d ones: questions cannot be answered until the "
                "re-index with the configured model finishes"
            )
            if built not in self._unanswerable:
                self._unanswerable.add(built)
                logger.warning("%s", message)
            raise StoreUnavailable(message)
        return chosen

    async def warm(self) -> None:
        """Load the model the collection that answers needs now, rather than at the first question."""
        with contextlib.suppress(IndexMissing, StoreUnavailable):
            await self.current()

    async def _built_by(self, model: str) -> Model | None:
        """The embedder of ``model``, loaded once; None when it cannot be loaded (warned once)."""
        async with self._loading:  # questions arriving while it loads wait for the one load
            if self._other is not None and self._other_model == model:
                return self._other
            self._retire()
            if model in self._unloadable:
                return None
            try:
                other = await asyncio.to_thread(self._load, self._settings.model_copy(update={"model": model}))
            except Exception as exc:  # a deleted folder, a hub model no longer cached, a broken export
                self._unloadable.add(model)
                logger.warning(
                    "cannot load the embedding model %s, which built the collection that answers now (%s): questions "
                    "are embedded by the configured model %s instead, so answers are degraded until the re-index "
                    "with it finishes",
                    model,
                    exc,
                    self._settings.model,
                )
                return None
            self._other, self._other_model = other, model
            logger.info(
                "questions are embedded by %s, which built the collection that answers now, until the index built by "
                "%s replaces it",
                model,
                self._settings.model,
            )
            return other

    def _retire(self) -> None:
        """The other model no longer answers: release it once no question is using it."""
        if self._other is None:
            return
        logger.info("the collection built by %s no longer answers: that model is released", self._other_model)
        self._retired.append(self._other)
        self._other, self._other_model = None, ""
        self._release()

    def _release(self) -> None:
        for model in [m for m in self._retired if not self._busy.get(m)]:
            self._retired.remove(model)
            model.close()

    def close(self) -> None:
        """Close the other model, if one is loaded (the configured one is closed by whoever made it)."""
        self._retire()
        for model in self._retired:
            model.close()
        self._retired.clear()
