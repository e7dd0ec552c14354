"""The stand-in's `$text` behaves as the DocumentDB engine's (pg_documentdb's regression tests and
PostgreSQL's English configuration): analysis, the text score, and the errors it answers."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from tests.support.mongo_documents import DocumentClient, DocumentCollection
from tests.support.text_search import lexemes, query_lexemes, text_score

PROJECT = {"$project": {"payload": 1, "score": {"$meta": "textScore"}}}


def test_words_are_stemmed_stop_words_dropped_numbers_and_compounds_kept() -> None:
    assert lexemes("Caroline's flights were delayed in 2023") == [
        "carolin",
        "flight",
        "delay",
        "2023",
    ]
    assert lexemes("a state-of-the-art v2 running shoe") == [
        "state-of-the-art",
        "state",
        "art",
        "v2",
        "run",
        "shoe",
    ]


def test_the_score_counts_occurrences_of_any_query_word() -> None:
    # ts_rank_cd with weights 1.0 over an OR query: "Manzana con baya" -> 2.0 in the engine's tests.
    query = query_lexemes("apple berry harvest")
    assert text_score("Apple with berry", query) == 2.0
    assert text_score("apples, apples and a berry", query) == 3.0
    assert text_score("pear", query) == 0.0


@pytest.fixture
def memories() -> DocumentCollection:
    db = DocumentClient()["maas"]
    db.command(
        {"createIndexes": "memories", "indexes": [{"name": "t", "key": {"payload.data": "text"}}]}
    )
    memories = db["memories"]
    memories.insert_many(
        [
            {"_id": "a", "payload": {"data": "apples and berries", "user_id": "u1"}},
            {"_id": "b", "payload": {"data": "apple", "user_id": "u1"}},
            {"_id": "c", "payload": {"data": "apple apple berry", "user_id": "u2"}},
        ]
    )
    return memories


def test_text_and_the_other_conditions_in_the_first_match(memories: DocumentCollection) -> None:
    match = {"$and": [{"$text": {"$search": "apple berry"}}, {"payload.user_id": "u1"}]}
    found = memories.aggregate([{"$match": match}, PROJECT, {"$sort": {"score": -1}}])
    assert [(d["_id"], d["score"]) for d in found] == [("a", 2.0), ("b", 1.0)]
    assert memories.aggregate([{"$match": match}, {"$count": "n"}]) == [{"n": 2}]


def test_what_the_engine_refuses(memories: DocumentCollection) -> None:
    text = {"$text": {"$search": "apple"}}
    with pytest.raises(OperationFailure, match="text index is necessary"):
        memories.aggregate([{"$project": {"payload": 1}}, {"$match": text}])
    with pytest.raises(OperationFailure, match=r"\$text"):
        memories.aggregate([{"$match": {"$or": [text, {"_id": "a"}]}}])
    with pytest.raises(OperationFailure, match="text score metadata"):
        memories.aggregate([{"$match": {"_id": "a"}}, PROJECT])
    other = DocumentClient()["maas"]["memories"]
    with pytest.raises(OperationFailure, match="text index is necessary"):
        other.aggregate([{"$match": text}])


def test_a_second_text_index_is_refused_whole() -> None:
    db = DocumentClient()["maas"]
    db.command({"createIndexes": "m", "indexes": [{"name": "t1", "key": {"a": "text"}}]})
    with pytest.raises(OperationFailure, match="exactly one text index"):
        db.command(
            {
                "createIndexes": "m",
                "indexes": [{"name": "x_1", "key": {"x": 1}}, {"name": "t2", "key": {"b": "text"}}],
            }
        )
    assert set(db["m"].indexes) == {"t1"}
