"""The exact command documents sent to DocumentDB (it ignores misspelled keys silently)."""

from __future__ import annotations

from typing import Any

import pytest

from stores.documentdb_commands import (
    FILTER_PATHS,
    MAX_K,
    VectorIndexSpec,
    among_ids,
    count_pipeline,
    create_filter_indexes_command,
    create_vector_index_command,
    find_vector_index,
    keyword_pipeline,
    metadata_filter_paths,
    page_query,
    search_k,
    search_pipeline,
    split_filter,
    vector_index_differences,
    wider_k,
)
from stores.memory_filters import parse

VECTOR = [0.1, 0.2, 0.3]


def _pipeline(filters: dict[str, Any] | None, top_k: int = 5, **spec: Any) -> list[dict[str, Any]]:
    """What the store sends for a search, built the way the store builds it."""
    prefilter, postfilter = split_filter(parse(filters))
    index = VectorIndexSpec(**{"kind": "diskann", "dimensions": 3, **spec})
    k = search_k(top_k, overfetch=postfilter is not None)
    return search_pipeline(VECTOR, k, index, exact=True, prefilter=prefilter, postfilter=postfilter)


# ---- createIndexes -----------------------------------------------------------------------------


def test_diskann_index_command() -> None:
    spec = VectorIndexSpec(kind="diskann", dimensions=1536)
    assert create_vector_index_command("memories", spec) == {
        "createIndexes": "memories",
        "indexes": [
            {
                "name": "embedding_vector",
                "key": {"embedding": "cosmosSearch"},
                "cosmosSearchOptions": {
                    "kind": "vector-diskann",
                    "similarity": "COS",
                    "dimensions": 1536,
                    "maxDegree": 32,
                    "lBuild": 50,
                },
            }
        ],
    }


def test_hnsw_index_command() -> None:
    spec = VectorIndexSpec(kind="hnsw", dimensions=384, m=24, ef_construction=100)
    assert create_vector_index_command("memories_entities", spec) == {
        "createIndexes": "memories_entities",
        "indexes": [
            {
                "name": "embedding_vector",
                "key": {"embedding": "cosmosSearch"},
                "cosmosSearchOptions": {
                    "kind": "vector-hnsw",
                    "similarity": "COS",
                    "dimensions": 384,
                    "m": 24,
                    "efConstruction": 100,
                },
            }
        ],
    }


def test_ivf_index_command() -> None:
    spec = VectorIndexSpec(kind="ivf", dimensions=8)
    assert create_vector_index_command("c", spec)["indexes"][0]["cosmosSearchOptions"] == {
        "kind": "vector-ivf",
        "similarity": "COS",
        "dimensions": 8,
        "numLists": 100,
    }


def test_defaults_are_the_documented_defaults() -> None:
    hnsw = VectorIndexSpec(kind="hnsw", dimensions=3)
    assert hnsw.build_options() == {"m": 16, "efConstruction": 64}
    assert hnsw.search_options(5) == {"efSearch": 40}
    diskann = VectorIndexSpec(kind="diskann", dimensions=3)
    assert diskann.build_options() == {"maxDegree": 32, "lBuild": 50}
    assert diskann.search_options(5) == {"lSearch": 40}


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "hnsw", "m": 1},
        {"kind": "hnsw", "m": 101, "ef_construction": 1000},
        {"kind": "hnsw", "m": 40, "ef_construction": 64},  # efConstruction must be >= 2*m
        {"kind": "hnsw", "ef_search": 1001},
        {"kind": "ivf", "num_lists": 0},
        {"kind": "ivf", "num_lists": 4, "n_probes": 5},
        {"kind": "diskann", "max_degree": 19},
        {"kind": "diskann", "l_build": 501},
        {"kind": "diskann", "l_search": 9},
        {"kind": "diskann", "dimensions": 2001},
        {"kind": "flat"},
    ],
)
def test_out_of_range_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"between|kind"):
        VectorIndexSpec(**{"dimensions": 3, **options})


def test_filter_indexes_cover_every_filtered_path_and_paging() -> None:
    assert create_filter_indexes_command("memories") == {
        "createIndexes": "memories",
        "indexes": [
            {"name": "payload.tenant_1", "key": {"payload.tenant": 1}},
            {"name": "payload.user_id_1", "key": {"payload.user_id": 1}},
            {"name": "payload.agent_id_1", "key": {"payload.agent_id": 1}},
            {"name": "payload.run_id_1", "key": {"payload.run_id": 1}},
            {"name": "payload.category_1", "key": {"payload.category": 1}},
            {"name": "payload.expires_at_1", "key": {"payload.expires_at": 1}},
            {"name": "payload.created_at_1", "key": {"payload.created_at": 1}},
            {
                "name": "payload.tenant_1_payload.created_at_-1__id_-1",
                "key": {"payload.tenant": 1, "payload.created_at": -1, "_id": -1},
            },
            {
                "name": "payload.data_text",
                "key": {"payload.data": "text"},
                "default_language": "english",
                "language_override": "maas_text_language",
            },
        ],
    }
    without = create_filter_indexes_command("memories", text=False)["indexes"]
    assert without == create_filter_indexes_command("memories")["indexes"][:-1]


