"""Durable long-term extraction jobs in Redis: each session's backlog of messages to extract,
its progress, and one queue of every tenant's sessions with work, by due time.

The backlog is written by the message append itself (append.lua), in the session's slot, in
the same step as the messages: a job exists exactly when its messages do, before the write is
acknowledged. It is kept apart from the session's buffer, so a summary, a delete or an expiry
of the session takes nothing from it. The queue is one key (any server process finds any job);
on Redis Cluster it lives in another slot than the sessions, so putting a session on it is a
second, checked step of the write (its failure fails the write, whose retry repairs it).

Workers claim due sessions (the claim moves their due time one lease ahead, so a dead
worker's job comes due again), hold the session's lock while extracting, and commit by
dropping what they extracted from the head of the backlog (commit_extraction.lua).
"""

from __future__ import annotations

from dataclasses import dataclass

from stores.redis_client import RedisClient
from stores.redis_keys import SessionKeys, extraction_queue
from stores.redis_scripts import Scripts
from stores.traced import traced


@dataclass(frozen=True)
class BacklogEntry:
    """A message waiting for extraction and the scope it was written under."""

    user_id: str | None
    agent_id: str | None
    record: str  # the message's stored record (JSON)
    stored: str  # the entry as the backlog holds it (a commit names its first one)

    @classmethod
    def parse(cls, stored: str) -> BacklogEntry:
        user, agent, record = stored.split("\n", 2)
        return cls(user or None, agent or None, record, stored)


@dataclass(frozen=True)
class ExtractionProgress:
    last_seq: int | None  # the seq of the newest message extracted; None before the first
    pending: int  # messages waiting in the backlog
    failures: int  # failed attempts since the last success


def job_member(tenant: str, session_id: str) -> str:
    return f"{tenant}:{session_id}"  # tenant ids hold no ':'


def parse_member(member: str) -> tuple[str, str]:
    tenant, _, session_id = member.partition(":")
    return tenant, session_id


@traced(
    "extraction_jobs",
    "redis",
    (
        "schedule",
        "claim",
        "lock",
        "renew",
        "unlock",
        "read_backlog",
        "commit",
        "record_failure",
        "finish",
        "pending",
        "progress",
    ),
)
class ExtractionJobs:
    """The extraction queue and each session's backlog, scoped by tenant."""

    def __init__(self, redis: RedisClient, prefix: str = "maas") -> None:
        self._redis = redis
        self._prefix = prefix
        self._queue = extraction_queue(prefix)
        self._scripts = Scripts(redis)

    def _keys(self, tenant: str, session_id: str) -> SessionKeys:
        return SessionKeys.of(self._prefix, tenant, session_id)

    async def schedule(
        self, tenant: str, session_id: str, delay_ms: int, *, sooner_only: bool = True
    ) -> None:
        """Have a worker look at the session in delay_ms (by Redis's clock). sooner_only: add
        the job, or bring it forward, never postpone it."""
        await self._scripts.schedule_extraction(
            keys=[self._queue],
            args=[job_member(tenant, session_id), delay_ms, "sooner" if sooner_only else "set"],
        )

    async def claim(self, limit: int, lease_ms: int) -> list[tuple[str, str]]:
        """Up to `limit` due (tenant, session) jobs, each leased for lease_ms."""
        raw = await self._scripts.claim_extractions(keys=[self._queue], args=[limit, lease_ms])
        return [parse_member(member.decode()) for member in raw]

    async def lock(self, tenant: str, session_id: str, token: str, ttl_ms: int) -> bool:
        """The session's extraction lock: one worker at a time extracts a session."""
        key = self._keys(tenant, session_id).extraction_lock
        return bool(await self._redis.set(key, token, nx=True, px=ttl_ms))

    async def renew(self, tenant: str, session_id: str, token: str, ttl_ms: int) -> None:
        """Keep the session's lock, if still ours, and its claim on the queue for ttl_ms more."""
        key = self._keys(tenant, session_id).extraction_lock
        if (await self._redis.get(key)) == token.encode():
            await self._redis.pexpire(key, ttl_ms)
            await self.schedule(tenant, session_id, ttl_ms, sooner_only=False)

    async def unlock(self, tenant: str, session_id: str, token: str) -> None:
        keys = self._keys(tenant, session_id)
        await self._scripts.release_lock(keys=[keys.extraction_lock], args=[token])

    async def read_backlog(self, tenant: str, session_id: str, limit: int) -> list[BacklogEntry]:
        """The oldest `limit` entries of the session's backlog."""
        raw = await self._redis.lrange(self._keys(tenant, session_id).backlog, 0, limit - 1)
        return [BacklogEntry.parse(item.decode()) for item in raw]

    async def commit(
        self, tenant: str, session_id: str, extracted: list[BacklogEntry], last_seq: int, ttl: int
    ) -> int:
        """Drop the extracted entries (the backlog's oldest) and record the progress; the
        entries left, or -1 when someone else had already committed them."""
        keys = self._keys(tenant, session_id)
        return int(
            await self._scripts.commit_extraction(
                keys=[keys.backlog, keys.extraction],
                args=[extracted[0].stored, len(extracted), last_seq, ttl],
            )
        )

    async def record_failure(self, tenant: str, session_id: str, ttl: int) -> int:
        """Count a failed attempt; the attempts failed in a row."""
        key = self._keys(tenant, session_id).extraction
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "failures", 1)
            pipe.expire(key, ttl)
            failures, _ = await pipe.execute()
        return int(failures)

    async def finish(self, tenant: str, session_id: str) -> int:
        """Take the session off the queue, then look again: an entry added before that look
        is counted (the caller puts the session back), one added after it put the session on
        the queue itself. The entries left."""
        await self._redis.zrem(self._queue, job_member(tenant, session_id))
        return await self.pending(tenant, session_id)

    async def pending(self, tenant: str, session_id: str) -> int:
        return int(await self._redis.llen(self._keys(tenant, session_id).backlog))

    async def progress(self, tenant: str, session_id: str) -> ExtractionProgress:
        keys = self._keys(tenant, session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.extraction, ["seq", "failures"])
            pipe.llen(keys.backlog)
            (seq, failures), pending = await pipe.execute()
        return ExtractionProgress(
            int(seq) if seq is not None else None, int(pending), int(failures or 0)
        )
