"""Concurrent writers on one memory, through the LTM service, on both stores: the embedded SQLite
store and DocumentDB (tests/support/mongo_documents.py applies each call atomically, as a server
applies a single-document write). The store decides every change, so the loser of a race gets
NOT_FOUND, exactly one delete succeeds, and history and events record each change once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo.errors import AutoReconnect
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.errors import NotFound
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import MemoryRecord, NewMemory, Scope
from services.mem0_engine import EngineHandle
from services.metrics import NoMetrics
from stores.event_bus import RedisEventBus
from stores.redis_keys import TenantKeys
from tests.support.mongo_documents import DocumentClient

ROUNDS = 40
TENANT = "t1"


class Clock:
    """Epoch seconds the test moves forward."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingMetrics(NoMetrics):
    def __init__(self) -> None:
        self.dependency_errors: list[str] = []

    def dependency_error(self, dependency: str) -> None:
        self.dependency_errors.append(dependency)


@dataclass
class Ltm:
    service: LongTermMemory
    engine: EngineHandle
    redis: Redis
    clock: Clock
    metrics: CountingMetrics
    client: DocumentClient | None

    async def remember(self, text: str, **fields: Any) -> MemoryRecord:
        new = NewMemory(Scope(user_id="alice"), text=text, infer=False, **fields)
        (memory,) = (await self.service.add(TENANT, new)).added
        return memory

    async def history(self, memory_id: str) -> list[str]:
        db = (await self.engine.get()).db
        rows = await asyncio.to_thread(db.get_history, memory_id)
        return [row["event"] for row in rows]

    async def events(self, memory_id: str) -> list[str]:
        stream = TenantKeys.of("maas", TENANT).memory_events
        entries = await self.redis.xrange(stream)
        decoded = [json.loads(fields[b"e"]) for _, fields in entries]
        # In the order of the changes (their `at`); concurrent writers may append them in another.
        mine = [e for e in decoded if e["memoryId"] == memory_id]
        return [e["type"] for e in sorted(mine, key=lambda e: e["at"])]


@pytest.fixture(params=["embedded", "documentdb"])
async def ltm(
    request: pytest.FixtureRequest, redis: Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Ltm]:
    if request.param == "embedded":
        settings, client = make_settings(), None
    else:
        settings = make_settings(vector_store_provider="azure_documentdb")
        client = DocumentClient()
    llm = LLMGateway(llm_config(settings))
    events = RedisEventBus(redis)
    clock, metrics = Clock(), CountingMetrics()
    service, engine = build_ltm(
        settings,
        events,
        llm,
        asyncio.get_running_loop(),
        metrics,
        clock=clock,
        mongo_client=client,
    )
    try:
        yield Ltm(service, engine, redis, clock, metrics, client)
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def outcome(result: object) -> str:
    """ "ok" or the error's code; anything unexpected is raised, with its traceback."""
    if isinstance(result, BaseException):
        if isinstance(result, NotFound):
            return "NOT_FOUND"
        raise result
    return "ok"


async def test_a_metadata_update_racing_a_delete_is_applied_before_it_or_not_found(
    ltm: Ltm,
) -> None:
    seen: list[tuple[str, str]] = []
    for n in range(ROUNDS):
        memory = await ltm.remember(f"race {n}")
        calls = [
            ltm.service.update(TENANT, memory.id, metadata={"round": n}),
            ltm.service.delete(TENANT, memory.id),
        ]
        first = n % 2  # started in either order: either may be first to reach the store
        results = await asyncio.gather(calls[first], calls[1 - first], return_exceptions=True)
        updated, deleted = results[first], results[1 - first]
        update, delete = outcome(updated), outcome(deleted)
        seen.append((update, delete))
        assert delete == "ok"
        if update == "ok":
            assert isinstance(updated, MemoryRecord)
            assert updated.metadata == {"round": n}
            assert await ltm.history(memory.id) == ["ADD", "UPDATE", "DELETE"]
            assert await ltm.events(memory.id) == ["ADDED", "UPDATED", "DELETED"]
        else:
            assert await ltm.history(memory.id) == ["ADD", "DELETE"]
            assert await ltm.events(memory.id) == ["ADDED", "DELETED"]
        assert await ltm.service.get(TENANT, memory.id) is None
    print(f"update/delete outcomes over {ROUNDS} rounds:", sorted(set(seen)))


