"""Settings of the DocumentDB vector store (mem0 passes them to it as keyword arguments)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stores.documentdb_commands import IndexType, VectorIndexSpec

METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a metadata key is one path part


class AzureDocumentDBConfig(BaseModel):
    """Settings of the DocumentDB vector store; index options default to Azure's defaults."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    collection_name: str = "memories"
    embedding_model_dims: int = Field(gt=0)
    mongo_uri: str = Field("", repr=False)  # carries the password: never in a repr or a log
    db_name: str = "maas"
    index_type: IndexType = "diskann"
    exact_search: bool = True  # exact k-NN over the pre-filtered set: a scoped search never misses
    index_wait_seconds: float = Field(60, ge=0)
    server_selection_timeout_ms: int = Field(5000, gt=0)
    search_retry_attempts: int = Field(5, ge=1)  # for "index not found" while a build runs
    retry_delay_seconds: float = Field(0.1, ge=0)  # first backoff delay; doubles each retry
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 40
    ivf_num_lists: int = 100
    ivf_n_probes: int = 10
    diskann_max_degree: int = 32
    diskann_l_build: int = 50
    diskann_l_search: int = 40
    # Metadata keys searched on: each gets its own index, so the engine pre-filters on it.
    indexed_metadata_keys: tuple[str, ...] = ()
    # Most matches of a filter the engine cannot pre-filter that are ranked by the store itself
    # (their vectors travel: 1,000 of 1,536 floats are ~12 MB, the most one search should move);
    # beyond it, or with 0, the search is widened up to the engine's k instead.
    exact_rank_max: int = Field(1000, ge=0, le=10_000)
    # An already-built pymongo.MongoClient to share (the app's, or a test's); None = connect.
    client: Any = Field(None, repr=False)

    @field_validator("client")
    @classmethod
    def _client_opens_databases(cls, client: Any) -> Any:
        if client is not None and not hasattr(client, "__getitem__"):
            raise ValueError("client must be a pymongo.MongoClient")
        return client

    @field_validator("indexed_metadata_keys")
    @classmethod
    def _keys_are_path_parts(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            if not METADATA_KEY.fullmatch(key):
                raise ValueError(f"metadata key {key!r}: 1-64 letters, digits, _ or -")
        return tuple(dict.fromkeys(keys))  # each once, in the order given

    @model_validator(mode="after")
    def _check(self) -> AzureDocumentDBConfig:
        if self.client is None and not self.mongo_uri:
            raise ValueError("mongo_uri is required unless a client is given")
        self.vector_index_spec()  # range checks of the index options
        return self

    def vector_index_spec(self) -> VectorIndexSpec:
        """The configured vector index (before any DiskANN -> HNSW fallback)."""
        return VectorIndexSpec(
            kind=self.index_type,
            dimensions=self.embedding_model_dims,
            m=self.hnsw_m,
            ef_construction=self.hnsw_ef_construction,
            ef_search=self.hnsw_ef_search,
            num_lists=self.ivf_num_lists,
            n_probes=self.ivf_n_probes,
            max_degree=self.diskann_max_degree,
            l_build=self.diskann_l_build,
            l_search=self.diskann_l_search,
        )

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> AzureDocumentDBConfig:
        # mem0 deep-copies the config for its entity store; the client is a connection pool to
        # share, not to copy (and cannot be copied). Every other field is immutable.
        return self.model_copy()
