"""Session message buffers in Redis: append, windows, pages, summary swaps, config, the tenant's
session index and the sessions' event streams.

Records are JSON strings that start with {"seq":N,"tokens":N, (the scripts rely on it). The
store orders, counts and swaps them; what they mean is the service's business.

Every change writes its event into the session's stream in the same script (so an event
exists exactly when its change does). A second step, in the tenant's slot, copies it into the
tenant's stream and updates the session index: on Redis Cluster the two live on different
nodes. That step is checked (its failure fails the request, which a retry with the same message
ids repairs) and self-healing (the next copy of a session brings every event it missed).
The same step keeps the tenant's ledger of stored messages (stores.message_ledger): each event
carries the session's message count after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from stores.event_bus import EventRetention
from stores.redis_client import RedisClient
from stores.redis_keys import SessionKeys, TenantKeys
from stores.redis_scripts import Scripts
from stores.traced import traced

log = logging.getLogger(__name__)

RECORD_PREFIX = '{"seq":0,'
# A fan-in mark outlives its session's stream by this much, so a late copy never mistakes an
# old session's events for new ones.
_MARK_MARGIN_MS = 86_400_000
_FAN_IN_ROUNDS = 3


@dataclass(frozen=True)
class AppendResult:
    """What an append did: one entry per input, in input order, and the session's meta."""

    stored: list[str | None]  # the stored record, or None when it was folded into a summary
    duplicate: list[bool]  # True where the id was already stored before this call
    meta: dict[str, str]
    backlog: int = -1  # messages waiting for long-term extraction; -1: extraction is off
    backlog_started: bool = False  # this write's messages were the first in the backlog


@dataclass(frozen=True)
class Window:
    """The newest records of a session within a count and token budget (see read_window.lua):
    the newest message always, even alone over the budget."""

    records: list[str]  # oldest first; the summary (if kept) comes first
    tokens: int
    truncated: bool  # something older was left out


class ReservationTooSmall(Exception):
    """An append under a quota reservation found more new messages than it covers (a session
    deleted since they were counted): nothing was written."""

    def __init__(self, new: int) -> None:
        super().__init__(f"{new} new messages")
        self.new = new


@dataclass(frozen=True)
class _Written:
    """What a session script wrote to the session's stream: the id before, and the new event
    (id '' when the script wrote none) with the session's message count after it."""

    prev: str
    id: str
    kind: str = ""
    at_ms: int = 0
    payload: str = ""
    count: str = ""


def _decode_hash(raw: list[bytes] | dict[bytes, bytes]) -> dict[str, str]:
    if isinstance(raw, dict):
        return {k.decode(): v.decode() for k, v in raw.items()}
    return {raw[i].decode(): raw[i + 1].decode() for i in range(0, len(raw), 2)}


def _written(raw: list[bytes], kind: str, at_ms: int, count: object) -> _Written:
    prev, id_, payload = (part.decode() for part in raw[:3])
    return _Written(prev, id_, kind, at_ms, payload, str(count))


def _stream_ttl_ms(meta: dict[str, str], default_ttl: int) -> int:
    """The TTL the session's keys (its stream among them) got from its last write."""
    return int(meta.get("ttl_seconds", default_ttl)) * 1000


