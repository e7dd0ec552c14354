"""The command documents the DocumentDB vector store sends, built by pure functions (no I/O).

Azure DocumentDB and the open-source DocumentDB engine silently ignore unknown keys in a
`cosmosSearch` spec, so a misspelled option does nothing instead of failing: every document here
is asserted key by key in tests/unit/test_documentdb_commands.py.

Documents: {"_id": <memory id>, "embedding": [floats], "payload": {...}}.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from stores.memory_filters import All, AnyOf, Condition, Field, Not, to_mongo

IndexType = Literal["diskann", "hnsw", "ivf"]

VECTOR_PATH = "embedding"
VECTOR_INDEX_NAME = "embedding_vector"
SIMILARITY = "COS"  # upper case: the open-source parser is case-sensitive
KINDS: dict[str, str] = {"diskann": "vector-diskann", "hnsw": "vector-hnsw", "ivf": "vector-ivf"}

# Payload paths that are filtered on: each gets an ordinary index, and only paths with their own
# single-path index may appear in a cosmosSearch pre-filter (DocumentDB rejects any other filter
# path; a compound or wildcard index does not count). Declared metadata keys add theirs.
FILTER_PATHS: tuple[str, ...] = (
    "payload.tenant",
    "payload.user_id",
    "payload.agent_id",
    "payload.run_id",
    "payload.category",
    "payload.expires_at",
    "payload.created_at",
)
# Cursor pagination: newest first, ties broken by id.
PAGE_SORT: list[tuple[str, int]] = [("payload.created_at", -1), ("_id", -1)]
PAGE_INDEX_KEY: dict[str, int] = {"payload.tenant": 1, "payload.created_at": -1, "_id": -1}

METADATA_PATH = "payload.metadata"  # where the service keeps a caller's metadata

MAX_K = 1000  # DiskANN needs k <= lSearch <= 1000; HNSW's efSearch tops out at 1000 too
OVERFETCH_FACTOR = 10  # with a post-$match, ask for this many times top_k ...
OVERFETCH_MIN = 100  # ... but at least this many

# Operators the cosmosSearch pre-filter accepts (besides $and/$or). contains/icontains render
# as $regex; they stay in the post-$match because case-insensitive $options are not documented
# for the pre-filter.
_PREFILTER_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})


@dataclass(frozen=True)
class VectorIndexSpec:
    """The vector index definition and its search-time knobs; ranges are Azure's documented ones."""

    kind: IndexType
    dimensions: int
    m: int = 16  # HNSW: 2-100
    ef_construction: int = 64  # HNSW: 4-1000, >= 2*m
    ef_search: int = 40  # HNSW: 1-1000
    num_lists: int = 100  # IVF: 1-32768
    n_probes: int = 10  # IVF: 1-num_lists
    max_degree: int = 32  # DiskANN: 20-2048
    l_build: int = 50  # DiskANN: 10-500
    l_search: int = 40  # DiskANN: 10-1000, >= k

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"vector index kind {self.kind!r}: one of {sorted(KINDS)}")
        # 2,000 is the limit without compression (half precision / product quantization, which
        # raise it, are not configured here).
        _check_range("dimensions", self.dimensions, 1, 2000)
        _check_range("m", self.m, 2, 100)
        _check_range("ef_construction", self.ef_construction, max(4, 2 * self.m), 1000)
        _check_range("ef_search", self.ef_search, 1, 1000)
        _check_range("num_lists", self.num_lists, 1, 32768)
        _check_range("n_probes", self.n_probes, 1, self.num_lists)
        _check_range("max_degree", self.max_degree, 20, 2048)
        _check_range("l_build", self.l_build, 10, 500)
        _check_range("l_search", self.l_search, 10, 1000)

    @property
    def kind_name(self) -> str:
        """The server's name for the kind, e.g. "vector-hnsw"."""
        return KINDS[self.kind]

    def with_kind(self, kind: IndexType) -> VectorIndexSpec:
        """The same spec with another kind (the DiskANN -> HNSW fallback)."""
        return replace(self, kind=kind)

    def build_options(self) -> dict[str, Any]:
        """The kind-specific build options inside cosmosSearchOptions."""
        if self.kind == "hnsw":
            return {"m": self.m, "efConstruction": self.ef_construction}
        if self.kind == "ivf":
            return {"numLists": self.num_lists}
        return {"maxDegree": self.max_degree, "lBuild": self.l_build}

    def search_options(self, k: int) -> dict[str, int]:
        """The kind-specific search option for a query asking for `k` results."""
        if self.kind == "hnsw":
            # HNSW returns at most efSearch candidates, so never ask for fewer than k.
            return {"efSearch": min(max(self.ef_search, k), 1000)}
        if self.kind == "ivf":
            return {"nProbes": self.n_probes}
        return {"lSearch": min(max(self.l_search, k), 1000)}  # the server requires k <= lSearch


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


