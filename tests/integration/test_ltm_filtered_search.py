"""A search filtered on metadata, through the LTM service and mem0, returns the best match of the
whole filter when the user holds 2,000 memories closer to the query: on the embedded store, and on
DocumentDB (tests/support/mongo_documents.py evaluates vector search as the engine does: k at most
1,000, a pre-filter only on indexed paths) with the metadata key declared in
DOCUMENTDB_INDEXED_METADATA_KEYS or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import MemorySearch, NewMemory, Scope, SearchMode
from services.mem0_engine import EngineHandle
from stores.event_bus import RedisEventBus
from tests.support.mongo_documents import DocumentClient

TENANT = "t1"
CROWD = 2000
QUERY = "where did we go hiking last summer"


@pytest.fixture(params=["embedded", "documentdb", "documentdb-declared"])
async def ltm(
    request: pytest.FixtureRequest, redis: Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[LongTermMemory, EngineHandle]]:
    options: dict[str, Any] = {}
    client = None
    if request.param != "embedded":
        options["vector_store_provider"] = "azure_documentdb"
        client = DocumentClient()
    if request.param == "documentdb-declared":
        options["documentdb_indexed_metadata_keys"] = ["topic"]
    settings = make_settings(**options)
    llm = LLMGateway(llm_config(settings))
    events = RedisEventBus(redis)
    service, engine = build_ltm(
        settings, events, llm, asyncio.get_running_loop(), mongo_client=client
    )
    try:
        yield service, engine
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def _toward(query: np.ndarray, away: np.ndarray, amount: float) -> list[float]:
    vector = query + amount * away
    return [float(x) for x in vector / np.linalg.norm(vector)]


async def test_a_metadata_match_behind_2000_closer_memories_is_found(
    ltm: tuple[LongTermMemory, EngineHandle],
) -> None:
    service, handle = ltm
    alice = Scope(user_id="alice")

    async def remember(text: str, topic: str) -> str:
        new = NewMemory(alice, text=text, infer=False, metadata={"topic": topic})
        (memory,) = (await service.add(TENANT, new)).added
        return memory.id

    template_id = await remember("a common memory", "common")
    match_id = await remember("the one about hiking", "rare")
    engine = await handle.get()
    store = engine.vector_store
    query = np.asarray(await asyncio.to_thread(engine.embedding_model.embed, QUERY, "search"))
    query = query / np.linalg.norm(query)
    away = np.random.default_rng(7).normal(size=query.shape)
    away -= (away @ query) * query  # orthogonal to the query: the angle decides the distance
    away /= np.linalg.norm(away)

    template = (await asyncio.to_thread(store.get, template_id)).payload
    crowd = [_toward(query, away, 0.4 * (i + 1) / CROWD) for i in range(CROWD)]  # cos > 0.92
    payloads = [{**template, "data": f"crowd {i}"} for i in range(CROWD)]
    ids = [f"crowd-{i:04d}" for i in range(CROWD)]
    await asyncio.to_thread(store.insert, crowd, payloads, ids)
    await asyncio.to_thread(store.update, match_id, _toward(query, away, 1.0))  # cos 0.71
    await asyncio.to_thread(store.update, template_id, _toward(query, away, 3.0))

    # By meaning alone: the vector search's filtering is what is tested (the match's rare word
    # would find it by keyword too).
    semantic = SearchMode.SEMANTIC
    unfiltered = await service.search(TENANT, MemorySearch(QUERY, alice, limit=5, mode=semantic))
    assert [hit.memory.id for hit in unfiltered] == ids[:5]

    search = MemorySearch(QUERY, alice, metadata={"topic": "rare"}, limit=5, mode=semantic)
    hits = await service.search(TENANT, search)
    assert [hit.memory.id for hit in hits] == [match_id]
    assert hits[0].memory.metadata == {"topic": "rare"}
