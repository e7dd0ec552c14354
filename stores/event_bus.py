"""Event streams shared by every server process, and their live delivery to local subscribers.

An event lives in a Redis Stream (written by the same script as its change) and is published
on a channel named like the stream as "<id> <prev> <json>", where prev is the id of the event
before it. Each process follows a stream with one Redis subscription, however many local
subscribers it has, and delivers an event only when its prev is the last one delivered; a gap
(a message missed while reconnecting) is filled from the stream itself. So delivery has no
gaps and no duplicates, and a subscriber can resume after an event id it saw: it first gets
what it missed from the stream, then live events.

When Redis goes away the reader reconnects with backoff for as long as it takes; subscribers
keep waiting for a grace period and then end with EventsUnavailable. When the stream lost
events a subscriber needed (trimmed, or Redis restarted empty) it ends with EventsLost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from stores.redis_client import REDIS_DOWN, RedisClient, is_redis_down
from stores.redis_scripts import Scripts
from stores.traced import traced

log = logging.getLogger(__name__)

_REPLAY_CHUNK = 200
AUDIT_INTERVAL_S = 5.0
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class EventRetention:
    """How much of each stream Redis keeps: at most max_len events, none older than
    max_age_ms (so a stream of a deleted session disappears after max_age_ms)."""

    max_len: int = 1000
    max_age_ms: int = 3_600_000


@dataclass(frozen=True)
class StoredEvent:
    """An event as its stream holds it: its id, the id of the one before, its JSON."""

    id: str
    prev: str
    payload: str


class EventsLost(Exception):
    """Events after the subscriber's position are no longer in the stream."""


class EventsUnavailable(Exception):
    """Redis has been unreachable for longer than the grace period."""


class SubscriberTooSlow(Exception):
    """A subscriber's queue overflowed; it missed events and is dropped."""


def parse_event_id(text: str) -> tuple[int, int]:
    """The (ms, seq) of a stream id; ValueError when it is not one."""
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit() and len(text) <= 41):
        raise ValueError(f"not an event id: {text!r}")
    return int(ms), int(seq)


def _entry(raw: tuple[bytes, dict[bytes, bytes]]) -> StoredEvent:
    entry_id, fields = raw
    return StoredEvent(entry_id.decode(), fields[b"p"].decode(), fields[b"e"].decode())


