"""The request rate limiter and the memory count in Redis, shared by every client (server
process) of the same Redis: one server, and a 3-master cluster."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from services.errors import LimitExceeded
from services.rate_limit import RequestRateLimiter
from services.tenant_limits import LimitPolicy, TenantLimits
from stores.redis_limits import RedisLimitStore

pytestmark = pytest.mark.single_and_cluster

A_THOUSAND_SECONDS_US = 1_000_000_000


async def server_time_us(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return seconds * 1_000_000 + micros


async def test_a_burst_goes_through_and_the_next_request_is_told_when_to_come_back(
    redis: Redis,
):
    store = RedisLimitStore(redis)
    waits = [await store.take_request("t", A_THOUSAND_SECONDS_US, burst=3) for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    # One request per 1000 s: the next is allowed 1000 s after the first.
    assert A_THOUSAND_SECONDS_US - 60_000_000 < waits[3] <= A_THOUSAND_SECONDS_US
    assert await store.take_request("another tenant", A_THOUSAND_SECONDS_US, burst=3) == 0


async def test_requests_admitted_never_exceed_burst_plus_rate_times_the_servers_elapsed_time(
    redis: Redis,
):
    # Two clients (as two server processes) hammer one tenant's limit of 20/s, burst 5. The
    # bound comes from the server's own clock, however slow this machine is.
    stores = [RedisLimitStore(redis), RedisLimitStore(redis)]
    rate, burst = 20, 5
    started = await server_time_us(redis)

    async def client(store: RedisLimitStore) -> int:
        admitted = 0
        for _ in range(60):
            if await store.take_request("t", 1_000_000 // rate, burst) == 0:
                admitted += 1
        return admitted

    admitted = sum(await asyncio.gather(*(client(store) for store in stores)))
    elapsed_s = (await server_time_us(redis) - started) / 1_000_000
    assert burst <= admitted <= burst + rate * elapsed_s


async def test_the_limiter_refuses_with_a_retry_hint_only_tenants_over_their_own_rate(
    redis: Redis,
):
    policy = LimitPolicy(
        TenantLimits(requests_per_second=0.001, burst=2),
        {"big": TenantLimits(requests_per_second=0.001, burst=4), "free": TenantLimits()},
    )
    limiter = RequestRateLimiter(RedisLimitStore(redis), policy)
    for tenant, allowed in (("small", 2), ("big", 4), ("free", 50)):
        for _ in range(allowed):
            await limiter.admit(tenant)
        if tenant == "free":
            continue
        with pytest.raises(LimitExceeded) as refused:
            await limiter.admit(tenant)
        details = refused.value.details
        assert 0 < details["retryAfterSeconds"] <= 1000
        assert details["burst"] == allowed


async def test_the_memory_count_reserves_up_to_the_limit_and_never_goes_below_zero(
    redis: Redis,
):
    store = RedisLimitStore(redis)
    assert (await store.reserve_memories("t", 2, limit=3)).reserved
    refused = await store.reserve_memories("t", 2, limit=3)
    assert (refused.reserved, refused.used, refused.sweep_due) == (False, 2, True)
    assert not (await store.reserve_memories("t", 2, limit=3)).sweep_due  # one per interval
    await store.release_memories("t", 1)
    await store.release_memories("t", 5)  # memories stored before the count existed
    assert await store.memory_count("t") == 0
    assert (await store.reserve_memories("t", 3, limit=3)).reserved
    assert (await store.reserve_memories("t", 5, limit=0)).reserved  # no quota: counts only
    assert await store.memory_count("t") == 8
