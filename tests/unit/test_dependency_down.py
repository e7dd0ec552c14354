"""Which exceptions say a dependency of long-term memory is down (pymongo's included, though
services/mem0_engine.py imports pymongo only once a Mongo store has)."""

from __future__ import annotations

import pytest
from mem0.exceptions import LLMError, VectorStoreError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure

from services.mem0_engine import EmbeddingUnavailable, dependency_down
from stores.vector_hits import StoreUnavailable


@pytest.mark.parametrize(
    ("error", "what"),
    [
        (StoreUnavailable("down"), "The vector store"),
        (VectorStoreError("down"), "The vector store"),
        (ConnectionFailure("refused"), "The vector store"),
        (ExecutionTimeout("time limit", 50), "The vector store"),
        (EmbeddingUnavailable("down"), "The embedding provider"),
        (LLMError("down"), "The LLM"),
        (OperationFailure("bad command", 2), None),
        (ValueError("a bug"), None),
    ],
    ids=repr,
)
def test_dependency_down_names_the_dependency(error: BaseException, what: str | None) -> None:
    assert dependency_down(error) == what
