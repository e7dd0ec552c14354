"""Long-term memory at start-up: a wrong EMBEDDING_DIMS stops the server with a clear error,
and mem0's telemetry is off before mem0 is first used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.embeddings.providers import EmbeddingConfigError
from services.llm import LLMGateway
from stores.event_bus import RedisEventBus


async def test_embedding_dims_that_do_not_match_the_model_stop_start_up(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(embedding_dims=1536)
    llm = LLMGateway(llm_config(settings))
    events = RedisEventBus(redis)
    _, engine = build_ltm(settings, events, llm, asyncio.get_running_loop())
    try:
        with pytest.raises(EmbeddingConfigError, match=r"EMBEDDING_DIMS is 1536 .* 384"):
            await engine.start()
    finally:
        engine.close()
        await events.close()
        await llm.close()


def test_mem0_telemetry_is_off() -> None:
    from mem0.memory import telemetry

    assert telemetry.MEM0_TELEMETRY is False
