"""The one mem0 `AsyncMemory`, assembled from our parts, and the handle that keeps it.

mem0 has no public registry for stores, embedders or LLMs, and its config models accept only the
providers it knows. This module is the one place that teaches mem0 our names, and it builds the
config with `model_construct` so mem0's provider lists are not consulted. After construction the
engine gets our embedder (built and dimension-checked first), and our history store in place of
mem0's SQLite file (which fails under concurrent writers, mem0#7196, and cannot be shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mem0 import AsyncMemory
from mem0.configs.base import MemoryConfig
from mem0.embeddings.base import EmbeddingBase
from mem0.embeddings.configs import EmbedderConfig
from mem0.exceptions import LLMError, VectorStoreError
from mem0.llms.configs import LlmConfig
from mem0.utils.factory import EmbedderFactory, LlmFactory, VectorStoreFactory
from mem0.vector_stores.configs import VectorStoreConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.embeddings.failures import is_provider_failure
from services.embeddings.micro_batch import MicroBatcher
from services.embeddings.primed import Key, PrimedVectors
from services.embeddings.providers import EMBEDDER_CLASSES, check_dimensions
from services.library_errors import is_error_of
from services.llm import LLMGateway
from stores.vector_hits import StoreUnavailable

log = logging.getLogger(__name__)

VECTOR_STORE_CLASSES = {
    "maas_embedded": "stores.embedded_vectors.EmbeddedVectorStore",
    "azure_documentdb": "stores.documentdb_vectors.AzureDocumentDBVectorStore",
    "maas_mongodb": "stores.atlas_vectors.AtlasVectorStore",
}
_PLACEHOLDER = "maas_placeholder"


LLM_DOWN = "The LLM"
# mem0 embedder providers that run in this process, and their GenAI provider name; the others
# call an API through a client OpenLIT instruments.
IN_PROCESS_EMBEDDERS = {
    "maas_local": "local",
    "huggingface": "huggingface",
    "fastembed": "fastembed",
}
_tracer = trace.get_tracer("maas.embeddings")
# Most texts one priming embed_batch call carries (a remote API caps texts per request).
PRIME_CHUNK = 128
# A priming is cut into parallel calls, one per core, of at least this many texts each: fewer
# texts per encode cost more CPU per text than a second core saves.
PRIME_MIN_PART = 16


class EmbeddingUnavailable(Exception):
    """The embedding provider failed to embed (unreachable, timed out, 5xx, refused our key or
    throttling us); see services/embeddings/failures.py."""


class DependencyDown(Exception):
    """The engine could not be built because a dependency is down."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is unavailable")
        self.what = what


def dependency_down(exc: BaseException) -> str | None:
    """Which dependency an exception says is down, or None when it is not that kind."""
    if isinstance(exc, StoreUnavailable | VectorStoreError) or is_error_of(
        exc, "pymongo.errors", "ConnectionFailure", "ExecutionTimeout"
    ):
        return "The vector store"
    if isinstance(exc, EmbeddingUnavailable):
        return "The embedding provider"
    if isinstance(exc, LLMError):
        return LLM_DOWN
    return None


