"""DocumentDB's keyword scores mean what the embedded store's mean: on one corpus, the same
memories come first and their keyword scores (after the fusion's sigmoid) agree, so
services/search_fusion.py fuses the same way on both stores. DocumentDB runs on the stand-in
(tests/support/mongo_documents.py: `$text` and its text score as the engine computes them)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.search_fusion import keyword_score
from stores.documentdb_vectors import AzureDocumentDBVectorStore
from stores.embedded_vectors import EmbeddedVectorStore
from stores.keyword_terms import terms
from tests.support.mongo_documents import DocumentClient

Stores = tuple[EmbeddedVectorStore, AzureDocumentDBVectorStore]
SCOPE = {"tenant": "t1", "user_id": "alice"}
COMMON = ["tea", "coffee", "river", "mountain", "hiking", "dog", "cat", "garden"]
RARER = [
    "book",
    "flight",
    "train",
    "museum",
    "ramen",
    "piano",
    "chess",
    "tennis",
    "sister",
    "doctor",
    "plumber",
    "podcast",
]


def _corpus() -> list[str]:
    chance = random.Random(3)
    texts = []
    for _ in range(400):
        words = [
            chance.choice(COMMON) if chance.random() < 0.6 else chance.choice(COMMON + RARER)
            for _ in range(chance.randint(4, 12))
        ]
        texts.append(" ".join(words))
    return [*texts, "Zbigniew brought up the Caldera ridge path"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    path = Path(tmp_path_factory.mktemp("keywords")) / "vectors.db"
    embedded = EmbeddedVectorStore("memories", 4, str(path))
    documentdb = AzureDocumentDBVectorStore(
        client=DocumentClient(), embedding_model_dims=4, index_wait_seconds=0
    )
    texts = _corpus()
    ids = [f"m{i:03d}" for i in range(len(texts))]
    payloads = [{"data": t, **SCOPE, "expires_at": 1e12} for t in texts]
    others = [{"data": t, "tenant": "t1", "user_id": "bob", "expires_at": 1e12} for t in texts]
    for store in (embedded, documentdb):
        store.insert([[1.0, 0.0, 0.0, 0.0]] * len(texts), payloads, ids)
        store.insert([[1.0, 0.0, 0.0, 0.0]] * len(texts), others, [f"b{i}" for i in ids])
    yield embedded, documentdb
    embedded.close()
    documentdb.close()


def _keyword_scores(
    store: EmbeddedVectorStore | AzureDocumentDBVectorStore, query: str
) -> dict[str, float]:
    n_terms = len(terms(query))
    hits = store.keyword_search(query, 10, SCOPE) or []
    return {hit.id: keyword_score(hit.score, n_terms) for hit in hits}


@pytest.mark.parametrize(
    "query",
    ["Zbigniew hiking", "piano chess podcast", "what about the museum and ramen", "sister doctor"],
)
def test_the_same_memories_come_first_with_close_keyword_scores(stores: Stores, query: str) -> None:
    embedded, documentdb = stores
    expected, found = _keyword_scores(embedded, query), _keyword_scores(documentdb, query)
    assert all(id_.startswith("m") for id_ in found)  # Bob's copies are out of scope
    assert list(found)[:3] == list(expected)[:3]
    assert len(expected.keys() & found.keys()) >= 8  # near-ties at the tail may differ
    for id_ in expected.keys() & found.keys():
        # A little higher on DocumentDB: its idf stays positive for words in many memories.
        assert found[id_] == pytest.approx(expected[id_], abs=0.12)


def test_words_in_half_the_memories_score_low_on_both(stores: Stores) -> None:
    for store in stores:
        assert 0 < max(_keyword_scores(store, "tea river").values()) < 0.15
