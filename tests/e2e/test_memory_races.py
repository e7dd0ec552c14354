"""Concurrent GraphQL requests on one memory, over real HTTP to the real app (embedded store):
the loser of a race is NOT_FOUND, never INTERNAL; exactly one delete succeeds; each change is
one memory event. The same races through the service, on both stores: test_ltm_races.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from redis.asyncio import Redis

from tests.support.graphql_client import API_KEYS, KEY_A, execute
from tests.support.memory_queries import DELETE, DELETE_MANY, GET, UPDATE, remember

ROUNDS = 30
STREAM = f"maas:tenant:{{{API_KEYS[KEY_A]}}}:memory-events"


async def outcome(session: AsyncClientSession, query: str, **variables: Any) -> str:
    """ "ok", or the code of the one error the request answered."""
    try:
        await execute(session, query, **variables)
    except TransportQueryError as error:
        errors = error.errors or []
    else:
        return "ok"
    (only,) = errors
    return str((only.get("extensions") or {}).get("code"))


async def events_of(redis: Redis, memory_id: str) -> list[str]:
    entries = await redis.xrange(STREAM)
    decoded = [json.loads(fields[b"e"]) for _, fields in entries]
    # In the order of the changes (their `at`); concurrent writers may append them in another.
    ordered = sorted((e for e in decoded if e["memoryId"] == memory_id), key=lambda e: e["at"])
    return [e["type"] for e in ordered]


async def test_a_metadata_update_sent_with_a_delete_is_applied_first_or_not_found(
    api: AsyncClientSession, redis: Redis
) -> None:
    outcomes = []
    for n in range(ROUNDS):
        memory = await remember(api, f"race {n}")
        requests = [
            outcome(api, UPDATE, input={"id": memory["id"], "metadata": {"round": n}}),
            outcome(api, DELETE, id=memory["id"]),
        ]
        # Sent in either order: either may be first to reach the store.
        first = n % 2
        answers = await asyncio.gather(requests[first], requests[1 - first])
        update, delete = answers[first], answers[1 - first]
        outcomes.append((update, delete))
        assert delete == "ok"
        assert update in ("ok", "NOT_FOUND")
        updated = ["UPDATED"] if update == "ok" else []
        assert await events_of(redis, memory["id"]) == ["ADDED", *updated, "DELETED"]
        assert (await execute(api, GET, id=memory["id"]))["memory"] is None
    print(f"(update, delete) outcomes over {ROUNDS} rounds:", sorted(set(outcomes)))


async def test_two_deletes_of_one_memory_sent_together_succeed_once(
    api: AsyncClientSession, redis: Redis
) -> None:
    for n in range(ROUNDS):
        memory = await remember(api, f"twice {n}")
        results = await asyncio.gather(
            outcome(api, DELETE, id=memory["id"]), outcome(api, DELETE, id=memory["id"])
        )
        assert sorted(results) == ["NOT_FOUND", "ok"], n
        assert await events_of(redis, memory["id"]) == ["ADDED", "DELETED"]


async def test_delete_memories_naming_one_id_twice_deletes_it_once(
    api: AsyncClientSession, redis: Redis
) -> None:
    for n in range(ROUNDS // 3):
        memory = await remember(api, f"batch {n}")
        result = await execute(api, DELETE_MANY, ids=[memory["id"], memory["id"]])
        items = result["deleteMemories"]["results"]
        assert [r["index"] for r in items] == [0, 1]
        assert sorted("ok" if r["ok"] else r["error"]["code"] for r in items) == [
            "NOT_FOUND",
            "ok",
        ]
        assert await events_of(redis, memory["id"]) == ["ADDED", "DELETED"]
