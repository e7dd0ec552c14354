"""mem0 vector store on Azure DocumentDB and DocumentDB Local (the open-source engine).

mem0 builds it as `AzureDocumentDBVectorStore(**AzureDocumentDBConfig(...).model_dump())`, once per
collection it needs ("memories", "memories_entities", ...). One document per memory:
{"_id": <memory id>, "embedding": [floats], "payload": {...}}, as mem0's own mongodb store keeps it.

Errors: StoreUnavailable (chained) when the server cannot be reached or the vector index is still
building after the retries; ValueError for a bad filter or vector; any other pymongo error as is.
"""

from __future__ import annotations

import builtins
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mem0.vector_stores.base import VectorStoreBase
from pymongo.errors import BulkWriteError, OperationFailure

from stores.documentdb_commands import (
    FILTER_PATHS,
    PAGE_SORT,
    VECTOR_AND_PAYLOAD,
    metadata_filter_paths,
    page_query,
)
from stores.documentdb_config import AzureDocumentDBConfig
from stores.documentdb_index import (
    ensure_collection,
    ensure_filter_indexes,
    ensure_vector_index,
    is_index_not_ready,
    wait_until_searchable,
)
from stores.documentdb_keywords import keyword_documents
from stores.documentdb_search import rank_by_cosine, search_whole_filter
from stores.memory_filters import parse, to_mongo
from stores.mongo_changes import MongoConditionalWrites
from stores.mongo_errors import connect, redact_uri, unavailable_on_outage
from stores.traced import VECTOR_STORE_CALLS, traced
from stores.vector_hits import StoreUnavailable, VectorHit

logger = logging.getLogger(__name__)

Hits = list[VectorHit]
Documents = list[dict[str, Any]]
Names = list[str]
_PAYLOAD_ONLY = {"payload": 1}
KEYWORD_FETCH = 200  # memories read per query word; a word matching more is counted, not read