async def test_a_text_update_racing_a_delete_is_applied_before_it_or_not_found(
    ltm: Ltm,
) -> None:
    for n in range(ROUNDS // 2):
        memory = await ltm.remember(f"text race {n}")
        calls = [
            ltm.service.update(TENANT, memory.id, text=f"changed {n}"),
            ltm.service.delete(TENANT, memory.id),
        ]
        first = n % 2
        results = await asyncio.gather(calls[first], calls[1 - first], return_exceptions=True)
        updated, deleted = results[first], results[1 - first]
        assert outcome(deleted) == "ok"
        expected = ["ADD", "UPDATE", "DELETE"] if outcome(updated) == "ok" else ["ADD", "DELETE"]
        assert await ltm.history(memory.id) == expected
        assert len(await ltm.events(memory.id)) == len(expected)


async def test_of_two_concurrent_deletes_of_one_memory_exactly_one_succeeds(ltm: Ltm) -> None:
    for n in range(ROUNDS):
        memory = await ltm.remember(f"delete race {n}")
        results = await asyncio.gather(
            ltm.service.delete(TENANT, memory.id),
            ltm.service.delete(TENANT, memory.id),
            return_exceptions=True,
        )
        assert sorted(outcome(r) for r in results) == ["NOT_FOUND", "ok"], n
        assert await ltm.history(memory.id) == ["ADD", "DELETE"]
        assert await ltm.events(memory.id) == ["ADDED", "DELETED"]


async def test_a_batch_naming_one_memory_twice_deletes_it_once(ltm: Ltm) -> None:
    for n in range(ROUNDS // 2):
        memory = await ltm.remember(f"batch {n}")
        results = await ltm.service.delete_many(TENANT, [memory.id, memory.id])
        codes = sorted("ok" if r.error is None else r.error.code for r in results)
        assert codes == ["NOT_FOUND", "ok"], n
        assert await ltm.history(memory.id) == ["ADD", "DELETE"]
        assert await ltm.events(memory.id) == ["ADDED", "DELETED"]


async def test_concurrent_expiry_sweeps_delete_and_record_each_memory_once(ltm: Ltm) -> None:
    memories = [await ltm.remember(f"short-lived {n}", ttl_seconds=60) for n in range(30)]
    await ltm.remember("kept")
    ltm.clock.now += 61

    counts = await asyncio.gather(*(ltm.service.delete_expired(TENANT, chunk=4) for _ in range(3)))

    assert sum(counts) == len(memories)
    for memory in memories:
        assert await ltm.history(memory.id) == ["ADD", "DELETE"]
        assert await ltm.events(memory.id) == ["ADDED", "EXPIRED"]


async def test_an_expiry_sweep_racing_deletes_records_each_memory_once(ltm: Ltm) -> None:
    memories = [await ltm.remember(f"soon gone {n}", ttl_seconds=60) for n in range(20)]
    ltm.clock.now += 30  # not expired yet: the deletes may win
    later = ltm.clock.now + 31

    async def sweep_later() -> int:
        await asyncio.sleep(0)
        ltm.clock.now = later
        return await ltm.service.delete_expired(TENANT, chunk=3)

    results = await asyncio.gather(
        *(ltm.service.delete(TENANT, m.id) for m in memories),
        sweep_later(),
        return_exceptions=True,
    )
    *deletes, swept = results
    deleted = [outcome(r) for r in deletes].count("ok")
    assert isinstance(swept, int)
    assert deleted + swept == len(memories)
    for memory in memories:
        assert await ltm.history(memory.id) == ["ADD", "DELETE"]
        assert len(await ltm.events(memory.id)) == 2


async def test_a_change_whose_history_is_lost_still_stands_and_is_reported_once(
    ltm: Ltm,
) -> None:
    if ltm.client is None:
        pytest.skip("the embedded store writes history in the change's own transaction")
    memory = await ltm.remember("history goes down after this")
    history = ltm.client["maas"]["memories_history"]

    def down(*args: Any, **kwargs: Any) -> None:
        raise AutoReconnect("connection reset")

    history.insert_many = down  # type: ignore[method-assign]
    results = await asyncio.gather(
        ltm.service.delete(TENANT, memory.id),
        ltm.service.delete(TENANT, memory.id),
        return_exceptions=True,
    )

    assert sorted(outcome(r) for r in results) == ["NOT_FOUND", "ok"]
    assert await ltm.service.get(TENANT, memory.id) is None
    assert await ltm.events(memory.id) == ["ADDED", "DELETED"]
    assert ltm.metrics.dependency_errors == ["vector_store"]