class _Subscriber:
    """One local subscriber: its queue of events (or the exception that ends it)."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[StoredEvent | Exception] = asyncio.Queue(size)
        self.ended = False

    def offer(self, event: StoredEvent) -> None:
        if self.ended:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end(SubscriberTooSlow("Too many undelivered events; subscribe again."))

    def end(self, error: Exception) -> None:
        if self.ended:
            return
        self.ended = True
        if self.queue.full():
            self.queue.get_nowait()  # make room: the end matters more than one more event
        self.queue.put_nowait(error)


@dataclass
class _Followed:
    """A stream this process follows: the last event delivered, and who gets the next."""

    last: str | None = None  # None until the start position is known
    early: list[StoredEvent] = field(default_factory=list)  # arrived before it was
    subscribers: set[_Subscriber] = field(default_factory=set)
    # One catch-up at a time: two reading from the same `last` would deliver twice.
    catching_up: asyncio.Lock = field(default_factory=asyncio.Lock)
    unreadable_since: float | None = None  # its node is down (a cluster master), since when


@traced("event_store", "redis", ("append", "newest_id"))
class RedisEventBus:
    """Appends to event streams and delivers them live to this process's subscribers."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        retention: EventRetention | None = None,
        queue_size: int = 1000,
        reconnect_grace_s: float = 5.0,
        audit_interval_s: float = AUDIT_INTERVAL_S,
    ) -> None:
        self._redis = redis
        self.retention = retention or EventRetention()
        self._queue_size = queue_size
        self._grace_s = reconnect_grace_s
        self._scripts = Scripts(redis)
        self._followed: dict[str, _Followed] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._down_since: float | None = None
        self._attempts = 0
        self._reconnected = False  # redis-py reconnected the pub/sub connection by itself
        self._audit_interval_s = audit_interval_s
        self._next_audit = 0.0
        self._suspects: dict[str, str] = {}  # stream -> a newer event the last audit saw

    @property
    def healthy(self) -> bool:
        """False while subscribers wait for the reader to get Redis back."""
        return self._down_since is None or not self._followed

    async def append(self, stream: str, payload: str, *, kind: str, at_ms: int) -> str:
        """Append an event whose change lives outside Redis; returns its id."""
        event_id = await self._scripts.append_event(
            keys=[stream],
            args=[self.retention.max_len, self.retention.max_age_ms, kind, at_ms, payload],
        )
        return event_id.decode()

    async def newest_id(self, stream: str) -> str | None:
        """The id of the stream's newest event (None when it has none)."""
        newest = await self._redis.xrevrange(stream, count=1)
        return newest[0][0].decode() if newest else None

    @contextlib.asynccontextmanager
    async def subscribe(
        self, stream: str, after: str | None = None
    ) -> AsyncIterator[AsyncIterator[StoredEvent]]:
        """Yields an iterator of the stream's events: those after `after` first (when given),
        then live ones. Raises (on entry, or from the iterator) EventsLost, EventsUnavailable,
        SubscriberTooSlow, or a Redis error when Redis cannot be reached to start."""
        if after is not None:
            parse_event_id(after)
        subscriber = _Subscriber(self._queue_size)
        await self._add(stream, subscriber)
        try:
            yield self._events(stream, subscriber, after)
        finally:
            await self._remove(stream, subscriber)

    async def _events(
        self, stream: str, subscriber: _Subscriber, after: str | None
    ) -> AsyncIterator[StoredEvent]:
        floor = after
        if after is not None:
            async for event in self._replay(stream, after):
                floor = event.id
                yield event
        floor_key = parse_event_id(floor) if floor is not None else None
        while True:
            item = await subscriber.queue.get()
            if isinstance(item, Exception):
                raise item
            if floor_key is not None:
                if parse_event_id(item.id) <= floor_key:
                    continue  # the replay already gave it
                floor_key = None
            yield item

    async def _replay(self, stream: str, after: str) -> AsyncIterator[StoredEvent]:
        """The stream's events after `after`, proven contiguous with it."""
        expected_prev = after
        rechecked = False
        while True:
            raw = await self._redis.xrange(stream, min=f"({expected_prev}", count=_REPLAY_CHUNK)
            events = [_entry(r) for r in raw]
            if not events:
                if expected_prev == after:
                    newest = await self.newest_id(stream)
                    if newest != after:
                        if not rechecked:
                            # An event may have landed between the two reads: read again.
                            rechecked = True
                            continue
                        # The stream is gone or never had this id: nothing proves continuity.
                        raise EventsLost(stream)
                return
            if events[0].prev != expected_prev:
                raise EventsLost(stream)
            for event in events:
                yield event
            if len(events) < _REPLAY_CHUNK:
                return
            expected_prev = events[-1].id

    # ---- following streams ----------------------------------------------------------------

    async def _add(self, stream: str, subscriber: _Subscriber) -> None:
        async with self._lock:
            if self._pubsub is None:
                if self._followed:  # the reader is waiting to reconnect: try now
                    await self._reconnect_locked()
                else:
                    self._pubsub = await self._open_pubsub()
            followed = self._followed.get(stream)
            if followed is None:
                followed = self._followed[stream] = _Followed()
                try:
                    await self._pubsub.subscribe(stream)  # type: ignore[union-attr]
                    self._watch_reconnects(self._pubsub)  # type: ignore[arg-type]
                    followed.last = await self.newest_id(stream) or "0-0"
                except BaseException:
                    del self._followed[stream]
                    if not self._followed:
                        await self._close_pubsub()
                    raise
                self._down_since = None
                # Joined before the events that came in while starting are offered: one
                # published just after `last` was read must reach this subscriber too.
                followed.subscribers.add(subscriber)
                early, followed.early = followed.early, []
                for event in early:
                    await self._offer(stream, followed, event)
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(), name="event-bus-reader")
            followed.subscribers.add(subscriber)

    async def _remove(self, stream: str, subscriber: _Subscriber) -> None:
        async with self._lock:
            followed = self._followed.get(stream)
            if followed is None:
                return
            followed.subscribers.discard(subscriber)
            if followed.subscribers:
                return
            del self._followed[stream]
            # With nothing left to follow the reader closes the connection itself.
            if self._followed and self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(stream)
                except Exception:  # a subscriber leaving never fails on our cleanup
                    log.debug("unsubscribing failed; the reader reconnects", exc_info=True)
                    await self._close_pubsub()

    async def _open_pubsub(self) -> PubSub:
        """A pub/sub connection. On a cluster, any node hears every channel: try them in
        turn, so one node down does not stop delivery."""
        if isinstance(self._redis, RedisCluster):
            nodes = self._redis.get_nodes()
            if not nodes:
                # A command, not initialize(): after a failure redis-py's command path also
                # replaces a dead default node, which initialize() alone keeps asking.
                await self._redis.ping()
                nodes = self._redis.get_nodes()
            node = nodes[self._attempts % len(nodes)]
            pubsub: PubSub = self._redis.pubsub(node=node)
        else:
            pubsub = self._redis.pubsub()
        pubsub.ignore_subscribe_messages = True
        return pubsub

    async def _read(self) -> None:
        backoff = _FIRST_BACKOFF_S
        try:
            while await self._still_following():
                try:
                    if self._pubsub is None:
                        await self._reconnect()
                        backoff = _FIRST_BACKOFF_S
                    await self._handle(await self._pubsub.get_message(timeout=1.0))  # type: ignore[union-attr]
                    if self._reconnected:
                        await self._catch_up_all()
                    await self._audit()
                except Exception as error:
                    # Never die: a reader that stops leaves every subscriber mute.
                    if not is_redis_down(error):
                        log.exception("event bus reader failed; reconnecting")
                    await self._lost_redis()
                else:
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        except asyncio.CancelledError:
            await self._close_pubsub()
            raise

    async def _still_following(self) -> bool:
        """False once nothing is followed; then the reader is gone and its connection closed,
        in one step with respect to new subscribers (who start a new reader)."""
        if self._followed:
            return True
        async with self._lock:
            if self._followed:
                return True
            await self._close_pubsub()
            self._down_since = None  # the next subscriber tries afresh
            self._reader = None
            return False

    async def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None or message["type"] != "message":
            return
        stream = message["channel"].decode()
        followed = self._followed.get(stream)
        if followed is None:
            return
        event_id, prev, payload = message["data"].decode().split(" ", 2)
        event = StoredEvent(event_id, prev, payload)
        if followed.last is None:
            followed.early.append(event)
        else:
            await self._offer(stream, followed, event)

    async def _offer(self, stream: str, followed: _Followed, event: StoredEvent) -> None:
        """Deliver the event if it is the next one; fill a gap from the stream first."""
        assert followed.last is not None
        if event.prev == followed.last:
            self._deliver(followed, [event])
        elif parse_event_id(event.id) > parse_event_id(followed.last):
            await self._catch_up(stream, followed)

    async def _catch_up(self, stream: str, followed: _Followed) -> bool:
        """Deliver every event after the last delivered one, from the stream itself; True when
        there were any (live delivery had missed them)."""
        async with followed.catching_up:
            since = followed.last
            assert since is not None
            try:
                raw = await self._redis.xrange(stream, min=f"({since}")
            except Exception as error:
                if not is_redis_down(error):
                    raise
                self._unreadable(followed)
                return False
            followed.unreadable_since = None
            events = [_entry(r) for r in raw]
            if events and events[0].prev != since:
                log.warning("events of %s were lost before delivery; subscribers resync", stream)
                for subscriber in followed.subscribers:
                    subscriber.end(EventsLost(stream))
                followed.last = events[-1].id
                return True
            self._deliver(followed, events)
            return bool(events)

    def _unreadable(self, followed: _Followed) -> None:
        """The stream's own node is down (a cluster master; the others serve on): its
        subscribers wait for the grace period, then end with EventsUnavailable."""
        now = time.monotonic()
        if followed.unreadable_since is None:
            followed.unreadable_since = now
        elif now - followed.unreadable_since >= self._grace_s:
            for subscriber in followed.subscribers:
                subscriber.end(EventsUnavailable("the stream's Redis node is unreachable"))

    @staticmethod
    def _deliver(followed: _Followed, events: list[StoredEvent]) -> None:
        """Offer each event newer than the last delivered (a catch-up may overlap a live
        delivery made while it read) to every subscriber."""
        assert followed.last is not None
        last = parse_event_id(followed.last)
        for event in events:
            position = parse_event_id(event.id)
            if position <= last:
                continue
            for subscriber in followed.subscribers:
                subscriber.offer(event)
            followed.last, last = event.id, position

    async def _lost_redis(self) -> None:
        """Drop the connection; after the grace period, end every subscriber."""
        now = time.monotonic()
        if self._down_since is None:
            log.warning("event bus lost Redis; reconnecting")
            self._down_since = now
        self._attempts += 1
        await self._close_pubsub()
        if now - self._down_since >= self._grace_s:
            for followed in self._followed.values():
                for subscriber in followed.subscribers:
                    subscriber.end(EventsUnavailable("Redis unreachable"))

    async def _reconnect(self) -> None:
        async with self._lock:
            if self._pubsub is None:  # a new subscriber may have reconnected already
                await self._reconnect_locked()

    async def _reconnect_locked(self) -> None:
        """Subscribe again to every followed stream and deliver what was missed meanwhile."""
        pubsub = await self._open_pubsub()
        try:
            await pubsub.subscribe(*self._followed)
            self._watch_reconnects(pubsub)
            await self._catch_up_all()
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        if self._down_since is not None:
            log.warning("event bus reconnected to Redis")
        self._down_since = None

    def _watch_reconnects(self, pubsub: PubSub) -> None:
        """redis-py reconnects a dropped pub/sub connection and resubscribes by itself, but
        what was published meanwhile is gone: note it, so the reader catches up."""
        if pubsub.connection is not None:
            pubsub.connection.register_connect_callback(self._on_pubsub_connect)

    def _on_pubsub_connect(self, _: object) -> None:
        self._reconnected = True

    async def _catch_up_all(self) -> bool:
        """Catch every followed stream up; True when any had events live delivery missed."""
        self._reconnected = False
        missed = False
        for stream, followed in list(self._followed.items()):
            if followed.last is not None:
                missed = await self._catch_up(stream, followed) or missed
        return missed

    async def _audit(self) -> None:
        """Every audit interval, compare each followed stream's newest event with the last
        one delivered: a publish can be lost without the connection noticing (a node that
        vanished without closing it, a dropped cluster-bus message). An event still not
        delivered one interval after the audit saw it (so not merely in flight) is delivered
        from the stream, and the pub/sub connection is replaced."""
        now = time.monotonic()
        if now < self._next_audit:
            return
        self._next_audit = now + self._audit_interval_s
        streams = [(name, f) for name, f in self._followed.items() if f.last is not None]
        newest = await self._newest_ids([name for name, _ in streams])
        suspects, self._suspects = self._suspects, {}
        missed = False
        for (name, followed), seen in zip(streams, newest, strict=True):
            if isinstance(seen, Exception):
                self._unreadable(followed)
                continue
            followed.unreadable_since = None
            if seen is None or followed.last is None:
                continue
            if parse_event_id(seen) <= parse_event_id(followed.last):
                continue
            earlier = suspects.get(name)
            if earlier is not None and parse_event_id(earlier) > parse_event_id(followed.last):
                missed = True
                await self._catch_up(name, followed)
            else:
                self._suspects[name] = seen
        if missed:
            log.warning("live delivery missed events; reconnecting the event bus")
            await self._close_pubsub()

    async def _newest_ids(self, streams: list[str]) -> list[str | Exception | None]:
        """Each stream's newest id, one pipeline per node, so a node that is down fails only
        its own streams."""
        groups: dict[str | None, list[int]] = {}
        for index, name in enumerate(streams):
            groups.setdefault(self._node_of(name), []).append(index)

        async def read(indexes: list[int]) -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.xrevrange(streams[index], count=1)
                return await pipe.execute()

        found: list[str | Exception | None] = [None] * len(streams)
        replies = await asyncio.gather(
            *(read(ix) for ix in groups.values()), return_exceptions=True
        )
        for indexes, reply in zip(groups.values(), replies, strict=True):
            for position, index in enumerate(indexes):
                if isinstance(reply, BaseException):
                    if not is_redis_down(reply):
                        raise reply
                    found[index] = reply
                else:
                    raw = reply[position]
                    found[index] = raw[0][0].decode() if raw else None
        return found

    def _node_of(self, key: str) -> str | None:
        """The name of the cluster node holding the key (None on one server, or unknown)."""
        if not isinstance(self._redis, RedisCluster):
            return None
        try:
            return self._redis.get_node_from_key(key).name
        except REDIS_DOWN:
            return None

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._close_pubsub()
