"""Quotas per tenant: messages held in short-term memory, memories held in long-term memory.

Counts live in Redis, in the tenant's slot, so every server process enforces the same quota.
A write that does not fit fails whole with LIMIT_EXCEEDED (details: quota, limit, used,
requested) and stores nothing. There is no retryAfterSeconds: room comes back only when the
tenant deletes something, or sessions or memories expire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.errors import LimitExceeded, Unavailable
from services.metrics import NO_METRICS, ServiceMetrics
from services.tenant_limits import LimitPolicy
from stores.message_ledger import MessageLedger, Reservation
from stores.redis_client import is_redis_down
from stores.redis_limits import RedisLimitStore
from stores.redis_messages import ReservationTooSmall

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Admission:
    """What a write may store: at most max_new new messages (-1: any) under the lease."""

    lease: str = ""
    max_new: int = -1


UNLIMITED = Admission()
# Writes tried before giving up on a session that keeps losing the messages a write repeats.
_ATTEMPTS = 3


def _exceeded(quota: str, limit: int, used: int, requested: int) -> LimitExceeded:
    what = {"messages": "stored messages", "memories": "memories"}[quota]
    return LimitExceeded(
        f"Quota of {limit} {what} reached ({used} held or being written; this write adds "
        f"{requested}). Delete some, or wait for them to expire.",
        quota=quota,
        limit=limit,
        used=used,
        requested=requested,
    )


class MessageQuota:
    """Holds each tenant to its quota of messages its sessions hold (summaries included)."""

    def __init__(
        self, ledger: MessageLedger, policy: LimitPolicy, metrics: ServiceMetrics = NO_METRICS
    ) -> None:
        self._ledger = ledger
        self._policy = policy
        self._metrics = metrics

    async def write(
        self,
        tenant: str,
        session_id: str,
        message_ids: list[str],
        write: Callable[[Admission], Awaitable[T]],
    ) -> T:
        """Run `write` under a reservation for these messages; LimitExceeded, and nothing
        written, when they do not fit."""
        limit = self._policy.for_tenant(tenant).max_messages
        if not limit:
            return await write(UNLIMITED)
        for _ in range(_ATTEMPTS):
            admission = await self._admit(tenant, session_id, message_ids, limit)
            try:
                return await write(admission)
            except ReservationTooSmall:
                # The session lost messages this write was to duplicate (deleted since they
                # were counted): nothing was written; count again.
                if admission.lease:
                    await self._ledger.release(tenant, admission.lease)
        # Nothing written; the same write again (same ids) is safe.
        raise Unavailable("The session kept changing under this write; retry it.")

    async def _admit(
        self, tenant: str, session_id: str, message_ids: list[str], limit: int
    ) -> Admission:
        n = len(message_ids)
        found = await self._ledger.reserve(tenant, session_id, n, limit)
        if found.lease is None and found.sweep_due:
            # The ledger may count more than is stored (see MessageLedger.reserve): correct
            # what can be proven, then try once more.
            await self._correct(tenant, found.stale_sessions)
            found = await self._ledger.reserve(tenant, session_id, n, limit)
        if found.lease is not None:
            return Admission(found.lease, n)
        # A retried write needs room only for the messages it has not stored yet.
        new = await self._ledger.count_new(tenant, session_id, message_ids)
        if new == 0:
            return Admission("", 0)
        if new < n:
            retried: Reservation = await self._ledger.reserve(tenant, session_id, new, limit)
            if retried.lease is not None:
                return Admission(retried.lease, new)
            found = retried
        self._metrics.limit_rejected("messages")
        raise _exceeded("messages", limit, found.used, new)

    async def _correct(self, tenant: str, stale_sessions: list[str]) -> None:
        """Best effort: with a cluster master down, the sessions on it stay counted as they
        are (too high, never too low) and the write is judged on that."""
        try:
            await self._ledger.settle(tenant, stale_sessions)
            await self._ledger.sweep_expired(tenant)
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            log.warning("message count not corrected: %s", type(exc).__name__)


class MemoryQuota:
    """Holds each tenant to its quota of long-term memories, with a count in Redis.

    The count is reserved before an add and released when the add fails or adds fewer, when a
    memory is deleted, and when deleteExpiredMemories (or a sweep when over quota) removes
    expired ones; the store's conditional deletes report each removal once, however many
    deletes race for it. Its limits: memories past their TTL count until deleted; an add that fails
    after its memory was written (the history write failing after the vector insert) leaves it
    uncounted; memories stored before this count existed are not in it. It is kept for tenants
    without a quota too (so one can be set later); for them Redis being down costs nothing."""

    def __init__(
        self, store: RedisLimitStore, policy: LimitPolicy, metrics: ServiceMetrics = NO_METRICS
    ) -> None:
        self._store = store
        self._policy = policy
        self._metrics = metrics

    def _limit(self, tenant: str) -> int:
        return self._policy.for_tenant(tenant).max_memories

    async def reserve(
        self,
        tenant: str,
        n: int,
        sweep: Callable[[], Awaitable[object]] | None = None,
        *,
        already: int = 0,
    ) -> bool:
        """Count n memories about to be added (by a write that has `already` counted some);
        LimitExceeded when they do not fit (after `sweep`, deleting expired memories, when one
        is due). False when they could not be counted (Redis down, the tenant without a
        quota): release none of them then."""
        limit = self._limit(tenant)
        try:
            found = await self._store.reserve_memories(tenant, n, limit)
            if not found.reserved and found.sweep_due and sweep is not None:
                await sweep()
                found = await self._store.reserve_memories(tenant, n, limit)
        except Exception as exc:
            self._redis_down(tenant, exc)
            return False
        if found.reserved:
            return True
        self._metrics.limit_rejected("memories")
        raise _exceeded("memories", limit, found.used - already, n + already)

    async def release(self, tenant: str, n: int) -> None:
        """Uncount n memories: reserved and not added, or removed. With Redis down the count
        stays too high (logged): the change it follows is done already."""
        if not n:
            return
        try:
            await self._store.release_memories(tenant, n)
        except Exception as exc:
            if not is_redis_down(exc):
                raise
            self._metrics.dependency_error("redis")
            log.warning("memory count not lowered: Redis is unavailable (%s)", type(exc).__name__)

    def _redis_down(self, tenant: str, error: Exception) -> None:
        """Redis down: UNAVAILABLE for a tenant with a memory quota (it must hold); for one
        without, the count misses this change (logged) and the operation goes ahead."""
        if not is_redis_down(error):
            raise error
        self._metrics.dependency_error("redis")
        if self._limit(tenant):
            raise Unavailable("The memory quota is unavailable; try again shortly.") from error
        log.warning("memory count not updated: Redis is unavailable (%s)", type(error).__name__)
