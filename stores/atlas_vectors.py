"""mem0's own MongoDB Atlas store, made fit for our filters, paging and outages.

mem0's store creates the Atlas vector search index and writes documents as we need them
({_id, embedding, payload}). What it cannot do: its search and list turn each filter into a
plain equality (so `{"expires_at": {"gt": now}}` would match nothing), its search returns an
empty list when the server is down, and it has no paging. Those parts are replaced here; the
filter is applied after $vectorSearch on an over-fetched candidate set, as mem0 itself does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mem0.vector_stores.mongodb import MongoDB
from pydantic import BaseModel, ConfigDict, Field

from stores.documentdb_commands import PAGE_SORT, page_query
from stores.memory_filters import parse, to_mongo
from stores.mongo_changes import MongoConditionalWrites
from stores.mongo_errors import unavailable_on_outage
from stores.traced import VECTOR_STORE_CALLS, traced
from stores.vector_hits import StoreUnavailable, VectorHit

OVERFETCH = 10
MAX_CANDIDATES = 10_000


class AtlasVectorConfig(BaseModel):
    """What mem0 passes to the store's constructor."""

    model_config = ConfigDict(extra="forbid")

    collection_name: str = "memories"
    embedding_model_dims: int
    mongo_uri: str = Field(repr=False)
    db_name: str = "maas"


@traced("vector_store", "mongodb", VECTOR_STORE_CALLS)
class AtlasVectorStore(MongoConditionalWrites, MongoDB):
    """mem0's MongoDB store with our filter language, paging, StoreUnavailable and the
    conditional writes (stores/mongo_changes.py)."""

    def __init__(
        self, collection_name: str, embedding_model_dims: int, mongo_uri: str, db_name: str
    ) -> None:
        with unavailable_on_outage("connecting to MongoDB"):
            super().__init__(db_name, collection_name, embedding_model_dims, mongo_uri)
        if self.collection is None:  # mem0 logs and returns None when creation fails
            raise StoreUnavailable(f"could not create collection {collection_name!r}")
        with unavailable_on_outage("creating the paging index"):
            self.collection.create_index(
                [("payload.tenant", 1), ("payload.created_at", -1), ("_id", -1)]
            )

    def keyword_search(
        self, query: str, top_k: int = 5, filters: dict | None = None
    ) -> list[Any] | None:
        """None: no keyword search here (the service then refuses KEYWORD and ranks HYBRID by
        meaning alone). mem0's runs Atlas `$search.text` and filters after it (another user's
        matches would crowd this user's out) and rejects our filters; doing it right needs an
        Atlas Search index and our filter language as `compound` filters, which nothing here can
        run or test."""
        return None

    def search(
        self,
        query: str,
        vectors: Sequence[float],
        top_k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[VectorHit]:
        limit = max(top_k * OVERFETCH, 100)
        pipeline: list[dict[str, Any]] = [
            {
                "$vectorSearch": {
                    "index": self.index_name,
                    "path": "embedding",
                    "queryVector": [float(x) for x in vectors],
                    "limit": limit,
                    "numCandidates": min(limit * 10, MAX_CANDIDATES),
                }
            },
            {"$set": {"score": {"$meta": "vectorSearchScore"}}},
            {"$match": to_mongo(parse(filters))},
            {"$limit": top_k},
            {"$project": {"payload": 1, "score": 1}},
        ]
        with unavailable_on_outage("searching MongoDB"):
            documents = list(self.collection.aggregate(pipeline))
        return [_hit(doc, doc.get("score")) for doc in documents]

    def list(
        self, filters: Mapping[str, Any] | None = None, top_k: int | None = 100
    ) -> list[list[VectorHit]]:
        return [self.page(filters, top_k or 0)]

    def page(
        self, filters: Mapping[str, Any] | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[VectorHit]:
        query = page_query(to_mongo(parse(filters)), after)
        with unavailable_on_outage("listing MongoDB"):
            documents = list(
                self.collection.find(query, {"payload": 1}, sort=PAGE_SORT, limit=limit)
            )
        return [_hit(doc) for doc in documents]

    def delete_many(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        with unavailable_on_outage("deleting from MongoDB"):
            return int(self.collection.delete_many({"_id": {"$in": list(ids)}}).deleted_count)

    def close(self) -> None:
        self.client.close()


def _hit(document: Mapping[str, Any], score: float | None = None) -> VectorHit:
    return VectorHit(str(document["_id"]), dict(document.get("payload") or {}), score)
