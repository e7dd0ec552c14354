"""Per-tenant request rate and memory count in Redis, in the tenant's slot, so every server
process shares them."""

from __future__ import annotations

from dataclasses import dataclass

from stores.redis_client import RedisClient
from stores.redis_keys import TenantKeys
from stores.redis_scripts import Scripts
from stores.traced import traced


@dataclass(frozen=True)
class MemoryReservation:
    reserved: bool
    used: int  # memories counted before it: held, or being added
    sweep_due: bool = False  # this caller may delete the tenant's expired memories now


@traced(
    "limit_store", "redis", ("take_request", "reserve_memories", "release_memories", "memory_count")
)
class RedisLimitStore:
    """The request rate limiter's state and the memory counters of each tenant."""

    def __init__(
        self, redis: RedisClient, prefix: str = "maas", sweep_interval_ms: int = 1_000
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._scripts = Scripts(redis)
        self._sweep_interval_ms = sweep_interval_ms

    def _keys(self, tenant: str) -> TenantKeys:
        return TenantKeys.of(self._prefix, tenant)

    async def take_request(self, tenant: str, interval_us: int, burst: int) -> int:
        """One request against the tenant's rate (one every interval_us, burst at once):
        0 when it may go ahead, else the µs until it would. One round trip."""
        return int(
            await self._scripts.rate_limit(
                keys=[self._keys(tenant).request_rate], args=[interval_us, burst]
            )
        )

    async def reserve_memories(self, tenant: str, n: int, limit: int) -> MemoryReservation:
        """Count n memories about to be added, if they fit in limit (0: count only)."""
        keys = self._keys(tenant)
        raw = await self._scripts.reserve_memories(
            keys=[keys.memory_count, keys.memory_sweep],
            args=[limit, n, self._sweep_interval_ms],
        )
        if raw[0]:
            return MemoryReservation(True, int(raw[1]))
        return MemoryReservation(False, int(raw[1]), bool(raw[2]))

    async def release_memories(self, tenant: str, n: int) -> None:
        """Uncount n memories (reserved and not added, or removed); never below zero."""
        await self._scripts.release_memories(keys=[self._keys(tenant).memory_count], args=[n])

    async def memory_count(self, tenant: str) -> int:
        """Memories counted: held, or being added."""
        return int(await self._redis.get(self._keys(tenant).memory_count) or 0)
