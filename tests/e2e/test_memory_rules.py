"""The rules long-term memory keeps: tenancy, clear errors that change nothing, batches with
bounded concurrency and per-item results, and dependencies that are down failing LTM only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from gql.client import AsyncClientSession

from tests.e2e.conftest import Connect
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import (
    API_KEYS,
    KEY_A,
    KEY_B,
    add_messages,
    codes,
    execute,
    execute_error,
)
from tests.support.memory_queries import (
    ADD_MEMORIES,
    ADD_MEMORY,
    DELETE,
    DELETE_MANY,
    EMBEDDING_PROVIDER_DOWN,
    GET,
    LIST,
    SEARCH,
    SEARCH_BATCH,
    UPDATE,
    extraction,
    list_all,
    remember,
    search,
)


@pytest.fixture
async def api(fresh_api: AsyncClientSession) -> AsyncClientSession:
    return fresh_api


async def test_another_tenants_memory_looks_missing(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server(api_keys=API_KEYS)
    a, b = await connect(url, KEY_A), await connect(url, KEY_B)
    secret = await remember(a, "Tenant A's launch date is in May.")

    assert (await execute(b, GET, id=secret["id"]))["memory"] is None
    assert await search(b, "When is the launch?") == []
    assert await list_all(b) == []
    for document, variables in (
        (UPDATE, {"input": {"id": secret["id"], "text": "hijacked"}}),
        (DELETE, {"id": secret["id"]}),
    ):
        assert codes(await execute_error(b, document, **variables)) == ["NOT_FOUND"]
    assert (await execute(a, GET, id=secret["id"]))["memory"]["text"] == secret["text"]
    assert [h["memory"]["id"] for h in await search(a, "When is the launch?")] == [secret["id"]]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"text": "   "}, "BAD_USER_INPUT"),
        ({"text": "x", "category": "GOSSIP"}, "BAD_USER_INPUT"),
        ({"text": "x", "metadata": {"blob": "y" * 9000}}, "LIMIT_EXCEEDED"),
        ({"text": "x", "metadata": ["not", "an", "object"]}, "BAD_USER_INPUT"),
        ({"text": "x", "ttlSeconds": -1}, "BAD_USER_INPUT"),
        ({"text": "x", "userId": None}, "BAD_USER_INPUT"),
        ({"text": "x", "userId": "has spaces"}, "BAD_USER_INPUT"),
        ({"text": "x", "messages": [{"role": "USER", "content": "both"}]}, "BAD_USER_INPUT"),
        ({"text": "x" * 20_001}, "LIMIT_EXCEEDED"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_changes_nothing(
    api: AsyncClientSession, fields: dict[str, object], code: str
) -> None:
    await remember(api, "Already here.")
    errors = await execute_error(
        api, ADD_MEMORY, input={"userId": "alice", "infer": False, **fields}
    )
    assert codes(errors) == [code]
    assert errors[0]["message"]
    assert [m["text"] for m in await list_all(api)] == ["Already here."]


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        (SEARCH, {"input": {"query": "x", "userId": "alice", "limit": 101}}, "LIMIT_EXCEEDED"),
        (SEARCH, {"input": {"query": "x", "userId": "alice", "limit": 0}}, "LIMIT_EXCEEDED"),
        (SEARCH, {"input": {"query": "x", "userId": "alice", "threshold": 1.5}}, "BAD_USER_INPUT"),
        (SEARCH, {"input": {"query": " ", "userId": "alice"}}, "BAD_USER_INPUT"),
        (
            SEARCH,
            {"input": {"query": "x", "userId": "alice", "metadata": {"k": [1]}}},
            "BAD_USER_INPUT",
        ),
        (LIST, {"first": 101}, "LIMIT_EXCEEDED"),
        (LIST, {"after": "not-a-cursor"}, "BAD_USER_INPUT"),
        (LIST, {"metadata": {"bad key": 1}}, "BAD_USER_INPUT"),
    ],
)
async def test_search_and_list_limits_are_clear_errors(
    api: AsyncClientSession, document: str, variables: dict[str, object], code: str
) -> None:
    assert codes(await execute_error(api, document, **variables)) == [code]


async def test_bad_updates_change_nothing(api: AsyncClientSession) -> None:
    memory = await remember(api, "Kept as it is.", metadata={"v": 1})
    for fields, code in (
        ({"ttlSeconds": -5}, "BAD_USER_INPUT"),
        ({"text": ""}, "BAD_USER_INPUT"),
        ({"metadata": {"blob": "y" * 9000}}, "LIMIT_EXCEEDED"),
    ):
        errors = await execute_error(api, UPDATE, input={"id": memory["id"], **fields})
        assert codes(errors) == [code]
    fetched = (await execute(api, GET, id=memory["id"]))["memory"]
    assert (fetched["text"], fetched["metadata"], fetched["expiresAt"]) == (
        "Kept as it is.",
        {"v": 1},
        None,
    )
    assert [h["event"] for h in fetched["history"]] == ["ADD"]


async def test_unknown_ids_and_empty_updates_are_clear_errors(api: AsyncClientSession) -> None:
    memory = await remember(api, "Unchanged.")
    unknown = "0b6f1a2e-0000-4000-8000-000000000000"
    assert codes(await execute_error(api, DELETE, id=unknown)) == ["NOT_FOUND"]
    assert codes(await execute_error(api, UPDATE, input={"id": unknown, "text": "x"})) == [
        "NOT_FOUND"
    ]
    assert codes(await execute_error(api, UPDATE, input={"id": memory["id"]})) == ["BAD_USER_INPUT"]
    assert codes(await execute_error(api, DELETE, id="not an id!")) == ["BAD_USER_INPUT"]
    assert (await execute(api, GET, id=memory["id"]))["memory"]["text"] == "Unchanged."


async def test_infer_without_an_llm_is_a_clear_error(
    live_server: Callable[..., str], connect: Connect
) -> None:
    api = await connect(live_server(llm_api_key=None, llm_base_url=None))
    errors = await execute_error(
        api, ADD_MEMORY, input={"text": "I like tea.", "userId": "alice", "infer": True}
    )
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "infer" in errors[0]["message"]
    # Without an LLM, memories are stored verbatim by default.
    added = await execute(api, ADD_MEMORY, input={"text": "I like tea.", "userId": "alice"})
    assert [m["text"] for m in added["addMemory"]["added"]] == ["I like tea."]


async def test_a_batch_of_adds_runs_concurrently_and_a_bad_item_fails_alone(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    fake_llm.hold()
    fake_llm.script(*(extraction(f"fact {n}") for n in range(49)))
    items: list[dict[str, object]] = [
        {"userId": f"user-{n}", "messages": [{"role": "USER", "content": f"tell {n}"}]}
        for n in range(49)
    ]
    items.insert(17, {"userId": "user-x", "text": ""})

    adding = asyncio.create_task(execute(api, ADD_MEMORIES, items=items))
    await fake_llm.until_in_flight(5)  # held: they are all in flight at once
    fake_llm.release()
    result = await adding

    results = result["addMemories"]["results"]
    assert [r["index"] for r in results] == list(range(50))
    assert [r["ok"] for r in results] == [n != 17 for n in range(50)]
    assert results[17]["error"]["code"] == "BAD_USER_INPUT"
    assert all(len(r["result"]["added"]) == 1 for r in results if r["ok"])
    # 49 LLM calls: many were in flight at once, never more than the limit.
    assert 5 <= fake_llm.max_in_flight <= 10
    assert len(await list_all(api)) == 49


async def test_batches_over_the_limit_are_refused_whole(api: AsyncClientSession) -> None:
    items = [{"userId": "alice", "text": f"n{n}", "infer": False} for n in range(51)]
    errors = await execute_error(api, ADD_MEMORIES, items=items)
    assert codes(errors) == ["LIMIT_EXCEEDED"]
    assert "50" in errors[0]["message"]
    assert await list_all(api) == []
    assert codes(await execute_error(api, ADD_MEMORIES, items=[])) == ["BAD_USER_INPUT"]


async def test_batch_search_and_delete_answer_each_item_in_order(
    api: AsyncClientSession,
) -> None:
    tea = await remember(api, "Drinks green tea every morning.")
    dog = await remember(api, "Has a dog called Pixel.", user_id="bob")

    searched = await execute(
        api,
        SEARCH_BATCH,
        items=[
            {"query": "What does she drink?", "userId": "alice"},
            {"query": "no scope"},
            {"query": "Which pet?", "userId": "bob", "limit": 1},
        ],
    )
    results = searched["searchMemoriesBatch"]["results"]
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[0]["hits"][0]["memory"]["id"] == tea["id"]
    assert results[1]["error"]["code"] == "BAD_USER_INPUT"
    assert [h["memory"]["id"] for h in results[2]["hits"]] == [dog["id"]]

    unknown = "0b6f1a2e-0000-4000-8000-000000000000"
    deleted = await execute(api, DELETE_MANY, ids=[tea["id"], unknown, dog["id"]])
    outcomes = [
        (r["id"], r["ok"], (r["error"] or {}).get("code"))
        for r in deleted["deleteMemories"]["results"]
    ]
    assert outcomes == [
        (tea["id"], True, None),
        (unknown, False, "NOT_FOUND"),
        (dog["id"], True, None),
    ]
    assert await list_all(api) == []


async def test_concurrent_adds_never_fail_on_storage_locking(api: AsyncClientSession) -> None:
    results = await asyncio.gather(
        *(remember(api, f"concurrent memory {n}", user_id=f"u{n % 5}") for n in range(40))
    )
    assert len({m["id"] for m in results}) == 40
    assert len(await list_all(api)) == 40


async def test_an_llm_failure_is_unavailable_and_stores_nothing(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    fake_llm.fail_next(1, status=503)
    errors = await execute_error(
        api, ADD_MEMORY, input={"text": "I moved to Oslo.", "userId": "alice", "infer": True}
    )
    assert codes(errors) == ["UNAVAILABLE"]
    assert "LLM" in errors[0]["message"]
    assert await list_all(api) == []


async def test_an_embedding_provider_that_is_down_fails_ltm_only(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server(**EMBEDDING_PROVIDER_DOWN)
    api = await connect(url)
    errors = await execute_error(api, ADD_MEMORY, input={"text": "x", "userId": "a"})
    assert codes(errors) == ["UNAVAILABLE"]
    assert "embedding provider" in errors[0]["message"]
    assert codes(await execute_error(api, GET, id="0b6f1a2e")) == ["UNAVAILABLE"]
    # Short-term memory does not depend on it.
    added = await add_messages(api, "chat-1", "still here")
    assert [m["content"] for m in added["messages"]] == ["still here"]


async def test_a_vector_store_that_is_down_fails_ltm_only(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server(
        vector_store_provider="azure_documentdb",
        mongodb_uri="mongodb://maas:secret@127.0.0.1:9/?serverSelectionTimeoutMS=200",
    )
    api = await connect(url)
    for document, variables in (
        (ADD_MEMORY, {"input": {"text": "x", "userId": "a", "infer": False}}),
        (GET, {"id": "0b6f1a2e"}),
    ):
        errors = await execute_error(api, document, **variables)
        assert codes(errors) == ["UNAVAILABLE"]
        assert "vector store" in errors[0]["message"]
        assert "secret" not in str(errors)
    added = await add_messages(api, "chat-1", "still here")
    assert [m["content"] for m in added["messages"]] == ["still here"]
