"""A verbatim batch through the LTM service costs one batched encode, and stores exactly what
adding its items one by one stores: payloads, hashes, history rows, events, in input order, a
failing item its own. Encodes are counted by an encoder injected into the engine, not timed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from maas.app import WORKER_THREADS, build_memory_quota, llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.errors import InvalidInput, LimitExceeded, Unavailable
from services.llm import LLMGateway
from services.ltm import LongTermMemory, LtmOptions
from services.ltm_limits import LtmLimits
from services.ltm_model import NewMemory, Scope
from services.verbatim_batch import new_row, write_rows
from stores.embedded_vectors import EmbeddedVectorStore
from stores.event_bus import RedisEventBus
from stores.redis_keys import TenantKeys
from stores.sqlite_history import SQLiteHistoryStore
from tests.support.fake_llm import FakeLLM

TEXTS = [f"Fact number {i}: the user keeps {i} plants on the balcony." for i in range(12)]
ALICE = Scope(user_id="alice")


class CountingEncoder:
    """The engine's MiniLM encoder, counting encode calls; `down` makes it fail as a remote
    provider that cannot be reached does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []  # texts per call
        self.down = False

    def encode(self, texts: list[str]) -> Any:
        self.calls.append(len(texts))
        if self.down:
            raise ConnectionError("the embedding provider is down")
        return self.inner.encode(texts)


@dataclass
class Service:
    ltm: LongTermMemory
    memory: Any  # mem0's engine
    encoder: CountingEncoder
    redis: Redis
    prefix: str

    async def stored(self, memory_id: str) -> dict[str, Any]:
        store = self.memory.vector_store
        hit = await asyncio.to_thread(store.get, memory_id)
        (blob,) = (
            store.file.connection()
            .execute("SELECT vector FROM vectors WHERE id = ?", (memory_id,))
            .fetchone()
        )
        return {"payload": hit.payload, "vector": np.frombuffer(blob, dtype=np.float32)}

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        return (await asyncio.to_thread(self.memory.db.get_histories, [memory_id]))[memory_id]

    async def events(self, tenant: str) -> int:
        return int(await self.redis.xlen(TenantKeys.of(self.prefix, tenant).memory_events))


