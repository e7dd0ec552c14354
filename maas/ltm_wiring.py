"""Long-term memory from settings: which vector store, history store, embedder and LLM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from maas.settings import Settings
from services.embeddings.providers import EmbeddingOptions, mem0_embedder_config
from services.llm import LLMGateway
from services.ltm import LongTermMemory, LtmOptions
from services.ltm_limits import LtmLimits
from services.mem0_engine import EngineHandle, EngineSpec, build_memory
from services.memory_spans import TracedMemory
from services.metrics import NO_METRICS, ServiceMetrics
from services.quotas import MemoryQuota
from stores.documentdb_config import AzureDocumentDBConfig
from stores.embedded_vectors import EmbeddedVectorConfig
from stores.event_bus import RedisEventBus
from stores.redis_keys import TenantKeys
from stores.store_health import MongoProbe, SQLiteProbe, StoreProbe


def build_ltm(
    settings: Settings,
    events: RedisEventBus,
    llm: LLMGateway,
    loop: asyncio.AbstractEventLoop,
    metrics: ServiceMetrics = NO_METRICS,
    *,
    clock: Callable[[], float] = time.time,
    mongo_client: Any = None,
    quota: MemoryQuota | None = None,
) -> tuple[LongTermMemory, EngineHandle]:
    """The LTM service and the handle of its engine (start it, close it).

    `mongo_client`: a pymongo client to share instead of connecting to MONGODB_URI (tests pass
    a stand-in); `clock` gives the epoch seconds TTLs are measured by; with `quota`, each
    tenant is held to its quota of memories."""
    embedder_provider, embedder_config = mem0_embedder_config(
        EmbeddingOptions(
            provider=settings.embedding_provider,
            api_key=_secret(settings.embedding_api_key),
            model=settings.embedding_model,
            base_url=settings.embedding_base_url,
            dims=settings.embedding_dims,
            azure_api_version=settings.embedding_api_version,
        )
    )
    spec = EngineSpec(
        vector_provider=_vector_provider(settings),
        vector_config=lambda dims: _vector_config(settings, dims, mongo_client),
        embedder_provider=embedder_provider,
        embedder_config=embedder_config,
        embedding_dims=settings.embedding_dims,
        history=lambda: _history_store(settings, mongo_client),
        llm=llm,
        loop=loop,
    )
    engine = EngineHandle(
        lambda: TracedMemory(
            build_memory(spec),
            store_name=settings.vector_store_provider,
            capture_content=settings.otel_capture_message_content,
        )
    )
    limits = LtmLimits(
        max_text_chars=settings.ltm_max_text_chars,
        max_metadata_bytes=settings.max_metadata_bytes,
        max_batch_size=settings.ltm_max_batch_size,
    )
    options = LtmOptions(
        limits=limits,
        default_ttl_seconds=settings.ltm_default_ttl_seconds,
        llm_configured=llm.configured,
        batch_concurrency=settings.ltm_batch_concurrency,
    )
    prefix = settings.redis_key_prefix
    ltm = LongTermMemory(
        engine,
        events,
        lambda tenant: TenantKeys.of(prefix, tenant).memory_events,
        options,
        clock=clock,
        metrics=metrics,
        quota=quota,
    )
    return ltm, engine


def vector_store_probe(settings: Settings) -> StoreProbe:
    """A cheap check that the configured vector store answers (for readiness)."""
    timeout = settings.readiness_timeout_seconds
    if settings.vector_store_provider == "embedded":
        return SQLiteProbe(_embedded_file(settings), timeout)
    return MongoProbe(_mongo_uri(settings), timeout)


def _vector_provider(settings: Settings) -> str:
    return {
        "embedded": "maas_embedded",
        "azure_documentdb": "azure_documentdb",
        "mongodb": "maas_mongodb",
    }[settings.vector_store_provider]


def _vector_config(settings: Settings, dims: int, client: Any = None) -> BaseModel:
    """The store's config object (mem0 reads its attributes and passes its fields on)."""
    name = settings.mongodb_collection_name
    if settings.vector_store_provider == "embedded":
        return EmbeddedVectorConfig(
            collection_name=name, embedding_model_dims=dims, path=str(_embedded_file(settings))
        )
    common = {
        "collection_name": name,
        "embedding_model_dims": dims,
        "db_name": settings.mongodb_db_name,
    }
    if settings.vector_store_provider == "azure_documentdb":
        connection = (
            {"client": client} if client is not None else {"mongo_uri": _mongo_uri(settings)}
        )
        return AzureDocumentDBConfig(
            **common,
            **connection,
            index_type=settings.vector_index_type,
            indexed_metadata_keys=tuple(settings.documentdb_indexed_metadata_keys),
        )
    # Imported here: it loads pymongo, which the embedded default never needs.
    from stores.atlas_vectors import AtlasVectorConfig

    return AtlasVectorConfig(**common, mongo_uri=_mongo_uri(settings))


def _history_store(settings: Settings, client: Any = None) -> Any:
    if settings.vector_store_provider == "embedded":
        from stores.sqlite_history import SQLiteHistoryStore

        return SQLiteHistoryStore(_embedded_file(settings))
    from stores.mongo_history import MongoHistoryStore

    return MongoHistoryStore(
        client if client is not None else _mongo_uri(settings),
        settings.mongodb_db_name,
        settings.mongodb_collection_name,
    )


def _embedded_file(settings: Settings) -> Any:
    return settings.data_dir / "ltm" / "memories.sqlite3"


def _mongo_uri(settings: Settings) -> str:
    uri = _secret(settings.mongodb_uri)
    if not uri:
        raise ValueError(
            f"VECTOR_STORE_PROVIDER={settings.vector_store_provider} needs MONGODB_URI"
        )
    return uri


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
