"""Memory.history goes through a DataLoader: the history of N memories costs one read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiodataloader import DataLoader
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from resolvers.context import RequestContext
from schema import schema
from services.llm import LLMGateway
from services.ltm_model import NewMemory, Scope
from stores.event_bus import RedisEventBus


async def test_the_history_of_many_memories_is_one_read(
    redis: Redis, make_settings: Callable[..., Settings], stm: object
) -> None:
    settings = make_settings()
    llm = LLMGateway(llm_config(settings))
    events = RedisEventBus(redis)
    ltm, engine = build_ltm(settings, events, llm, asyncio.get_running_loop())
    try:
        for n in range(6):
            await ltm.add("t1", NewMemory(Scope(user_id="alice"), text=f"fact {n}", infer=False))
        batches: list[list[str]] = []

        async def histories(ids: list[str]) -> list[object]:
            batches.append(list(ids))
            return await ltm.histories(ids)

        context = RequestContext(
            stm=stm,  # type: ignore[arg-type]
            tenant="t1",
            ltm=ltm,
            history_loader=DataLoader(histories, cache=False),
        )
        result = await schema.execute(
            '{ memories(userId: "alice") { nodes { text history { event newText } } } }',
            context_value=context,
        )

        assert result.errors is None
        nodes = result.data["memories"]["nodes"]
        assert len(nodes) == 6
        assert all(node["history"] == [{"event": "ADD", "newText": node["text"]}] for node in nodes)
        assert len(batches) == 1
        assert len(batches[0]) == 6
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()