class GuardedEmbedder(EmbeddingBase):
    """A failure of the provider becomes EmbeddingUnavailable, whatever its client raised; any
    other error (input no model takes, a bug) propagates as it is, so it is not blamed on the
    provider. Embedders that run in-process (no instrumented client) get a GenAI span here."""

    def __init__(self, inner: EmbeddingBase, provider: str) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self._span_provider = IN_PROCESS_EMBEDDERS.get(provider)
        self.primed = PrimedVectors()
        self.cores = os.cpu_count() or 1
        # Concurrent embeds (mem0's, one text each) merged into batched calls; as many calls
        # at once as cores, so an in-process encoder keeps them all busy.
        self.batcher = (
            MicroBatcher(
                self.inner.embed,
                self.inner.embed_batch,
                max_running=self.cores,
                any_action=getattr(inner, "same_for_every_action", False),
            )
            if self.batches_natively
            else None
        )

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        if isinstance(text, str) and isinstance(memory_action, str):
            vector = self.primed.get(memory_action, text)
            if vector is not None:
                return vector
        with self._guard():
            if self.batcher is not None and isinstance(text, str):
                return self.batcher.embed_many([text], memory_action)[0]
            return self.inner.embed(text, memory_action)

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        with self._guard():
            if self.batcher is not None:
                return self.batcher.embed_many(texts, memory_action)
            return self.inner.embed_batch(texts, memory_action)

    def _embed_now(self, texts: list[str], memory_action: str) -> list[list[float]]:
        """One embed_batch call of the provider for these texts, not merged with others."""
        with self._guard():
            return self.inner.embed_batch(texts, memory_action)

    @property
    def batches_natively(self) -> bool:
        """Whether the provider embeds many texts in one call (mem0's default embed_batch
        embeds them one at a time, which priming could not make cheaper)."""
        return type(self.inner).embed_batch is not EmbeddingBase.embed_batch

    @contextlib.asynccontextmanager
    async def priming(self, wanted: Iterable[Key]) -> AsyncIterator[int]:
        """Within the block, embed() answers these (memory action, text) pairs from vectors
        embedded up front, one embed_batch call per action; yields how many were primed.

        Best effort: when the provider cannot batch, there is nothing to share, or the batch
        call fails (a provider failure, a text no model takes), nothing is primed and each
        text is embedded alone as before, so a failure stays with the items it belongs to."""
        by_action: dict[str, list[str]] = {}
        for action, text in dict.fromkeys(wanted):
            by_action.setdefault(action, []).append(text)
        held: list[Key] = []
        try:
            if self.batches_natively:
                for action, texts in by_action.items():
                    if len(texts) > 1:
                        await self._prime(action, texts, held)
            yield len(held)
        finally:
            self.primed.release(held)

    async def _prime(self, action: str, texts: list[str], held: list[Key]) -> None:
        """Prime texts in parallel chunks (one per core); each chunk's keys join `held` the
        moment they are held, so the caller releases them even when cancelled halfway."""
        parts = max(1, min(self.cores, len(texts) // PRIME_MIN_PART))
        size = -(-len(texts) // parts)
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
        await asyncio.gather(*(self._prime_chunk(action, chunk, held) for chunk in chunks))

    async def _prime_chunk(self, action: str, chunk: list[str], held: list[Key]) -> None:
        for start in range(0, len(chunk), PRIME_CHUNK):
            part = chunk[start : start + PRIME_CHUNK]
            keys = [(action, text) for text in part]
            try:
                vectors = await asyncio.to_thread(self._embed_now, part, action)
                self.primed.hold(keys, vectors)  # checks the count before it keeps any
            except EmbeddingUnavailable:
                log.info("priming %d texts: the embedding provider failed", len(part))
                return  # each text will meet the provider's state on its own
            except Exception as exc:
                log.info("priming %d texts failed, embedding them one by one: %r", len(part), exc)
                continue
            held += keys

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        with self._span():
            try:
                yield
            except Exception as exc:
                if not is_provider_failure(exc):
                    raise
                raise EmbeddingUnavailable(f"embedding failed: {type(exc).__name__}") from exc

    def _span(self) -> contextlib.AbstractContextManager[Any]:
        if self._span_provider is None:
            return contextlib.nullcontext()
        model = str(self.config.model)
        return _tracer.start_as_current_span(
            f"embeddings {model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "embeddings",
                "gen_ai.provider.name": self._span_provider,
                "gen_ai.request.model": model,
            },
        )


class _Placeholder(EmbeddingBase):
    """Stands where mem0 builds its own embedder; replaced right after construction."""

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        raise RuntimeError("placeholder embedder used")


@dataclass(frozen=True)
class EngineSpec:
    """Everything the engine is made of. `vector_config(dims)` gives the store's config."""

    vector_provider: str
    vector_config: Callable[[int], Any]
    embedder_provider: str
    embedder_config: dict[str, Any]
    embedding_dims: int | None
    history: Callable[[], Any]
    llm: LLMGateway
    loop: asyncio.AbstractEventLoop


def register_plugins() -> None:
    """Teach mem0's factories our providers (idempotent)."""
    VectorStoreFactory.provider_to_class.update(VECTOR_STORE_CLASSES)
    EmbedderFactory.provider_to_class.update(EMBEDDER_CLASSES)
    EmbedderFactory.provider_to_class[_PLACEHOLDER] = f"{__name__}._Placeholder"
    LlmFactory.register_provider(
        "maas", "services.mem0_llm.GatewayLLM", config_class=_gateway_config_class()
    )


def _gateway_config_class() -> type:
    from services.mem0_llm import GatewayLlmConfig

    return GatewayLlmConfig


def build_memory(spec: EngineSpec) -> AsyncMemory:
    """Builds the engine; blocking (connects, loads models): run it in a thread."""
    register_plugins()
    try:
        embedder = EmbedderFactory.create(spec.embedder_provider, spec.embedder_config, None)
        dims = check_dimensions(
            GuardedEmbedder(embedder, spec.embedder_provider), spec.embedding_dims
        )
    except EmbeddingUnavailable as exc:
        raise DependencyDown("The embedding provider") from exc
    config = MemoryConfig.model_construct(
        vector_store=VectorStoreConfig.model_construct(
            provider=spec.vector_provider, config=spec.vector_config(dims)
        ),
        llm=LlmConfig.model_construct(
            provider="maas",
            config={"gateway": spec.llm, "loop": spec.loop, "model": spec.llm.config.model},
        ),
        embedder=EmbedderConfig.model_construct(provider=_PLACEHOLDER, config={}),
        history_db_path=":memory:",
        version="v1.1",
        custom_instructions=None,
        reranker=None,
    )
    try:
        memory = AsyncMemory(config)
    except Exception as exc:
        if dependency_down(exc):
            raise DependencyDown("The vector store") from exc
        raise
    memory.embedding_model = GuardedEmbedder(embedder, spec.embedder_provider)
    memory.db.close()
    memory.db = spec.history()
    return memory


# ---- what the service does beside mem0 -----------------------------------------------------------
# The service's updates and deletes are conditional writes the store decides
# (stores/memory_changes.py), not mem0's update()/delete(), which read the memory and then write
# it (a concurrent delete slips in between). These keep what mem0 would have done around them;
# they follow mem0 2.2's own _update_memory/_delete_memory (mem0ai is pinned below 2.3).


def text_fields(text: str) -> dict[str, Any]:
    """The payload fields mem0 derives from a memory's text."""
    from mem0.utils.lemmatization import lemmatize_for_bm25

    return {
        "data": text,
        "hash": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - mem0's dedup key, not a secret
        "text_lemmatized": lemmatize_for_bm25(text),
    }


def _scope(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: payload[key] for key in ("user_id", "agent_id", "run_id") if payload.get(key)}


async def forget_entities(engine: AsyncMemory, memory_id: str, payload: dict[str, Any]) -> None:
    """Unlink a deleted memory from mem0's entity store (a no-op while it has none)."""
    await engine._remove_memory_from_entity_store(memory_id, _scope(payload))


async def relink_entities(engine: AsyncMemory, memory_id: str, payload: dict[str, Any]) -> None:
    """Link a memory whose text changed to the entities of its new text instead of the old."""
    await engine._remove_memory_from_entity_store(memory_id, _scope(payload))
    await engine._link_entities_for_memory(memory_id, payload.get("data", ""), _scope(payload))


class EngineHandle:
    """Builds the engine at start-up, or on first use when a dependency was down at start-up
    (then at most once per `retry_seconds`), so LTM recovers without a restart."""

    def __init__(self, build: Callable[[], AsyncMemory], retry_seconds: float = 5.0) -> None:
        self._build = build
        self._retry_seconds = retry_seconds
        self._engine: AsyncMemory | None = None
        self._failed: tuple[float, DependencyDown] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Build now; a dependency being down is logged, anything else (bad config) raised."""
        try:
            await self.get()
        except DependencyDown as exc:
            log.error("Long-term memory is unavailable until %s", str(exc).lower())

    async def get(self) -> AsyncMemory:
        if self._engine is not None:
            return self._engine
        async with self._lock:
            if self._engine is not None:
                return self._engine
            if self._failed and time.monotonic() - self._failed[0] < self._retry_seconds:
                raise self._failed[1]
            try:
                self._engine = await asyncio.to_thread(self._build)
            except DependencyDown as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None
            return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            for store in (self._engine.vector_store, self._engine._entity_store):
                if store is not None and hasattr(store, "close"):
                    store.close()
            self._engine = None
