"""The tenant's ledger of stored messages, in the tenant's slot: how many messages each session
holds, their sum, and reservations for writes in flight.

On Redis Cluster a session's keys live in another slot than the tenant's, so no script can
change a session and the tenant's count at once. The count follows the sessions instead: every
session event carries the session's message count after it, and the step that copies events
into the tenant's slot (fan_in.lua, in the session's order, each once) sets the session's
entry from it. So appends, summaries and deletes move the count exactly, once their events are
copied. Until then a write is covered by the reservation its writer took before writing, which
that same copy releases. Sessions that expire write no event: their entries stay (too high,
never too low) until a sweep or a session listing sees them gone.

Acknowledged writes therefore never take a tenant past its quota: a write is acknowledged only
after its reservation fitted, and the ledger (counts plus reservations) never counts fewer
messages than are stored. Where it counts more, see `MessageLedger.reserve`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from stores.redis_client import RedisClient
from stores.redis_keys import SessionKeys, TenantKeys
from stores.redis_messages import RedisMessageStore
from stores.redis_scripts import Scripts
from stores.traced import traced


@dataclass(frozen=True)
class Reservation:
    """A reservation (its lease), or why there was none."""

    lease: str | None  # None: the write does not fit
    used: int  # messages counted before it: held by sessions, or reserved by writes in flight
    sweep_due: bool = False  # this caller may look for expired sessions and reservations now
    stale_sessions: list[str] = field(default_factory=list)  # sessions with expired reservations


@traced(
    "message_ledger",
    "redis",
    ("reserve", "release", "count_new", "settle", "sweep_expired", "counted"),
)
class MessageLedger:
    """Reserves room in a tenant's quota of stored messages and keeps the count honest."""

    def __init__(
        self,
        redis: RedisClient,
        sessions: RedisMessageStore,
        prefix: str = "maas",
        *,
        lease_ms: int = 60_000,
        sweep_interval_ms: int = 1_000,
        sweep_batch: int = 100,
    ) -> None:
        self._redis = redis
        self._sessions = sessions
        self._prefix = prefix
        self._scripts = Scripts(redis)
        self._lease_ms = lease_ms
        self._sweep_interval_ms = sweep_interval_ms
        self._sweep_batch = sweep_batch

    def _keys(self, tenant: str) -> TenantKeys:
        return TenantKeys.of(self._prefix, tenant)

    async def reserve(self, tenant: str, session_id: str, n: int, limit: int) -> Reservation:
        """Room for a write of up to n new messages to the session, if the tenant has it.

        Conservative where the ledger counts more than is stored: sessions expired since their
        last event (until swept), writes whose copy into the tenant's slot failed (until the
        session's next copy), and reservations of writers that died (until they expire, and
        then until their session's next copy; see fan_in.lua)."""
        keys = self._keys(tenant)
        raw = await self._scripts.reserve_messages(
            keys=[keys.message_ledger, keys.message_leases, keys.message_sweep],
            args=[limit, n, uuid.uuid4().hex, session_id, self._lease_ms, self._sweep_interval_ms],
        )
        if raw[0]:
            return Reservation(raw[2].decode(), int(raw[1]))
        return Reservation(None, int(raw[1]), bool(raw[2]), [s.decode() for s in raw[3:]])

    async def release(self, tenant: str, lease: str) -> None:
        """Give back a reservation whose write stored nothing."""
        keys = self._keys(tenant)
        await self._scripts.release_lease(
            keys=[keys.message_ledger, keys.message_leases], args=[lease]
        )

    async def count_new(self, tenant: str, session_id: str, message_ids: list[str]) -> int:
        """How many of these ids the session has never stored (a retry's are there already)."""
        keys = SessionKeys.of(self._prefix, tenant, session_id)
        return int(await self._scripts.count_new(keys=[keys.msgs, keys.folded], args=message_ids))

    async def settle(self, tenant: str, session_ids: list[str]) -> None:
        """Count every event these sessions wrote, releasing their expired reservations."""
        for session_id in session_ids:
            await self._sessions.settle(tenant, session_id)

    async def sweep_expired(self, tenant: str) -> int:
        """Forget the sessions that expired among the next batch of the tenant's session index
        (a cursor in the ledger walks it, oldest activity first, wrapping around); how many."""
        keys = self._keys(tenant)
        offset = int(await self._redis.hget(keys.message_ledger, "_sweep") or 0)
        batch = await self._redis.zrange(
            keys.sessions, offset, offset + self._sweep_batch - 1, withscores=True
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, _ in batch:
                pipe.exists(SessionKeys.of(self._prefix, tenant, session_id.decode()).meta)
            exists = await pipe.execute()
        gone: list[str | int] = []
        for (session_id, score), alive in zip(batch, exists, strict=True):
            if not alive:
                gone += [session_id.decode(), int(score)]
        if gone:
            await self._scripts.forget_sessions(
                keys=[keys.sessions, keys.message_ledger], args=gone
            )
        more = len(batch) == self._sweep_batch
        await self._redis.hset(
            keys.message_ledger, "_sweep", offset + len(batch) - len(gone) // 2 if more else 0
        )
        return len(gone) // 2

    async def counted(self, tenant: str) -> tuple[int, int]:
        """(messages the ledger counts as held, messages reserved by writes in flight)."""
        used, reserved = await self._redis.hmget(
            self._keys(tenant).message_ledger, ["_used", "_reserved"]
        )
        return int(used or 0), int(reserved or 0)