# ---- the text index (keyword search) ----------------------------------------------------------

TEXT_PATH = "payload.data"  # the memory's text
TEXT_INDEX_NAME = "payload.data_text"
# Where the engine would look for a per-document language (default "language" next to the text,
# i.e. payload.language): a path no memory has, so no payload field can change the analysis.
TEXT_LANGUAGE_OVERRIDE = "maas_text_language"


def text_index_definition() -> dict[str, Any]:
    """One entry of createIndexes' "indexes" list: the text index on the memory's text (English
    stemming and stop words; a collection may have only one text index)."""
    return {
        "name": TEXT_INDEX_NAME,
        "key": {TEXT_PATH: "text"},
        "default_language": "english",
        "language_override": TEXT_LANGUAGE_OVERRIDE,
    }


# ---- index creation ----------------------------------------------------------------------------


def vector_index_definition(spec: VectorIndexSpec) -> dict[str, Any]:
    """One entry of createIndexes' "indexes" list: the cosmosSearch index on "embedding"."""
    return {
        "name": VECTOR_INDEX_NAME,
        "key": {VECTOR_PATH: "cosmosSearch"},
        "cosmosSearchOptions": {
            "kind": spec.kind_name,
            "similarity": SIMILARITY,
            "dimensions": spec.dimensions,
            **spec.build_options(),
        },
    }


def create_vector_index_command(collection: str, spec: VectorIndexSpec) -> dict[str, Any]:
    """The createIndexes command for the vector index."""
    return {"createIndexes": collection, "indexes": [vector_index_definition(spec)]}


def metadata_filter_paths(keys: Iterable[str]) -> tuple[str, ...]:
    """The document paths of declared metadata keys, e.g. "payload.metadata.topic"."""
    return tuple(f"{METADATA_PATH}.{key}" for key in keys)


def create_filter_indexes_command(
    collection: str, metadata_paths: Sequence[str] = (), *, text: bool = True
) -> dict[str, Any]:
    """The createIndexes command for the ordinary indexes on the filtered paths (the scoping
    fields and any declared metadata keys, each its own single-path index), for paging, and
    (`text`) the text index of keyword search.

    Names follow MongoDB's default naming, so an index someone made by hand on the same key is
    recognised as the same index instead of conflicting with it.
    """
    paths = [*FILTER_PATHS, *(p for p in metadata_paths if p not in FILTER_PATHS)]
    indexes = [{"name": f"{path}_1", "key": {path: 1}} for path in paths]
    indexes.append({"name": _default_name(PAGE_INDEX_KEY), "key": dict(PAGE_INDEX_KEY)})
    if text:
        indexes.append(text_index_definition())
    return {"createIndexes": collection, "indexes": indexes}


def _default_name(key: Mapping[str, int]) -> str:
    return "_".join(f"{path}_{direction}" for path, direction in key.items())