def test_declared_metadata_keys_get_their_own_single_path_index_each() -> None:
    paths = metadata_filter_paths(["topic", "project"])
    assert paths == ("payload.metadata.topic", "payload.metadata.project")
    indexes = create_filter_indexes_command("memories", paths)["indexes"]
    assert indexes[len(FILTER_PATHS) : len(FILTER_PATHS) + 2] == [
        {"name": "payload.metadata.topic_1", "key": {"payload.metadata.topic": 1}},
        {"name": "payload.metadata.project_1", "key": {"payload.metadata.project": 1}},
    ]
    assert indexes[-2]["name"] == "payload.tenant_1_payload.created_at_-1__id_-1"
    assert len(indexes) == len(FILTER_PATHS) + 4


# ---- $text -------------------------------------------------------------------------------------


def test_a_keyword_query_is_text_and_the_whole_filter_in_one_first_match() -> None:
    scope = {"$and": [{"payload.tenant": {"$eq": "t1"}}, {"payload.user_id": {"$eq": "u1"}}]}
    assert keyword_pipeline(["zbigniew", "caldera"], 60, scope) == [
        {"$match": {"$and": [{"$text": {"$search": "zbigniew caldera"}}, scope]}},
        {"$project": {"payload": 1, "score": {"$meta": "textScore"}}},
        {"$sort": {"score": -1, "_id": 1}},
        {"$limit": 60},
    ]
    assert keyword_pipeline(["tea"], 5, {})[0] == {"$match": {"$text": {"$search": "tea"}}}


def test_counts_within_the_filter_with_or_without_words() -> None:
    scope = {"payload.tenant": {"$eq": "t1"}}
    assert count_pipeline(["tea"], scope) == [
        {"$match": {"$and": [{"$text": {"$search": "tea"}}, scope]}},
        {"$count": "n"},
    ]
    assert count_pipeline(None, scope) == [{"$match": scope}, {"$count": "n"}]


# ---- $search -----------------------------------------------------------------------------------


def test_a_declared_metadata_key_goes_into_the_prefilter() -> None:
    indexed = (*FILTER_PATHS, *metadata_filter_paths(["topic"]))
    filters = {"user_id": "u1", "metadata.topic": "travel", "metadata.mood": "calm"}
    prefilter, postfilter = split_filter(parse(filters), indexed)
    assert prefilter == {
        "$and": [
            {"payload.user_id": {"$eq": "u1"}},
            {"payload.metadata.topic": {"$eq": "travel"}},
        ]
    }
    assert postfilter == {"payload.metadata.mood": {"$eq": "calm"}}


def test_widening_doubles_k_up_to_the_engine_cap() -> None:
    assert [wider_k(k) for k in (100, 400, 600, MAX_K)] == [200, 800, MAX_K, MAX_K]


def test_the_whole_filter_among_ids() -> None:
    assert among_ids({"payload.tenant": {"$eq": "t1"}}, ["a", "b"]) == {
        "$and": [{"payload.tenant": {"$eq": "t1"}}, {"_id": {"$in": ["a", "b"]}}]
    }
    assert among_ids({}, ["a"]) == {"_id": {"$in": ["a"]}}


def test_search_with_only_indexed_paths_prefilters_everything() -> None:
    filters = {"tenant": "t1", "user_id": "u1", "expires_at": {"gt": 1700000000.0}}
    assert _pipeline(filters) == [
        {
            "$search": {
                "cosmosSearch": {
                    "vector": VECTOR,
                    "path": "embedding",
                    "k": 5,
                    "filter": {
                        "$and": [
                            {"payload.tenant": {"$eq": "t1"}},
                            {"payload.user_id": {"$eq": "u1"}},
                            {"payload.expires_at": {"$gt": 1700000000.0}},
                        ]
                    },
                    "exact": True,
                    "lSearch": 40,
                }
            }
        },
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
    ]


def test_single_condition_prefilter_is_not_wrapped_in_and() -> None:
    cosmos = _pipeline({"user_id": "u1"})[0]["$search"]["cosmosSearch"]
    assert cosmos["filter"] == {"payload.user_id": {"$eq": "u1"}}


def test_search_without_filters_sends_no_filter_key() -> None:
    cosmos = _pipeline(None)[0]["$search"]["cosmosSearch"]
    assert list(cosmos) == ["vector", "path", "k", "exact", "lSearch"]


def test_unindexed_conditions_go_to_a_match_after_search_and_overfetch() -> None:
    filters = {"user_id": "u1", "metadata.topic": "travel", "category": {"in": ["a", "b"]}}
    assert _pipeline(filters, top_k=5) == [
        {
            "$search": {
                "cosmosSearch": {
                    "vector": VECTOR,
                    "path": "embedding",
                    "k": 100,
                    "filter": {
                        "$and": [
                            {"payload.user_id": {"$eq": "u1"}},
                            {"payload.category": {"$in": ["a", "b"]}},
                        ]
                    },
                    "exact": True,
                    "lSearch": 100,
                }
            }
        },
        {"$project": {"score": {"$meta": "searchScore"}, "payload": 1}},
        {"$match": {"payload.metadata.topic": {"$eq": "travel"}}},
    ]


