"""Quotas and the request rate limit hold across two real `maas serve` processes on one Redis
(and on a 3-master cluster): concurrent writers on both never get past a tenant's limit, the
refused are LIMIT_EXCEEDED with their details, and nothing of a refused write is stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.conftest import BURST, KEY_QUOTA, KEY_RATE, MAX_MEMORIES, MAX_MESSAGES
from tests.support.graphql_client import (
    ADD_MESSAGES,
    SESSION_EVENTS,
    FrameReader,
    message,
    post,
)
from tests.support.memory_queries import ADD_MEMORY, DELETE, LIST
from tests.support.prometheus_samples import sample, scrape

pytestmark = pytest.mark.single_and_cluster

MESSAGES = "query M($id: ID!) { session(id: $id) { messages(first: 100) { nodes { id } } } }"
DELETE_SESSION = "mutation D($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"
SESSIONS = "{ sessions(first: 1) { nodes { id } } }"


@pytest.fixture(scope="module")
def servers(two_processes):
    """Two `maas serve` processes on the test Redis with TENANT_LIMITS."""
    return two_processes


def only_error(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()["errors"]
    return error


async def server_time_s(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


async def test_concurrent_writers_on_two_processes_never_store_past_the_quota(servers, redis):
    async def write(n: int) -> tuple[list[str], httpx.Response]:
        ids = [f"w{n}-{i}" for i in range(3)]
        variables = {
            "sessionId": f"s{n % 5}",
            "messages": [message(f"write {n}", id=id_) for id_ in ids],
        }
        url = servers[n % 2].url
        return ids, await post(url, ADD_MESSAGES, variables, KEY_QUOTA)

    answers = await asyncio.gather(*(write(n) for n in range(16)))
    acknowledged: set[str] = set()
    refused = 0
    for ids, response in answers:
        assert response.status_code == 200  # a quota refuses the field, not the request
        body = response.json()
        if body.get("data"):
            acknowledged.update(ids)
            continue
        refused += 1
        extensions = only_error(response)["extensions"]
        assert extensions["code"] == "LIMIT_EXCEEDED"
        assert (extensions["quota"], extensions["limit"]) == ("messages", MAX_MESSAGES)
        assert extensions["requested"] == 3
        assert MAX_MESSAGES - 3 < extensions["used"] <= MAX_MESSAGES
    # Writes of three each: six fit in twenty, and no seventh on either process.
    assert len(acknowledged) == 18
    assert refused == 10

    stored: dict[str, set[str]] = {}
    for n in range(5):
        response = await post(servers[n % 2].url, MESSAGES, {"id": f"s{n}"}, KEY_QUOTA)
        session = response.json()["data"]["session"]
        stored[f"s{n}"] = {m["id"] for m in session["messages"]["nodes"]} if session else set()
    assert set().union(*stored.values()) == acknowledged  # nothing of a refused write

    # Deleting a session (on one process) frees its messages for a write on the other.
    fuller = max(stored, key=lambda s: len(stored[s]))
    deleted = await post(servers[1].url, DELETE_SESSION, {"id": fuller}, KEY_QUOTA)
    assert deleted.json()["data"]
    _, retried = await write(100)
    assert retried.json()["data"]["addMessages"]["messages"]


async def rejections_of_requests(servers) -> float:
    scraped = [await scrape(server.url) for server in servers]
    return sum(sample(s, "maas_limit_rejections_total", limit="requests") for s in scraped)


async def test_the_rate_limit_admits_one_burst_across_both_processes(servers, redis):
    rejections_before = await rejections_of_requests(servers)
    started = await server_time_s(redis)
    answers = await asyncio.gather(
        *(post(servers[n % 2].url, SESSIONS, None, KEY_RATE) for n in range(20))
    )
    elapsed = await server_time_s(redis) - started
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert BURST <= len(admitted) <= BURST + 0.001 * elapsed
    assert all("errors" not in a.json() for a in admitted)
    for answer in refused:
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 1
        error = only_error(answer)
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert 0 < error["extensions"]["retryAfterSeconds"] <= 1000
        assert answer.json().get("data") is None
    assert await rejections_of_requests(servers) - rejections_before == len(refused)


async def test_a_subscribe_is_a_request_and_its_events_are_not(servers, redis):
    async def write(server: int, text: str) -> httpx.Response:
        variables = {"sessionId": "s", "messages": [message(text)]}
        return await post(servers[server].url, ADD_MESSAGES, variables, KEY_RATE)

    for n in range(3):  # requests 1-3
        assert (await write(n % 2, f"before {n}")).status_code == 200
    # Request 4: from the first event on, so every one of them arrives, without a race.
    reader = FrameReader(
        servers[0].url, KEY_RATE, SESSION_EVENTS, {"sessionId": "s", "after": "0-0"}
    )
    async with reader:
        events = [json.loads(await reader.frame()) for _ in range(3)]
        assert (await write(1, "live")).status_code == 200  # request 5, the burst's last
        events.append(json.loads(await reader.frame()))
        assert [e["payload"]["data"]["sessionEvents"]["type"] for e in events] == [
            "MESSAGES_ADDED"
        ] * 4
        # Four events delivered, yet the sixth request is the first refused: over HTTP...
        assert (await write(0, "too soon")).status_code == 429
        # ...and a subscribe on the other process's WebSocket.
        second = FrameReader(servers[1].url, KEY_RATE, SESSION_EVENTS, {"sessionId": "s"})
        async with second:
            refusal = json.loads(await second.frame())
    errors = refusal["payload"]["errors"] if refusal["type"] == "next" else refusal["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["LIMIT_EXCEEDED"]
    assert errors[0]["extensions"]["retryAfterSeconds"] > 0


async def test_concurrent_memory_adds_on_two_processes_never_hold_past_the_quota(servers, redis):
    user = f"u-{uuid.uuid4().hex[:8]}"

    async def add(n: int) -> httpx.Response:
        variables = {"input": {"text": f"fact number {n}", "userId": user, "infer": False}}
        return await post(servers[n % 2].url, ADD_MEMORY, variables, KEY_QUOTA)

    answers = await asyncio.gather(*(add(n) for n in range(8)))
    added = [a.json()["data"]["addMemory"]["added"][0]["id"] for a in answers if a.json()["data"]]
    refused = [only_error(a)["extensions"] for a in answers if not a.json()["data"]]
    assert len(added) == MAX_MEMORIES
    assert len(refused) == 8 - MAX_MEMORIES
    assert {(e["code"], e["quota"], e["limit"]) for e in refused} == {
        ("LIMIT_EXCEEDED", "memories", MAX_MEMORIES)
    }
    listed = await post(servers[0].url, LIST, {"userId": user}, KEY_QUOTA)
    assert sorted(m["id"] for m in listed.json()["data"]["memories"]["nodes"]) == sorted(added)

    assert (await post(servers[1].url, DELETE, {"id": added[0]}, KEY_QUOTA)).json()["data"]
    assert (await add(100)).json()["data"]["addMemory"]["added"]
    assert (await add(101)).json()["data"] is None