@pytest.fixture
async def service(redis: Redis, make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    settings = make_settings()
    llm, events = LLMGateway(llm_config(settings)), RedisEventBus(redis)
    ltm, engine = build_ltm(settings, events, llm, asyncio.get_running_loop())
    memory = await engine.get()
    local = memory.embedding_model.inner
    encoder = local.encoder = CountingEncoder(local.encoder)
    try:
        yield Service(ltm, memory, encoder, redis, settings.redis_key_prefix)
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def verbatim(text: str, scope: Scope = ALICE, **fields: Any) -> NewMemory:
    return NewMemory(scope, text=text, infer=False, **fields)


async def test_a_verbatim_batch_is_embedded_in_one_encode(service: Service) -> None:
    results = await service.ltm.add_many("t1", [verbatim(t) for t in TEXTS])
    assert service.encoder.calls == [len(TEXTS)]
    assert [r.value.added[0].text for r in results if r.value] == TEXTS
    assert len(service.memory.embedding_model.primed) == 0


async def test_a_messages_add_embeds_its_messages_in_one_encode(service: Service) -> None:
    messages = [
        ("user", "I moved to Lisbon.", None),
        ("system", "ignored", None),
        ("assistant", "Noted.", None),
    ]
    result = await service.ltm.add("t1", NewMemory(ALICE, messages=messages, infer=False))
    assert [m.text for m in result.added] == ["I moved to Lisbon.", "Noted."]
    assert service.encoder.calls == [2]


async def test_a_batch_stores_what_single_adds_store(service: Service) -> None:
    items = [verbatim(t, metadata={"n": i}, ttl_seconds=3600) for i, t in enumerate(TEXTS)]
    singles = [(await service.ltm.add("one", item)).added[0] for item in items]
    batched = [r.value.added[0] for r in await service.ltm.add_many("many", items) if r.value]
    for single, batch in zip(singles, batched, strict=True):
        a, b = await service.stored(single.id), await service.stored(batch.id)
        differ = {"tenant", "user_id", "created_at", "updated_at", "expires_at"}
        assert {k: v for k, v in a["payload"].items() if k not in differ} == {
            k: v for k, v in b["payload"].items() if k not in differ
        }
        assert a["payload"]["hash"] == b["payload"]["hash"]
        np.testing.assert_allclose(a["vector"], b["vector"], atol=1e-5)
        assert (batch.text, batch.metadata, batch.category) == (
            single.text,
            single.metadata,
            single.category,
        )
        keep = ("event", "old_memory", "new_memory", "role", "is_deleted")
        assert [{k: h.get(k) for k in keep} for h in await service.history(batch.id)] == [
            {k: h.get(k) for k in keep} for h in await service.history(single.id)
        ]
    assert await service.events("many") == await service.events("one") == len(TEXTS)


async def test_a_failing_item_stays_its_own_and_is_not_embedded(service: Service) -> None:
    items = [verbatim(t) for t in TEXTS[:3]]
    items.insert(1, verbatim("   ", scope=Scope()))  # no scope: refused before any work
    results = await service.ltm.add_many("t1", items)
    assert isinstance(results[1].error, InvalidInput)
    assert [r.value.added[0].text for r in results if r.value] == TEXTS[:3]
    assert service.encoder.calls == [3]
    assert await service.events("t1") == 3


async def test_a_provider_down_fails_every_item_unavailable_and_stores_nothing(
    service: Service,
) -> None:
    service.encoder.down = True
    results = await service.ltm.add_many("t1", [verbatim(t) for t in TEXTS[:4]])
    assert all(isinstance(r.error, Unavailable) for r in results)
    count = (await asyncio.to_thread(service.memory.vector_store.col_info))["count"]
    assert count == 0
    assert await service.events("t1") == 0
    assert len(service.memory.embedding_model.primed) == 0


async def test_a_batch_call_that_fails_falls_back_to_one_encode_per_text(
    service: Service,
) -> None:
    real = service.encoder.inner.encode

    def no_batches(texts: list[str]) -> Any:
        if len(texts) > 1:
            raise ValueError("this model refuses batches")
        return real(texts)

    service.encoder.inner = type("Inner", (), {"encode": staticmethod(no_batches)})()
    results = await service.ltm.add_many("t1", [verbatim(t) for t in TEXTS[:4]])
    assert [r.value.added[0].text for r in results if r.value] == TEXTS[:4]
    assert service.encoder.calls == [4, 1, 1, 1, 1]


async def test_a_mixed_batch_answers_each_item_in_input_order(service: Service) -> None:
    messages = [("user", "I moved to Lisbon.", None), ("assistant", "Noted.", None)]
    items = [
        verbatim(TEXTS[0]),
        NewMemory(ALICE, messages=messages, infer=False),  # two memories: added on its own
        verbatim("   ", scope=Scope()),
        verbatim(TEXTS[1]),
    ]
    results = await service.ltm.add_many("t1", items)
    assert [[m.text for m in r.value.added] if r.value else None for r in results] == [
        [TEXTS[0]],
        ["I moved to Lisbon.", "Noted."],
        None,
        [TEXTS[1]],
    ]
    assert isinstance(results[2].error, InvalidInput)
    assert await service.events("t1") == 4


async def test_a_batch_past_the_quota_adds_what_fits_and_refuses_the_rest(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(quota_max_memories=3)
    llm, events = LLMGateway(llm_config(settings)), RedisEventBus(redis)
    quota = build_memory_quota(settings, redis)
    ltm, engine = build_ltm(settings, events, llm, asyncio.get_running_loop(), quota=quota)
    try:
        results = await ltm.add_many("t1", [verbatim(t) for t in TEXTS[:5]])
        refused = [r.error for r in results if r.error is not None]
        assert len(refused) == 2
        assert all(isinstance(error, LimitExceeded) for error in refused)
        count = (await asyncio.to_thread((await engine.get()).vector_store.col_info))["count"]
        assert count == 3
        # What was refused was not counted: deleting one makes room for exactly one more.
        added = [r.value.added[0].id for r in results if r.value]
        await ltm.delete("t1", added[0])
        again = await ltm.add_many("t1", [verbatim(t) for t in TEXTS[5:7]])
        assert [r.error is None for r in again].count(True) == 1
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def test_a_row_the_store_refuses_fails_alone_and_gets_no_history(tmp_path: Path) -> None:
    path = tmp_path / "memories.sqlite3"
    store = EmbeddedVectorStore("memories", 3, str(path))
    history = SQLiteHistoryStore(path)
    ids = {"user_id": "t1:alice"}
    rows = [
        new_row({"role": "user", "content": text}, ids, {"tenant": "t1"}, vector)
        for text, vector in [("a", [1.0, 0, 0]), ("b", [1.0, 0]), ("c", [0, 1.0, 0])]
    ]
    try:
        write_rows(store, history, rows)  # "b" has a vector of the wrong size
        assert [row.error is None for row in rows] == [True, False, True]
        assert isinstance(rows[1].error, ValueError)
        assert [store.get(row.memory_id) is not None for row in rows] == [True, False, True]
        histories = history.get_histories([row.memory_id for row in rows])
        assert sorted(histories) == sorted([rows[0].memory_id, rows[2].memory_id])
    finally:
        store.close()
        history.close()


async def test_extractions_in_flight_stay_below_the_worker_threads(
    redis: Redis, make_settings: Callable[..., Settings], fake_llm: FakeLLM
) -> None:
    # mem0 waits for each extraction's LLM call in a worker thread; with every thread waiting,
    # an LLM call that needs one itself never finishes. A batch wider than the gate waits on
    # the gate, holding no thread.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS))
    gate = LtmOptions(limits=LtmLimits()).extractions_in_flight
    assert gate < WORKER_THREADS
    settings = make_settings(ltm_batch_concurrency=50, ltm_max_batch_size=50)
    llm, events = LLMGateway(llm_config(settings)), RedisEventBus(redis)
    ltm, engine = build_ltm(settings, events, llm, loop)
    facts = [f"The user owns {i} bicycles." for i in range(gate + 6)]
    fake_llm.set_delay(0.2)
    fake_llm.script(*(json.dumps({"memory": [{"text": fact}]}) for fact in facts))
    try:
        items = [NewMemory(Scope(user_id=f"u{i}"), text=f, infer=True) for i, f in enumerate(facts)]
        results = await ltm.add_many("t1", items)
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()
    assert [r.error for r in results] == [None] * len(facts)
    assert fake_llm.max_in_flight <= gate
