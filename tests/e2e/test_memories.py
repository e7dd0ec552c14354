"""Long-term memory end to end: GraphQL over HTTP and WebSocket, the embedded store, real local
embeddings, and mem0's LLM steps against the local OpenAI-compatible test server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gql.client import AsyncClientSession

from tests.e2e.conftest import Connect
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import execute, request
from tests.support.memory_queries import (
    ADD_MEMORY,
    DELETE,
    DELETE_EXPIRED,
    GET,
    LIST,
    MEMORY_EVENTS,
    UPDATE,
    extraction,
    list_all,
    remember,
    search,
)
from tests.support.patience import patience


@pytest.fixture
async def api(fresh_api: AsyncClientSession) -> AsyncClientSession:
    return fresh_api


async def test_search_finds_the_closest_meaning_not_the_shared_words(
    api: AsyncClientSession,
) -> None:
    allergy = await remember(api, "Alice is allergic to peanuts.")
    await remember(api, "Alice has a peanut-coloured car she loves to drive.")
    await remember(api, "Alice works as a nurse in Berlin.")

    hits = await search(api, "Which foods make her ill?")
    assert hits[0]["memory"]["id"] == allergy["id"]
    assert hits[0]["score"] > hits[1]["score"] > 0

    city = await search(api, "Where does she live?", limit=1)
    assert [h["memory"]["text"] for h in city] == ["Alice works as a nurse in Berlin."]


async def test_a_memory_round_trips_with_its_scope_category_and_metadata(
    api: AsyncClientSession,
) -> None:
    memory = await remember(
        api,
        "Prefers aisle seats on long flights.",
        agentId="travel-bot",
        sessionId="chat-7",
        category="PREFERENCE",
        metadata={"topic": "travel", "confidence": 0.9},
    )
    fetched = (await execute(api, GET, id=memory["id"]))["memory"]

    assert fetched["text"] == "Prefers aisle seats on long flights."
    assert (fetched["userId"], fetched["agentId"], fetched["sessionId"]) == (
        "alice",
        "travel-bot",
        "chat-7",
    )
    assert fetched["category"] == "PREFERENCE"
    assert fetched["metadata"] == {"topic": "travel", "confidence": 0.9}
    assert fetched["expiresAt"] is None
    assert [h["event"] for h in fetched["history"]] == ["ADD"]


async def test_extraction_adds_what_the_llm_found_and_history_tracks_every_change(
    api: AsyncClientSession, fake_llm: FakeLLM
) -> None:
    fake_llm.script(extraction("Prefers window seats", "Lives in Lisbon"))
    result = await execute(
        api,
        ADD_MEMORY,
        input={
            "userId": "alice",
            "messages": [
                {"role": "USER", "content": "I always pick a window seat. I moved to Lisbon."},
                {"role": "ASSISTANT", "content": "Noted!"},
            ],
            "category": "FACT",
        },
    )
    added = result["addMemory"]["added"]
    assert sorted(m["text"] for m in added) == ["Lives in Lisbon", "Prefers window seats"]
    assert {m["category"] for m in added} == {"FACT"}
    extraction_call = fake_llm.requests[-1]
    assert extraction_call["response_format"] == {"type": "json_object"}
    assert "I moved to Lisbon" in extraction_call["messages"][-1]["content"]

    lisbon = next(m for m in added if m["text"] == "Lives in Lisbon")
    updated = await execute(
        api, UPDATE, input={"id": lisbon["id"], "text": "Lives in Porto", "metadata": {"v": 2}}
    )
    memory = updated["updateMemory"]["memory"]
    assert memory["text"] == "Lives in Porto"
    assert memory["metadata"] == {"v": 2}
    assert [(h["event"], h["previousText"], h["newText"]) for h in memory["history"]] == [
        ("ADD", None, "Lives in Lisbon"),
        ("UPDATE", "Lives in Lisbon", "Lives in Porto"),
    ]
    hits = await search(api, "Which city is her home?", limit=1)
    assert hits[0]["memory"]["text"] == "Lives in Porto"

    await execute(api, DELETE, id=lisbon["id"])
    assert (await execute(api, GET, id=lisbon["id"]))["memory"] is None
    assert [m["text"] for m in await list_all(api, userId="alice")] == ["Prefers window seats"]


async def test_lists_page_newest_first_by_scope_category_and_metadata(
    api: AsyncClientSession,
) -> None:
    for n in range(7):
        await remember(
            api,
            f"note {n}",
            category="FACT" if n % 2 else "EPISODIC",
            metadata={"n": n, "even": n % 2 == 0},
        )
    await remember(api, "bob's note", user_id="bob")

    texts, after = [], None
    while True:
        page = (await execute(api, LIST, userId="alice", first=3, after=after))["memories"]
        texts += [m["text"] for m in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert texts == [f"note {n}" for n in reversed(range(7))]

    facts = await list_all(api, userId="alice", categories=["FACT"])
    assert [m["text"] for m in facts] == ["note 5", "note 3", "note 1"]
    even = await list_all(api, metadata={"even": True})
    assert [m["text"] for m in even] == ["note 6", "note 4", "note 2", "note 0"]
    assert len(await list_all(api)) == 8


async def test_expired_memories_are_never_returned_and_the_cleanup_counts_them(
    api: AsyncClientSession,
) -> None:
    fleeting = await remember(api, "The parking spot today is B12.", ttlSeconds=1)
    lasting = await remember(api, "The car is a blue Volvo.", ttlSeconds=3600)
    expected = datetime.now(UTC) + timedelta(seconds=3600)
    assert abs(datetime.fromisoformat(lasting["expiresAt"]) - expected) < timedelta(seconds=60)

    await asyncio.sleep(1.2)
    assert (await execute(api, GET, id=fleeting["id"]))["memory"] is None
    assert [h["memory"]["id"] for h in await search(api, "parking spot B12")] == [lasting["id"]]
    assert [m["id"] for m in await list_all(api)] == [lasting["id"]]

    assert (await execute(api, DELETE_EXPIRED))["deleteExpiredMemories"]["deletedCount"] == 1
    assert (await execute(api, DELETE_EXPIRED))["deleteExpiredMemories"]["deletedCount"] == 0
    assert [m["id"] for m in await list_all(api)] == [lasting["id"]]


async def test_the_default_ttl_applies_to_memories_added_without_one(
    live_server: Callable[..., str], connect: Connect
) -> None:
    api = await connect(live_server(ltm_default_ttl_seconds=600))
    memory = await remember(api, "Short-lived by default.")
    forever = await remember(api, "Kept forever.", ttlSeconds=0)

    expires = datetime.fromisoformat(memory["expiresAt"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    assert forever["expiresAt"] is None


@contextlib.asynccontextmanager
async def memory_events(
    ws: AsyncClientSession, writer: AsyncClientSession, **scope: str
) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """A live memoryEvents subscription: probe memories (metadata probe) are written until
    one's event arrives, and their events are left out of the queue."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    live = asyncio.Event()

    async def read() -> None:
        async for event in ws.subscribe(request(MEMORY_EVENTS, **scope)):
            item = event["memoryEvents"]
            if (item["memory"] or {}).get("metadata", {}).get("probe"):
                live.set()
            else:
                queue.put_nowait(item)

    task = asyncio.create_task(read())
    try:
        deadline = asyncio.get_running_loop().time() + patience()
        while not live.is_set():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the subscription never saw a probe")
            await remember(writer, "probe", metadata={"probe": True}, **_as_add_scope(scope))
            with contextlib.suppress(TimeoutError):
                # A poll interval: the probe's event comes within it once the subscription is live.
                await asyncio.wait_for(live.wait(), 0.1)
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _as_add_scope(scope: dict[str, str]) -> dict[str, str]:
    return {"user_id": scope["userId"]} if "userId" in scope else {}


async def test_memory_events_reach_subscribers_of_that_scope_only(
    live_server: Callable[..., str], connect: Connect
) -> None:
    url = live_server()
    api = await connect(url)
    ws = await connect(url, ws=True)
    async with memory_events(ws, api, userId="alice") as events:
        await remember(api, "Bob likes jazz.", user_id="bob")
        added = await remember(api, "Alice likes opera.")
        event = await asyncio.wait_for(events.get(), patience())
        assert (event["type"], event["memoryId"], event["userId"]) == (
            "ADDED",
            added["id"],
            "alice",
        )
        assert event["memory"]["text"] == "Alice likes opera."

        await execute(api, UPDATE, input={"id": added["id"], "text": "Alice loves opera."})
        event = await asyncio.wait_for(events.get(), patience())
        assert (event["type"], event["memory"]["text"]) == ("UPDATED", "Alice loves opera.")

        await execute(api, DELETE, id=added["id"])
        event = await asyncio.wait_for(events.get(), patience())
        assert (event["type"], event["memoryId"], event["memory"]) == (
            "DELETED",
            added["id"],
            None,
        )
        assert events.empty()