@pytest.mark.parametrize(
    "filters",
    [
        {"user_id": "*"},  # $exists
        {"user_id": {"contains": "u"}},  # $regex with escaping
        {"user_id": {"icontains": "U"}},  # $regex with $options
        {"NOT": [{"user_id": "u1"}]},  # $nor
        {"OR": [{"user_id": "u1"}, {"metadata.topic": "x"}]},  # one branch unindexed
        {"user_id": None},  # only booleans, numbers and strings pre-filter
        {"user_id": {"in": []}},
    ],
)
def test_conditions_the_prefilter_cannot_take_go_after(filters: dict[str, Any]) -> None:
    prefilter, postfilter = split_filter(parse({"tenant": "t1", **filters}))
    assert prefilter == {"payload.tenant": {"$eq": "t1"}}
    assert postfilter is not None


def test_or_over_indexed_paths_is_prefiltered() -> None:
    prefilter, postfilter = split_filter(parse({"OR": [{"user_id": "u1"}, {"agent_id": "a1"}]}))
    assert prefilter == {
        "$or": [{"payload.user_id": {"$eq": "u1"}}, {"payload.agent_id": {"$eq": "a1"}}]
    }
    assert postfilter is None


def test_exact_off_is_sent_as_false() -> None:
    index = VectorIndexSpec(kind="hnsw", dimensions=3)
    cosmos = search_pipeline(VECTOR, 7, index, exact=False)[0]["$search"]["cosmosSearch"]
    assert cosmos == {
        "vector": VECTOR,
        "path": "embedding",
        "k": 7,
        "exact": False,
        "efSearch": 40,
    }


@pytest.mark.parametrize(
    ("kind", "k", "expected"),
    [
        ("hnsw", 5, {"efSearch": 40}),
        ("hnsw", 300, {"efSearch": 300}),  # never fewer candidates than k
        ("ivf", 5, {"nProbes": 10}),
        ("diskann", 5, {"lSearch": 40}),
        ("diskann", 1000, {"lSearch": 1000}),  # k <= lSearch <= 1000
    ],
)
def test_search_option_per_kind(kind: Any, k: int, expected: dict[str, int]) -> None:
    index = VectorIndexSpec(kind=kind, dimensions=3)
    cosmos = search_pipeline(VECTOR, k, index, exact=True)[0]["$search"]["cosmosSearch"]
    assert {key: cosmos[key] for key in expected} == expected


def test_overfetch_is_capped() -> None:
    assert search_k(5, overfetch=False) == 5
    assert search_k(5, overfetch=True) == 100
    assert search_k(30, overfetch=True) == 300
    assert search_k(500, overfetch=True) == MAX_K
    assert search_k(5000, overfetch=False) == MAX_K


# ---- paging ------------------------------------------------------------------------------------


def test_page_query_without_cursor_is_the_filter() -> None:
    assert page_query(None, None) == {}
    assert page_query({"payload.tenant": {"$eq": "t1"}}, None) == {"payload.tenant": {"$eq": "t1"}}


def test_page_query_after_cursor_is_strictly_after_in_created_at_then_id_order() -> None:
    after = ("2025-01-01T00:00:00+00:00", "m5")
    assert page_query({"payload.tenant": {"$eq": "t1"}}, after) == {
        "$and": [
            {"payload.tenant": {"$eq": "t1"}},
            {
                "$or": [
                    {"payload.created_at": {"$lt": "2025-01-01T00:00:00+00:00"}},
                    {"payload.created_at": "2025-01-01T00:00:00+00:00", "_id": {"$lt": "m5"}},
                ]
            },
        ]
    }
    assert page_query(None, after) == page_query({}, after)
    assert "$or" in page_query(None, after)


# ---- existing indexes --------------------------------------------------------------------------


def _listed(options_key: str = "cosmosSearchOptions", **options: Any) -> dict[str, Any]:
    return {
        "v": 2,
        "name": "embedding_vector",
        "key": {"embedding": "cosmosSearch"},
        options_key: {"kind": "vector-hnsw", "similarity": "COS", "dimensions": 3, **options},
    }


def test_find_vector_index_by_path() -> None:
    indexes = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, _listed()]
    assert find_vector_index(indexes) == _listed()
    assert find_vector_index(indexes[:1]) is None


def test_differences_name_each_option_that_differs() -> None:
    spec = VectorIndexSpec(kind="diskann", dimensions=1536)
    assert vector_index_differences(_listed(m=16), spec) == [
        "kind: 'vector-hnsw' (existing) vs 'vector-diskann' (configured)",
        "dimensions: 3 (existing) vs 1536 (configured)",
    ]


def test_differences_read_azure_listing_format_and_skip_unreported_options() -> None:
    spec = VectorIndexSpec(kind="hnsw", dimensions=3, m=32)
    assert vector_index_differences(_listed("cosmosSearch", m=16), spec) == [
        "m: 16 (existing) vs 32 (configured)"
    ]
    assert vector_index_differences(_listed("cosmosSearch"), spec) == []