@traced("vector_store", "mongodb", (*VECTOR_STORE_CALLS, "keyword_search", "similarities"))
class AzureDocumentDBVectorStore(MongoConditionalWrites, VectorStoreBase):
    """mem0's VectorStoreBase on DocumentDB, plus `page`, `delete_many` and the conditional
    writes (stores/mongo_changes.py) for the service."""

    def __init__(self, **options: Any) -> None:
        self.config = AzureDocumentDBConfig(**options)
        self.collection_name = self.config.collection_name
        self.embedding_model_dims = self.config.embedding_model_dims
        self._owns_client = self.config.client is None
        if self._owns_client:
            logger.info("connecting to DocumentDB at %s", redact_uri(self.config.mongo_uri))
            self.client: Any = connect(
                self.config.mongo_uri, self.config.server_selection_timeout_ms
            )
        else:
            self.client = self.config.client
        self.db = self.client[self.config.db_name]
        self.collection = self.db[self.collection_name]
        self.index_spec = self.config.vector_index_spec()
        self.metadata_paths = metadata_filter_paths(self.config.indexed_metadata_keys)
        self.has_text_index = False
        try:
            self.create_col(self.collection_name, self.embedding_model_dims, "cosine")
        except BaseException:
            self.close()  # a client we opened must not outlive a failed start
            raise

    # ---- collection lifecycle ------------------------------------------------------------------

    def create_col(
        self, name: str | None = None, vector_size: int | None = None, distance: Any = None
    ) -> None:
        """Create the collection, its indexes and the vector index; harmless when they exist.

        The store is bound to its configured collection and dimensions; similarity is COS.
        """
        if (name or self.collection_name) != self.collection_name or (
            vector_size or self.embedding_model_dims
        ) != self.embedding_model_dims:
            raise ValueError("this store is bound to its configured collection and dimensions")
        with unavailable_on_outage(f"preparing collection {self.collection_name!r}"):
            ensure_collection(self.db, self.collection_name)
            self.has_text_index = ensure_filter_indexes(
                self.db, self.collection_name, self.metadata_paths
            )
            self.index_spec = ensure_vector_index(
                self.db, self.collection_name, self.config.vector_index_spec()
            )
            wait_until_searchable(
                self.db,
                self.collection_name,
                self.index_spec,
                exact=self.config.exact_search,
                timeout=self.config.index_wait_seconds,
                poll_seconds=min(1.0, self.config.retry_delay_seconds * 5),
            )

    def list_cols(self) -> Names:
        """Names of the collections in the database."""
        with unavailable_on_outage("listing collections"):
            return list(self.db.list_collection_names())

    def delete_col(self) -> None:
        """Drop the collection with its documents and indexes."""
        with unavailable_on_outage(f"dropping {self.collection_name!r}"):
            self.collection.drop()

    def col_info(self) -> dict[str, Any]:
        """Name, document count and data size of the collection."""
        with unavailable_on_outage(f"reading stats of {self.collection_name!r}"):
            stats = self.db.command({"collStats": self.collection_name})
        return {
            "name": self.collection_name,
            "count": stats.get("count"),
            "size": stats.get("size"),
        }

    def reset(self) -> None:
        """Drop the collection and create it again, empty."""
        self.delete_col()
        self.create_col()

    def close(self) -> None:
        """Close the client if this store opened it; a shared client stays open."""
        if self._owns_client:
            self.client.close()

    # ---- writes --------------------------------------------------------------------------------

    def insert(
        self,
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        """Insert one document per vector; failures are logged with their ids and raised."""
        count = len(vectors)
        payloads = payloads if payloads is not None else [None] * count
        ids = ids if ids is not None else [str(uuid.uuid4()) for _ in range(count)]
        if len(payloads) != count or len(ids) != count:
            raise ValueError("vectors, payloads and ids must have the same length")
        documents = [
            {
                "_id": str(memory_id),
                "embedding": self._vector(vector),
                "payload": dict(payload or {}),
            }
            for vector, payload, memory_id in zip(vectors, payloads, ids, strict=True)
        ]
        if not documents:
            return
        try:
            with unavailable_on_outage(f"inserting into {self.collection_name!r}"):
                self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            failed = [
                (documents[error["index"]]["_id"], error.get("errmsg"))
                for error in exc.details.get("writeErrors", [])
            ]
            logger.error(
                "%d of %d inserts into %r failed: %s",
                len(failed),
                count,
                self.collection_name,
                failed,
            )
            raise

    def update(
        self,
        vector_id: str,
        vector: Sequence[float] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace the vector and/or the whole payload of one memory."""
        fields: dict[str, Any] = {}
        if vector is not None:
            fields["embedding"] = self._vector(vector)
        if payload is not None:
            fields["payload"] = dict(payload)
        if not fields:
            return
        with unavailable_on_outage(f"updating {vector_id!r}"):
            result = self.collection.update_one({"_id": vector_id}, {"$set": fields})
        if result.matched_count == 0:
            logger.warning("update of %r in %r matched nothing", vector_id, self.collection_name)

    def delete(self, vector_id: str) -> None:
        """Delete one memory (nothing happens if it does not exist)."""
        with unavailable_on_outage(f"deleting {vector_id!r}"):
            self.collection.delete_one({"_id": vector_id})

    def delete_many(self, ids: Sequence[str]) -> int:
        """Delete the memories with these ids; returns how many were deleted."""
        if not ids:
            return 0
        with unavailable_on_outage(f"deleting {len(ids)} memories"):
            return int(self.collection.delete_many({"_id": {"$in": list(ids)}}).deleted_count)

    # ---- reads ---------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        vectors: Sequence[float],
        top_k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> Hits:
        """The top_k memories closest to `vectors` among those matching `filters`, best first.

        Conditions on indexed paths (the scoping fields and the declared metadata keys) go into
        the cosmosSearch pre-filter (exact search over the filtered set by default); the rest
        are applied so that the answer still holds the best matches of the whole filter
        (stores/documentdb_search.py).
        """
        if top_k < 1:
            return []
        documents = search_whole_filter(
            self._vector(vectors),
            top_k,
            parse(filters),
            spec=self.index_spec,
            exact=self.config.exact_search,
            indexed_paths=(*FILTER_PATHS, *self.metadata_paths),
            rank_max=self.config.exact_rank_max,
            aggregate=self._aggregate_retrying,
            find=self._find,
        )
        return [_hit(document, score=float(document["score"])) for document in documents]

    def keyword_search(
        self, query: str, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> Hits | None:
        """The memories within `filters` whose text holds any word of the query, best BM25
        first, as on the embedded store (stores/documentdb_keywords.py). None when this
        collection has no text index of ours (keyword search off; logged at start-up)."""
        if not self.has_text_index:
            return None
        documents = keyword_documents(
            query,
            top_k,
            parse(filters),
            fetch=max(top_k, KEYWORD_FETCH),
            aggregate=self._aggregate_retrying,
        )
        return [_hit(document, score=float(document["score"])) for document in documents]

    def similarities(self, vectors: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity (clamped at 0, as search scores it) of the query to these
        memories: the semantic part of keyword hits that the semantic search did not rank."""
        if not ids:
            return {}
        documents = self._find({"_id": {"$in": list(ids)}}, VECTOR_AND_PAYLOAD, 0)
        ranked = rank_by_cosine(self._vector(vectors), documents)
        return {str(d["_id"]): max(0.0, float(d["score"])) for d in ranked}

    def get(self, vector_id: str) -> VectorHit | None:
        """One memory by id, or None."""
        with unavailable_on_outage(f"reading {vector_id!r}"):
            document = self.collection.find_one({"_id": vector_id}, _PAYLOAD_ONLY)
        return _hit(document) if document is not None else None

    def list(
        self, filters: Mapping[str, Any] | None = None, top_k: int | None = 100
    ) -> builtins.list[Hits]:
        """Up to top_k memories matching `filters`, newest first, wrapped in one list (as mem0's
        own stores return them)."""
        query = to_mongo(parse(filters))
        with unavailable_on_outage(f"listing {self.collection_name!r}"):
            documents = list(
                self.collection.find(query, _PAYLOAD_ONLY, sort=PAGE_SORT, limit=top_k or 0)
            )
        return [[_hit(document) for document in documents]]

    def page(
        self,
        filters: Mapping[str, Any] | None,
        limit: int,
        after: tuple[str, str] | None = None,
    ) -> Hits:
        """Memories matching `filters` ordered by (created_at desc, id desc), strictly after the
        cursor position `after` = (created_at, id) when given."""
        if limit < 1:
            return []
        query = page_query(to_mongo(parse(filters)), after)
        with unavailable_on_outage(f"paging {self.collection_name!r}"):
            documents = list(
                self.collection.find(query, _PAYLOAD_ONLY, sort=PAGE_SORT, limit=limit)
            )
        return [_hit(document) for document in documents]

    # ---- helpers -------------------------------------------------------------------------------

    def _vector(self, vector: Sequence[float]) -> list[float]:
        # A vector of another length is silently left out of the vector index: refuse it here.
        values = [float(x) for x in vector]  # also turns numpy floats into BSON doubles
        if len(values) != self.embedding_model_dims:
            raise ValueError(
                f"vector has {len(values)} dimensions, the store expects "
                f"{self.embedding_model_dims}"
            )
        return values

    def _find(
        self, query: Mapping[str, Any], projection: Mapping[str, Any], limit: int
    ) -> Documents:
        with unavailable_on_outage(f"reading {self.collection_name!r}"):
            return list(self.collection.find(query, projection, limit=limit))

    def _aggregate_retrying(self, pipeline: Documents) -> Documents:
        delay = self.config.retry_delay_seconds
        attempt = 1
        while True:
            try:
                with unavailable_on_outage(f"searching {self.collection_name!r}"):
                    return list(self.collection.aggregate(pipeline))
            except OperationFailure as exc:
                if not is_index_not_ready(exc):
                    raise
                if attempt >= self.config.search_retry_attempts:
                    raise StoreUnavailable(
                        f"the vector index of {self.collection_name!r} is not ready "
                        f"(still building?) after {attempt} attempts"
                    ) from exc
            logger.info("vector index of %r not ready; retrying", self.collection_name)
            time.sleep(delay)
            delay *= 2
            attempt += 1


def _hit(document: Mapping[str, Any], score: float | None = None) -> VectorHit:
    return VectorHit(
        id=str(document["_id"]), payload=dict(document.get("payload") or {}), score=score
    )


__all__ = ["AzureDocumentDBConfig", "AzureDocumentDBVectorStore"]