def find_vector_index(indexes: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The index on "embedding" of kind cosmosSearch among listIndexes' answer (one per path)."""
    for index in indexes:
        if dict(index.get("key", {})).get(VECTOR_PATH) == "cosmosSearch":
            return index
    return None


def vector_index_differences(existing: Mapping[str, Any], spec: VectorIndexSpec) -> list[str]:
    """What differs between an existing vector index and `spec`, e.g. ["dimensions: 384 (existing)
    vs 1536 (configured)"]. Options the server does not report are not compared."""
    # Azure's docs show the options under "cosmosSearch"; the engine stores the spec as given.
    options = existing.get("cosmosSearchOptions") or existing.get("cosmosSearch") or {}
    wanted = vector_index_definition(spec)["cosmosSearchOptions"]
    differences = []
    for key, value in wanted.items():
        if key in options and options[key] != value:
            differences.append(f"{key}: {options[key]!r} (existing) vs {value!r} (configured)")
    return differences


# ---- search ------------------------------------------------------------------------------------


def split_filter(
    condition: Condition, indexed_paths: Iterable[str] = FILTER_PATHS
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(pre-filter, post-filter) MongoDB documents for a parsed filter; either may be None.

    Top-level conjuncts that only touch `indexed_paths` (each with its own single-path index)
    with operators and values the cosmosSearch pre-filter supports go into the pre-filter;
    everything else goes into a $match after $search.
    """
    paths = frozenset(indexed_paths)
    parts = condition.parts if isinstance(condition, All) else (condition,)
    pre = [part for part in parts if _prefilterable(part, paths)]
    post = [part for part in parts if not _prefilterable(part, paths)]
    return _render(pre), _render(post)


def _render(parts: Sequence[Condition]) -> dict[str, Any] | None:
    if not parts:
        return None
    return to_mongo(parts[0] if len(parts) == 1 else All(tuple(parts)))


def _prefilterable(condition: Condition, paths: frozenset[str]) -> bool:
    if isinstance(condition, All | AnyOf):
        return bool(condition.parts) and all(_prefilterable(p, paths) for p in condition.parts)
    if isinstance(condition, Not):
        return False  # renders as $nor, which the pre-filter does not accept
    return (
        isinstance(condition, Field)
        and "payload." + condition.path in paths
        and condition.op in _PREFILTER_OPS
        and _prefilter_value(condition)
    )


def _prefilter_value(condition: Field) -> bool:
    # The pre-filter compares with a boolean, a number (not a decimal) or a string.
    if condition.op in ("in", "nin"):
        values = condition.value
        return bool(values) and all(isinstance(v, str | int | float) for v in values)
    return isinstance(condition.value, str | int | float)


def search_k(top_k: int, overfetch: bool) -> int:
    """How many neighbours to ask for: top_k, or more when a post-$match will drop some."""
    k = max(top_k * OVERFETCH_FACTOR, OVERFETCH_MIN) if overfetch else top_k
    return min(k, MAX_K)


def wider_k(k: int) -> int:
    """The next k when a post-$match left too few hits: twice as many, up to the engine's cap."""
    return min(k * 2, MAX_K)


# ---- the whole filter, without $search (stores/documentdb_search.py) ---------------------------

ID_ONLY: dict[str, int] = {"_id": 1}
VECTOR_AND_PAYLOAD: dict[str, int] = {VECTOR_PATH: 1, "payload": 1}


def among_ids(filter_doc: Mapping[str, Any] | None, ids: Sequence[Any]) -> dict[str, Any]:
    """The find() filter for the memories with these ids that (still) match the filter."""
    by_id = {"_id": {"$in": list(ids)}}
    return {"$and": [dict(filter_doc), by_id]} if filter_doc else by_id


def search_pipeline(
    vector: Sequence[float],
    k: int,
    spec: VectorIndexSpec,
    *,
    exact: bool,
    prefilter: Mapping[str, Any] | None = None,
    postfilter: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """$search (cosmosSearch) first, then the score and payload, then the post-filter if any."""
    cosmos: dict[str, Any] = {"vector": list(vector), "path": VECTOR_PATH, "k": k}
    if prefilter:
        cosmos["filter"] = dict(prefilter)
    cosmos["exact"] = exact
    cosmos.update(spec.search_options(k))
    pipeline: list[dict[str, Any]] = [
        {"$search": {"cosmosSearch": cosmos}},
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
    ]
    if postfilter:
        pipeline.append({"$match": dict(postfilter)})
    return pipeline


# ---- keyword search ($text) --------------------------------------------------------------------


def text_match(words: Sequence[str] | None, filter_doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The first $match of a keyword query: `$text` on any of the words (none: the filter
    alone) AND the whole filter, in one stage."""
    parts = [{"$text": {"$search": " ".join(words)}}] if words else []
    if filter_doc:
        parts.append(dict(filter_doc))
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def count_pipeline(
    words: Sequence[str] | None, filter_doc: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """How many memories within the filter hold any of the words (None: all of them)."""
    return [{"$match": text_match(words, filter_doc)}, {"$count": "n"}]


def keyword_pipeline(
    words: Sequence[str], top_k: int, filter_doc: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """$match on `$text` (any of the words) AND the whole filter in one first stage, so the
    top_k are the best matches within the scope; then the text score (for one word: its
    occurrences), best first.

    The words are plain (letters and digits only): no phrase quotes, negations or "or"
    operators reach the engine's websearch parser.
    """
    return [
        {"$match": text_match(words, filter_doc)},
        {"$project": {"payload": 1, "score": {"$meta": "textScore"}}},
        {"$sort": {"score": -1, "_id": 1}},
        {"$limit": top_k},
    ]


# ---- paging ------------------------------------------------------------------------------------


def page_query(
    filter_doc: Mapping[str, Any] | None, after: tuple[str, str] | None
) -> dict[str, Any]:
    """The find() filter for a page: the caller's filter, and strictly after the cursor in
    (payload.created_at desc, _id desc) order."""
    parts: list[dict[str, Any]] = [dict(filter_doc)] if filter_doc else []
    if after is not None:
        created_at, memory_id = after
        parts.append(
            {
                "$or": [
                    {"payload.created_at": {"$lt": created_at}},
                    {"payload.created_at": created_at, "_id": {"$lt": memory_id}},
                ]
            }
        )
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}
