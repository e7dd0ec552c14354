"""The Redis event bus: fan-out within a process, delivery across processes, slow readers."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from stores.event_bus import RedisEventBus, SubscriberTooSlow


async def _next(payloads, within: float = 2.0) -> str:
    return await asyncio.wait_for(anext(payloads), within)


async def _until_live(bus: RedisEventBus, channel: str, payloads) -> None:
    """Publish probes until the subscription sees one (SUBSCRIBE has no ack we can await)."""
    for _ in range(50):
        await bus.publish(channel, "probe")
        try:
            assert await _next(payloads, 0.1) == "probe"
            return
        except TimeoutError:
            continue
    raise AssertionError("subscription never became live")


async def test_a_payload_reaches_subscribers_in_another_process(redis_url: str, redis: Redis):
    # Two clients and two buses stand for two server processes.
    other = Redis.from_url(redis_url)
    here, there = RedisEventBus(redis), RedisEventBus(other)
    try:
        async with here.subscribe("c") as first, here.subscribe("c") as second:
            await _until_live(there, "c", first)
            assert await _next(second) == "probe"
            for n in range(3):
                await there.publish("c", f"event {n}")
            assert [await _next(first) for _ in range(3)] == ["event 0", "event 1", "event 2"]
            assert [await _next(second) for _ in range(3)] == ["event 0", "event 1", "event 2"]
    finally:
        await here.close()
        await there.close()
        await other.aclose()


async def test_a_subscriber_that_falls_behind_is_told_so(redis: Redis):
    bus = RedisEventBus(redis, queue_size=3)
    try:
        async with bus.subscribe("c") as payloads:
            await _until_live(bus, "c", payloads)
            for n in range(10):
                await bus.publish("c", f"event {n}")
            await asyncio.sleep(0.2)  # let the reader fill the queue past its size
            # Ten events into a queue of three: the reader learns it missed events rather
            # than silently reading a gap.
            with pytest.raises(SubscriberTooSlow):
                await _next(payloads)
    finally:
        await bus.close()
