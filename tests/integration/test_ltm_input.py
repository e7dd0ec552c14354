"""The LTM service checks its own input, whatever the HTTP edge lets through: text that is not
valid Unicode and metadata that is not plain JSON are InvalidInput, raised before anything is
embedded or stored, and count no dependency error."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.errors import InvalidInput, LimitExceeded
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import MemorySearch, NewMemory, Scope
from services.metrics import NoMetrics
from stores.event_bus import RedisEventBus

LONE = "\udc00"  # a low surrogate, alone
ALICE = Scope(user_id="alice")


class Counting(NoMetrics):
    def __init__(self) -> None:
        self.dependency_errors: list[str] = []

    def dependency_error(self, dependency: str) -> None:
        self.dependency_errors.append(dependency)


class Embeddings:
    """Counts what reaches the embedder."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        self.calls += 1
        return self.inner.embed(text, memory_action)


@pytest.fixture
async def ltm(
    redis: Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[LongTermMemory, Counting, Embeddings]]:
    settings = make_settings()
    llm, events, metrics = LLMGateway(llm_config(settings)), RedisEventBus(redis), Counting()
    service, engine = build_ltm(settings, events, llm, asyncio.get_running_loop(), metrics)
    memory = await engine.get()
    embeddings = memory.embedding_model = Embeddings(memory.embedding_model)
    try:
        yield service, metrics, embeddings
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


NOT_JSON = {
    "lone-surrogate-value": {"k": LONE},
    "lone-surrogate-key": {"k": {LONE: 1}},
    "nul-in-key": {"k": {"a\x00b": 1}},
    "nan": {"k": math.nan},
    "infinity": {"k": [math.inf]},
    "int-beyond-64-bits": {"k": 2**64},
    "int-below-64-bits": {"k": -(2**63) - 1},
    "a-set": {"k": {1, 2}},
}
TOO_DEEP = {"9-levels": deep(9), "5000-levels": deep(5000)}  # 5000: past json.dumps' recursion


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        *((value, InvalidInput) for value in NOT_JSON.values()),
        *((value, LimitExceeded) for value in TOO_DEEP.values()),
    ],
    ids=[*NOT_JSON, *TOO_DEEP],
)
async def test_metadata_that_is_not_plain_json_is_refused_before_any_work(
    ltm: tuple[LongTermMemory, Counting, Embeddings],
    metadata: dict[str, Any],
    error: type[Exception],
) -> None:
    service, metrics, embeddings = ltm
    kept = (await service.add("t1", NewMemory(ALICE, text="kept", infer=False))).added[0]
    embedded = embeddings.calls
    with pytest.raises(error):
        await service.add("t1", NewMemory(ALICE, text="x", metadata=metadata, infer=False))
    with pytest.raises(error):
        await service.update("t1", kept.id, metadata=metadata)
    assert embeddings.calls == embedded
    assert await service.get("t1", kept.id) == kept
    assert metrics.dependency_errors == []


async def test_metadata_at_the_limits_is_kept_as_sent(
    ltm: tuple[LongTermMemory, Counting, Embeddings],
) -> None:
    service, _, _ = ltm
    metadata = {"deep": deep(7), "big": 2**63 - 1, "small": -(2**63), "x": 1.5, "n": None}
    (memory,) = (
        await service.add("t1", NewMemory(ALICE, text="t", metadata=metadata, infer=False))
    ).added
    assert memory.metadata == metadata


async def test_text_that_is_not_valid_unicode_is_refused_before_the_embedder(
    ltm: tuple[LongTermMemory, Counting, Embeddings],
) -> None:
    service, metrics, embeddings = ltm
    kept = (await service.add("t1", NewMemory(ALICE, text="kept", infer=False))).added[0]
    embedded = embeddings.calls
    refused = [
        service.add("t1", NewMemory(ALICE, text=f"tea {LONE}", infer=False)),
        service.add("t1", NewMemory(ALICE, messages=[("user", f"tea {LONE}", None)], infer=False)),
        service.add("t1", NewMemory(ALICE, messages=[("user", "tea", f"al{LONE}")], infer=False)),
        service.add("t1", NewMemory(ALICE, messages=[("user", "tea", " ")], infer=False)),
        service.add("t1", NewMemory(ALICE, messages=[("user", "tea", "n" * 129)], infer=False)),
        service.search("t1", MemorySearch(f"tea {LONE}", ALICE)),
        service.update("t1", kept.id, text=f"tea {LONE}"),
    ]
    for call in refused:
        with pytest.raises(InvalidInput):
            await call
    assert embeddings.calls == embedded
    page, _ = await service.list("t1", ALICE, None, None, 10, None)
    assert [memory.id for memory, _ in page] == [kept.id]
    assert metrics.dependency_errors == []
