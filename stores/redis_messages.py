"""Session message buffers in Redis: append, windows, pages, summary swaps, config, index.

Records are JSON strings that start with {"seq":N,"tokens":N, (the scripts rely on it). The
store orders, counts and swaps them; what they mean is the service's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from stores.redis_keys import SessionKeys, events_channel, session_index_key
from stores.redis_scripts import Scripts

RECORD_PREFIX = '{"seq":0,'


@dataclass(frozen=True)
class AppendResult:
    """What an append did: one entry per input, in input order, and the session's meta."""

    stored: list[str | None]  # the stored record, or None when it was folded into a summary
    duplicate: list[bool]  # True where the id was already stored before this call
    meta: dict[str, str]


@dataclass(frozen=True)
class Window:
    """The newest records of a session within a count and token budget."""

    records: list[str]  # oldest first; the summary (if kept) comes first
    tokens: int
    truncated: bool


def _decode_hash(raw: list[bytes] | dict[bytes, bytes]) -> dict[str, str]:
    if isinstance(raw, dict):
        return {k.decode(): v.decode() for k, v in raw.items()}
    return {raw[i].decode(): raw[i + 1].decode() for i in range(0, len(raw), 2)}


class RedisMessageStore:
    """Stores each tenant's sessions in Redis; every method is scoped to one tenant."""

    def __init__(self, redis: Redis, prefix: str = "maas") -> None:
        self._redis = redis
        self._prefix = prefix
        self._scripts = Scripts(redis)

    def _keys(self, tenant: str, session_id: str) -> SessionKeys:
        return SessionKeys.of(self._prefix, tenant, session_id)

    async def _run_and_index(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[str | int],
        tenant: str,
        session_id: str,
        now_ms: int,
    ) -> Any:
        """Run a session script and touch the tenant's session index in one round trip.

        The index lives in another hash slot, so it cannot be part of the script. EVALSHA is
        sent directly: redis-py would ask SCRIPT EXISTS before every pipeline with a script.
        """
        index = session_index_key(self._prefix, tenant)
        for attempt in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.zadd(index, {session_id: now_ms})
                result, _ = await pipe.execute(raise_on_error=False)
            if isinstance(result, NoScriptError) and attempt == 0:
                await self._redis.script_load(script.script)
                continue
            if isinstance(result, Exception):
                raise result
            return result
        raise AssertionError("unreachable")

    def channel(self, tenant: str) -> str:
        return events_channel(self._prefix, tenant)

    async def append(
        self,
        tenant: str,
        session_id: str,
        items: list[tuple[str, str]],
        *,
        default_ttl: int,
        now_ms: int,
        event_prefix: str,
    ) -> AppendResult:
        """Append (id, record) pairs once each and publish the new ones as
        `event_prefix + records + "]}"`, all in one round trip with the index update."""
        keys = self._keys(tenant, session_id)
        args: list[str | int] = [default_ttl, now_ms, self.channel(tenant), event_prefix]
        for message_id, record in items:
            if not record.startswith(RECORD_PREFIX):
                raise ValueError(f"record must start with {RECORD_PREFIX}")
            args += [message_id, record]
        raw = await self._run_and_index(
            self._scripts.append, keys.data, args, tenant, session_id, now_ms
        )
        *entries, meta = raw
        stored: list[str | None] = []
        duplicate: list[bool] = []
        for entry in entries:
            kind, body = entry[:1], entry[1:].decode()
            stored.append(None if kind == b"F" else body)
            duplicate.append(kind != b"N")
        return AppendResult(stored, duplicate, _decode_hash(meta))

    async def read_window(
        self,
        tenant: str,
        session_id: str,
        *,
        max_count: int,
        token_budget: int | None,
        keep_summary: bool,
    ) -> Window:
        keys = self._keys(tenant, session_id)
        budget = -1 if token_budget is None else token_budget
        raw = await self._scripts.read_window(
            keys=[keys.meta, keys.order, keys.msgs],
            args=[max_count, budget, 1 if keep_summary else 0],
        )
        truncated, tokens, summary, *newest_first = raw
        records = [r.decode() for r in reversed(newest_first)]
        if summary:
            records.insert(0, summary.decode())
        return Window(records, int(tokens), bool(truncated))

    async def read_page(
        self, tenant: str, session_id: str, *, newest_first: bool, bound: int | None, limit: int
    ) -> list[str]:
        """Up to limit + 1 records past the exclusive sequence bound."""
        keys = self._keys(tenant, session_id)
        raw = await self._scripts.read_page(
            keys=[keys.meta, keys.order, keys.msgs],
            args=["before" if newest_first else "after", "" if bound is None else bound, limit],
        )
        return [r.decode() for r in raw if r is not None]

    async def read_meta(self, tenant: str, session_id: str) -> dict[str, str] | None:
        raw = await self._redis.hgetall(self._keys(tenant, session_id).meta)
        return _decode_hash(raw) if raw else None

    async def read_metas(self, tenant: str, session_ids: list[str]) -> list[dict[str, str] | None]:
        """Meta of many sessions in one round trip (None where a session is gone)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.hgetall(self._keys(tenant, session_id).meta)
            raws = await pipe.execute()
        return [_decode_hash(raw) if raw else None for raw in raws]

    async def set_config(
        self,
        tenant: str,
        session_id: str,
        fields: dict[str, str],
        *,
        default_ttl: int,
        now_ms: int,
    ) -> dict[str, str]:
        """Set fields of the session's meta ('' clears one); returns the new meta."""
        keys = self._keys(tenant, session_id)
        args: list[str | int] = [default_ttl, now_ms]
        for name, value in fields.items():
            args += [name, value]
        meta = await self._run_and_index(
            self._scripts.set_config, keys.data, args, tenant, session_id, now_ms
        )
        return _decode_hash(meta)

    async def replace_range(
        self,
        tenant: str,
        session_id: str,
        *,
        expected_ids: list[str],
        last_seq: int,
        summary_id: str,
        summary_record: str,
        default_ttl: int,
        event: str,
    ) -> bool:
        """Swap the records up to last_seq for the summary if they are still expected_ids."""
        keys = self._keys(tenant, session_id)
        replaced = await self._scripts.replace_range(
            keys=keys.data,
            args=[
                default_ttl,
                last_seq,
                summary_id,
                summary_record,
                self.channel(tenant),
                event,
                *expected_ids,
            ],
        )
        return bool(replaced)

    async def delete(self, tenant: str, session_id: str) -> bool:
        """Delete the session; True when it existed."""
        keys = self._keys(tenant, session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(*keys.data, keys.lock)
            pipe.zrem(session_index_key(self._prefix, tenant), session_id)
            deleted, _ = await pipe.execute()
        return deleted > 0

    async def list_sessions(
        self, tenant: str, *, limit: int, before: tuple[int, str] | None
    ) -> list[tuple[str, int, dict[str, str]]]:
        """(session id, last activity ms, meta) newest first, strictly after the (score, id)
        cursor. Sessions whose keys expired are dropped from the index on the way."""
        index = session_index_key(self._prefix, tenant)
        found: list[tuple[str, int, dict[str, str]]] = []
        fetch = limit + 16  # over-fetch: ties on the cursor's score and expired sessions
        while len(found) < limit:
            high = "+inf" if before is None else before[0]
            batch = await self._redis.zrevrangebyscore(
                index, high, "-inf", start=0, num=fetch, withscores=True
            )
            candidates = [(m.decode(), int(s)) for m, s in batch]
            if before is not None:
                candidates = [(sid, s) for sid, s in candidates if (s, sid) < before]
            if not candidates:
                break
            metas = await self.read_metas(tenant, [sid for sid, _ in candidates])
            gone = [sid for (sid, _), meta in zip(candidates, metas, strict=True) if meta is None]
            if gone:
                await self._redis.zrem(index, *gone)
            for (sid, score), meta in zip(candidates, metas, strict=True):
                if meta is not None:
                    found.append((sid, score, meta))
            if len(batch) < fetch:
                break
            before = (candidates[-1][1], candidates[-1][0])
        return found[:limit]

    async def try_lock(self, tenant: str, session_id: str, token: str, ttl_ms: int) -> bool:
        acquired = await self._redis.set(
            self._keys(tenant, session_id).lock, token, nx=True, px=ttl_ms
        )
        return bool(acquired)

    async def hold_lock(self, tenant: str, session_id: str, token: str, ttl_ms: int) -> None:
        """Keep the lock for ttl_ms more (a cool-down after a failure), if we hold it."""
        key = self._keys(tenant, session_id).lock
        if (await self._redis.get(key)) == token.encode():
            await self._redis.pexpire(key, ttl_ms)

    async def release_lock(self, tenant: str, session_id: str, token: str) -> None:
        keys = self._keys(tenant, session_id)
        await self._scripts.release_lock(keys=[keys.lock], args=[token])

    async def publish(self, tenant: str, payload: str) -> None:
        await self._redis.publish(self.channel(tenant), payload)