@traced(
    "message_store",
    "redis",
    (
        "append",
        "read_window",
        "read_page",
        "read_meta",
        "read_metas",
        "set_config",
        "replace_range",
        "delete",
        "settle",
        "list_sessions",
        "try_lock",
        "hold_lock",
        "release_lock",
    ),
)
class RedisMessageStore:
    """Stores each tenant's sessions in Redis; every method is scoped to one tenant."""

    def __init__(
        self, redis: RedisClient, prefix: str = "maas", retention: EventRetention | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._retention = retention or EventRetention()
        self._scripts = Scripts(redis)

    def _keys(self, tenant: str, session_id: str) -> SessionKeys:
        return SessionKeys.of(self._prefix, tenant, session_id)

    def session_stream(self, tenant: str, session_id: str) -> str:
        """The stream (and channel) of one session's events."""
        return self._keys(tenant, session_id).events

    def tenant_stream(self, tenant: str) -> str:
        """The stream (and channel) of every session event of the tenant, in one order."""
        return TenantKeys.of(self._prefix, tenant).session_events

    @property
    def _events_args(self) -> list[int]:
        return [self._retention.max_len, self._retention.max_age_ms]

    async def append(
        self,
        tenant: str,
        session_id: str,
        items: list[tuple[str, str]],
        *,
        default_ttl: int,
        now_ms: int,
        event_prefix: str,
        lease: str = "",
        max_new: int = -1,
        extraction_default: bool = False,
        backlog_ttl: int = 0,
    ) -> AppendResult:
        """Append (id, record) pairs once each; the new ones become one event,
        `event_prefix + records + "]}"`. Under a quota reservation (`lease`, see
        MessageLedger) at most `max_new` may be new, or ReservationTooSmall and nothing is
        written; the copy of the event into the tenant's slot releases the reservation.
        With long-term extraction on for the session (its own setting, else
        `extraction_default`) the new records also join its extraction backlog, which lives
        backlog_ttl seconds after its last addition."""
        keys = self._keys(tenant, session_id)
        args: list[str | int] = [
            default_ttl,
            *self._events_args,
            now_ms,
            event_prefix,
            max_new,
            "1" if extraction_default else "0",
            backlog_ttl,
        ]
        for message_id, record in items:
            if not record.startswith(RECORD_PREFIX):
                raise ValueError(f"record must start with {RECORD_PREFIX}")
            args += [message_id, record]
        raw = await self._scripts.append(keys=[*keys.data, keys.backlog], args=args)
        if raw[0] == b"!":
            raise ReservationTooSmall(int(raw[1]))
        *entries, meta, event, backlog, started = raw
        decoded = _decode_hash(meta)
        await self._fan_in(
            tenant,
            session_id,
            _written(event, "A", now_ms, decoded.get("count", "")),
            _stream_ttl_ms(decoded, default_ttl),
            lease,
        )
        stored: list[str | None] = []
        duplicate: list[bool] = []
        for entry in entries:
            kind, body = entry[:1], entry[1:].decode()
            stored.append(None if kind == b"F" else body)
            duplicate.append(kind != b"N")
        return AppendResult(stored, duplicate, decoded, int(backlog), bool(started))

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
        event_prefix: str,
    ) -> dict[str, str]:
        """Set fields of the session's meta ('' clears one); returns the new meta. The event is
        `event_prefix + <the meta as a JSON object> + "}"`."""
        keys = self._keys(tenant, session_id)
        args: list[str | int] = [default_ttl, *self._events_args, now_ms, event_prefix]
        for name, value in fields.items():
            args += [name, value]
        meta, event = await self._scripts.set_config(keys=keys.data, args=args)
        decoded = _decode_hash(meta)
        await self._fan_in(
            tenant,
            session_id,
            _written(event, "C", now_ms, decoded.get("count", 0)),
            _stream_ttl_ms(decoded, default_ttl),
        )
        return decoded

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
        now_ms: int,
        event: str,
    ) -> bool:
        """Swap the records up to last_seq for the summary if they are still expected_ids."""
        keys = self._keys(tenant, session_id)
        written = await self._scripts.replace_range(
            keys=keys.data,
            args=[
                default_ttl,
                *self._events_args,
                now_ms,
                last_seq,
                summary_id,
                summary_record,
                event,
                *expected_ids,
            ],
        )
        if not written:
            return False
        stream_ttl_ms = int(written[3]) * 1000
        await self._fan_in(
            tenant, session_id, _written(written, "S", now_ms, int(written[4])), stream_ttl_ms
        )
        return True

    async def delete(self, tenant: str, session_id: str, *, now_ms: int, event: str) -> bool:
        """Delete the session; True when it existed."""
        keys = self._keys(tenant, session_id)
        existed, *written = await self._scripts.delete_session(
            keys=[*keys.data, keys.lock], args=[*self._events_args, now_ms, event]
        )
        # A deleted session's stream lives max_age_ms more: so must its mark.
        stream_ttl_ms = self._retention.max_age_ms
        await self._fan_in(tenant, session_id, _written(written, "D", now_ms, 0), stream_ttl_ms)
        return bool(existed)

    async def settle(self, tenant: str, session_id: str) -> None:
        """Bring the tenant's slot up to date with every event the session has written (its
        index entry, tenant-wide stream and message count), which also releases the session's
        expired quota reservations."""
        stream = self.session_stream(tenant, session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xrevrange(stream, count=1)
            pipe.pttl(stream)
            newest, pttl = await pipe.execute()
        prev = newest[0][0].decode() if newest else "0-0"
        # -2: no stream, nothing to copy (and the mark's TTL left as it is); -1: no expiry.
        stream_ttl_ms = {-2: -1, -1: 0}.get(pttl, pttl)
        await self._fan_in(tenant, session_id, _Written(prev, ""), stream_ttl_ms, settle=True)

    async def _fan_in(
        self,
        tenant: str,
        session_id: str,
        written: _Written,
        stream_ttl_ms: int,
        lease: str = "",
        *,
        settle: bool = False,
    ) -> None:
        """Copy the session's events the tenant's stream lacks (normally just `written`) into
        it, updating the session index and the ledger of stored messages as they say, and
        release the writer's quota reservation `lease`. The session's stream expires in
        stream_ttl_ms (0: never; -1: unknown, leave the mark's expiry alone); its mark
        outlives it."""
        if not written.id and written.prev == "0-0" and not lease and not settle:
            return  # the session has no events at all
        mark_ttl_ms = stream_ttl_ms + _MARK_MARGIN_MS if stream_ttl_ms > 0 else stream_ttl_ms
        tenant_keys = TenantKeys.of(self._prefix, tenant)
        keys = [
            tenant_keys.sessions,
            tenant_keys.session_events,
            tenant_keys.fan_in_mark(session_id),
            tenant_keys.message_ledger,
            tenant_keys.message_leases,
        ]
        prev = written.prev
        events: list[Any] = (
            [written.id, written.kind, written.at_ms, written.payload, written.count]
            if written.id
            else []
        )
        for _ in range(_FAN_IN_ROUNDS):
            gap = await self._scripts.fan_in(
                keys=keys,
                args=[session_id, mark_ttl_ms, *self._events_args, prev, lease, *events],
            )
            if not gap:
                return
            # An earlier copy failed or a concurrent write is behind us: send everything
            # after the mark.
            mark = gap[0].decode()
            entries = await self._redis.xrange(
                self.session_stream(tenant, session_id), min=f"({mark}", max="+"
            )
            if not entries:
                return
            first_prev = entries[0][1][b"p"].decode()
            if first_prev != mark:
                log.warning(
                    "events of a session were trimmed before reaching the tenant's stream; "
                    "tenant-wide subscribers miss them"
                )
            prev = mark
            events = []
            for entry_id, fields in entries:
                events += [entry_id, fields[b"k"], fields[b"a"], fields[b"e"], fields.get(b"n", "")]
        raise RuntimeError("the tenant's stream kept moving under the copy")

    async def list_sessions(
        self, tenant: str, *, limit: int, before: tuple[int, str] | None
    ) -> list[tuple[str, int, dict[str, str]]]:
        """(session id, last activity ms, meta) newest first, strictly after the (score, id)
        cursor. Sessions whose keys expired are dropped from the index on the way."""
        tenant_keys = TenantKeys.of(self._prefix, tenant)
        index = tenant_keys.sessions
        found: list[tuple[str, int, dict[str, str]]] = []
        cursor = before
        while len(found) < limit:
            want = limit - len(found)
            args: list[str | int] = [want, *(cursor if cursor is not None else ())]
            raw = await self._scripts.page_sessions(keys=[index], args=args)
            batch = [(raw[i].decode(), int(float(raw[i + 1]))) for i in range(0, len(raw), 2)]
            if not batch:
                break
            metas = await self.read_metas(tenant, [sid for sid, _ in batch])
            gone: list[str | int] = []
            for (sid, score), meta in zip(batch, metas, strict=True):
                if meta is None:
                    gone += [sid, score]
                else:
                    found.append((sid, score, meta))
            if gone:
                await self._scripts.forget_sessions(
                    keys=[index, tenant_keys.message_ledger], args=gone
                )
            if len(batch) < want:
                break
            cursor = (batch[-1][1], batch[-1][0])
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
