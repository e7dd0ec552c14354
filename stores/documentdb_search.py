"""A filtered vector search on DocumentDB that returns the best matches of the whole filter.

The engine pre-filters a `$search` only on paths that have their own single-path index, and takes
at most k = 1,000 neighbours. A condition it cannot pre-filter (a metadata key not declared in
DOCUMENTDB_INDEXED_METADATA_KEYS, `contains`, `*`, NOT) can only be applied as a `$match` after
the search, to those k hits: a user with more than k memories closer to the query than the
matching one would get nothing. So:

1. One `$search` with every condition the engine can pre-filter and a `$match` of the rest. With
   exact search, top_k hits are the best top_k of the whole filter: the engine ranked every memory
   of the pre-filtered set, so no match closer than the last hit was left out.
2. Fewer: the ids matching the whole filter, by a plain find (ids only, at most rank_max + 1).
   Up to rank_max of them (1,000 by default), their vectors are read and ranked here by cosine
   similarity, the engine's COS score: exact. (A pre-filter `{_id: {$in: ids}}` would let the
   engine rank them, but it pre-filters only on paths of single-path RUM indexes
   (pg_documentdb: bson_aggregation_vector_search.c, AddPathStringToHashset), and its `_id` index
   is the table's btree primary key (create_builtin_id_index): `_id` is refused as a filter path.)
3. More matches than that: k is widened (doubling, up to the engine's cap) until top_k hits are
   found; past the cap the answer may miss farther matches, and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from stores.documentdb_commands import (
    ID_ONLY,
    MAX_K,
    VECTOR_AND_PAYLOAD,
    VECTOR_PATH,
    VectorIndexSpec,
    among_ids,
    search_k,
    search_pipeline,
    split_filter,
    wider_k,
)
from stores.memory_filters import Condition, to_mongo

logger = logging.getLogger(__name__)

Documents = list[dict[str, Any]]
Aggregate = Callable[[Documents], Documents]
Find = Callable[[Mapping[str, Any], Mapping[str, Any], int], Documents]


def search_whole_filter(
    vector: Sequence[float],
    top_k: int,
    condition: Condition,
    *,
    spec: VectorIndexSpec,
    exact: bool,
    indexed_paths: Iterable[str],
    rank_max: int,
    aggregate: Aggregate,
    find: Find,
) -> Documents:
    """The top_k documents ({"_id", "score", "payload"}) closest to `vector` among those matching
    `condition`, best first. `aggregate` runs a pipeline, `find(query, projection, limit)` a find;
    up to `rank_max` matches of conditions the engine cannot pre-filter are ranked here.
    """
    prefilter, postfilter = split_filter(condition, indexed_paths)
    k = search_k(top_k, overfetch=postfilter is not None)

    def search(k: int) -> Documents:
        pipeline = search_pipeline(
            vector, k, spec, exact=exact, prefilter=prefilter, postfilter=postfilter
        )
        return _best_first(aggregate(pipeline))[:top_k]

    hits = search(k)
    if postfilter is None or len(hits) >= top_k:
        return hits
    whole = to_mongo(condition)
    ids = [document["_id"] for document in find(whole, ID_ONLY, rank_max + 1)]
    if len(ids) <= rank_max:
        if {hit["_id"] for hit in hits} >= set(ids):
            return hits  # every match is among the hits already
        return rank_by_cosine(vector, find(among_ids(whole, ids), VECTOR_AND_PAYLOAD, 0))[:top_k]
    while k < MAX_K and len(hits) < top_k:
        k = wider_k(k)
        hits = search(k)
    if len(hits) < top_k:
        logger.warning(
            "filtered search: %d of %d hits among the %d nearest; over %d memories match the "
            "filter and some of its conditions cannot be pre-filtered, so farther matches may be "
            "missing (declare the metadata keys searched on in DOCUMENTDB_INDEXED_METADATA_KEYS)",
            len(hits),
            top_k,
            MAX_K,
            rank_max,
        )
    return hits


def _best_first(documents: Documents) -> Documents:
    return sorted(documents, key=lambda d: float(d["score"]), reverse=True)  # COS: higher is closer


def rank_by_cosine(vector: Sequence[float], documents: Documents) -> Documents:
    """The documents with their cosine similarity to `vector` as "score", best first."""
    dims = len(vector)
    usable = [d for d in documents if len(d.get(VECTOR_PATH) or ()) == dims]
    if not usable:
        return []
    matrix = np.asarray([d[VECTOR_PATH] for d in usable], dtype=np.float64)
    query = np.asarray(vector, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    scores = np.divide(matrix @ query, norms, out=np.zeros(len(usable)), where=norms > 0)
    ranked = [
        {"_id": d["_id"], "score": float(score), "payload": d.get("payload") or {}}
        for d, score in zip(usable, scores, strict=True)
    ]
    return _best_first(ranked)
