"""Client input that no store or model can take — text that is not valid Unicode, metadata that
is not plain JSON — is BAD_USER_INPUT (metadata nested too deep: LIMIT_EXCEEDED), found before
the embedder, the LLM or any store is called: it changes nothing and is not counted as a
dependency error."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import Connect
from tests.support.graphql_client import codes, execute
from tests.support.memory_queries import (
    ADD_MEMORIES,
    ADD_MEMORY,
    GET,
    SEARCH,
    SEARCH_BATCH,
    UPDATE,
    list_all,
    remember,
)
from tests.support.patience import patience
from tests.support.prometheus_samples import sample, scrape

LONE = "\ud83d"  # the first half of a surrogate pair, alone: not encodable as UTF-8


async def send(url: str, query: str, **variables: Any) -> dict[str, Any]:
    """POST as JSON that JSON parsers accept: a lone surrogate as a \\u escape, NaN and
    Infinity as Python's json writes them (httpx's json= cannot encode a lone surrogate)."""
    body = json.dumps({"query": query, "variables": variables})
    async with httpx.AsyncClient(timeout=patience()) as client:
        response = await client.post(
            f"{url}/graphql", content=body, headers={"content-type": "application/json"}
        )
    return response.json()


async def error_codes(url: str, query: str, **variables: Any) -> list[str | None]:
    answer = await send(url, query, **variables)
    assert answer.get("errors"), answer
    return codes(answer["errors"])


async def batch_codes(url: str, query: str, field: str, items: list[Any]) -> set[str | None]:
    """The codes a batch answered: each item's, or the whole request's when the HTTP edge
    refused it before it reached the resolver."""
    answer = await send(url, query, items=items)
    if answer.get("errors"):
        return set(codes(answer["errors"]))
    return {r["error"]["code"] for r in answer["data"][field]["results"]}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


BAD_METADATA = [
    {"k": LONE},
    {"k": {f"key{LONE}": 1}},
    {"k": math.nan},
    {"k": [1, math.inf]},
    {"k": -math.inf},
    {"k": 2**70},
]
TOO_DEEP = nested(40)  # a limit passed: LIMIT_EXCEEDED


async def test_input_no_store_or_model_can_take_is_bad_user_input_and_changes_nothing(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server()
    api = await connect(url)
    kept = await remember(api, "Kept as it is.", metadata={"v": 1})
    adds: list[dict[str, Any]] = [
        {"text": f"Likes tea {LONE}"},
        {"messages": [{"role": "USER", "content": f"I like tea {LONE}"}]},
        {"messages": [{"role": "USER", "content": "I like tea", "name": f"al{LONE}ce"}]},
        *({"text": "Likes tea", "metadata": metadata} for metadata in BAD_METADATA),
    ]
    for fields in adds:
        new = {"userId": "alice", "infer": False, **fields}
        assert await error_codes(url, ADD_MEMORY, input=new) == ["BAD_USER_INPUT"], fields
    items = [{"userId": "alice", "infer": False, **fields} for fields in adds]
    assert await batch_codes(url, ADD_MEMORIES, "addMemories", items) == {"BAD_USER_INPUT"}

    updates: list[dict[str, Any]] = [
        {"text": f"Changed {LONE}"},
        *({"metadata": metadata} for metadata in BAD_METADATA),
    ]
    for fields in updates:
        change = {"id": kept["id"], **fields}
        assert await error_codes(url, UPDATE, input=change) == ["BAD_USER_INPUT"], fields

    too_deep = {"userId": "alice", "infer": False, "text": "Likes tea", "metadata": TOO_DEEP}
    assert await error_codes(url, ADD_MEMORY, input=too_deep) == ["LIMIT_EXCEEDED"]
    change = {"id": kept["id"], "metadata": TOO_DEEP}
    assert await error_codes(url, UPDATE, input=change) == ["LIMIT_EXCEEDED"]

    query = {"query": f"tea {LONE}", "userId": "alice"}
    assert await error_codes(url, SEARCH, input=query) == ["BAD_USER_INPUT"]
    assert await batch_codes(url, SEARCH_BATCH, "searchMemoriesBatch", [query]) == {
        "BAD_USER_INPUT"
    }

    assert [m["id"] for m in await list_all(api)] == [kept["id"]]
    fetched = (await execute(api, GET, id=kept["id"]))["memory"]
    assert (fetched["text"], fetched["metadata"]) == ("Kept as it is.", {"v": 1})
    assert [h["event"] for h in fetched["history"]] == ["ADD"]
    samples = await scrape(url)
    for dependency in ("embedding_provider", "vector_store", "llm"):
        assert sample(samples, "maas_dependency_errors_total", dependency=dependency) == 0
    for operation in ("addMemory", "updateMemory"):
        labels = {"operation": operation, "type": "mutation"}
        errors = "maas_graphql_operation_errors_total"
        assert sample(samples, errors, **labels, code="INTERNAL") == 0
        assert sample(samples, errors, **labels, code="UNAVAILABLE") == 0
