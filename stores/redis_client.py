"""The Redis client the stores use: one server, or a Redis Cluster; and which of its errors
mean Redis is (partly) down rather than that a request was wrong."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import traceback
from typing import Any, Literal, TypeAlias

import hiredis
from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    ConnectionError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)

RedisClient: TypeAlias = Redis | RedisCluster

# A node down, a slot not served, a failover under way, a server still loading its data. On a
# cluster, redis-py follows MOVED/ASK itself; these are what remains when it cannot.
REDIS_DOWN: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
    OSError,
)


# What redis-py's asyncio connections leak instead of ConnectionError when a connection was
# closed under a command (redis/redis-py#4287; uvloop says RuntimeError): transport internals.
_LEAKED = (AttributeError, TypeError, RuntimeError)
_SENDING = frozenset({"send_packed_command", "_send_packed_command", "writelines"})


def is_redis_down(error: BaseException) -> bool:
    """True when the error means Redis (a node of it) cannot serve now: the client's
    connection and availability errors, and transport errors redis-py leaks while sending on
    a connection that was closed under it."""
    if isinstance(error, REDIS_DOWN):
        return True
    if not isinstance(error, _LEAKED):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return any(
        frame.name in _SENDING and frame.filename.endswith("redis/asyncio/connection.py")
        for frame in frames
    )


class _CommandTableOnce(AsyncCommandsParser):
    """redis-py's cluster client re-reads the command table (COMMAND) from its default node
    whenever it re-reads the cluster after a failure, before any command; while that master
    is down, every command of the client fails there, on every master. The table does not
    change under a running server: read it once."""

    async def initialize(self, node: ClusterNode | None = None) -> None:
        if node is not None:
            self.node = node
        if not self.commands:
            await super().initialize(node)


class _RedisCluster(RedisCluster):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_parser = _CommandTableOnce()
        # Every node's connections pack in C (see _PacksInC): the nodes made so far, and those
        # the client finds later, which it makes with these connection arguments.
        packing = _packing_in_c(self.connection_kwargs["connection_class"])
        self.connection_kwargs["connection_class"] = packing
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = packing


class _QuickPool(BlockingConnectionPool):
    """redis-py's BlockingConnectionPool, whose uncontended get and release (a connection
    free, nobody waiting for one) skip its lock, timeout and observability hooks: about a
    third of the client's CPU per command (~20 us of ~75). The hooks record nothing unless
    redis-py's own metrics are switched on, which MaaS never does. When the pool is
    exhausted or anyone waits, redis-py's own path runs, so waiting, its timeout and wake-ups
    are unchanged. A connection handed out is checked as redis-py checks it."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._in_maintenance or not self._available_connections or self._contended():
            return await super().get_connection()
        connection = self._available_connections.pop()
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: Any) -> None:
        if self._in_maintenance or self._contended():
            await super().release(connection)  # under the lock, waking a waiter
            return
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)

    def _contended(self) -> bool:
        """Whether a caller waits for a connection (asyncio.Condition keeps its waiters, and
        its lock its own, in `_waiters`), or holds the pool's condition to take one."""
        return bool(self._condition._waiters) or self._condition.locked()


class _PacksInC:
    """A connection that packs a command into the Redis protocol with hiredis's C packer, as
    redis-py's synchronous client does: its asyncio connections pack in Python, a method call
    per argument (~12 us for a write's 19 arguments, against ~1.6 us). hiredis takes str,
    bytes and buffers, exact ints and floats, and sends the bytes redis-py's packer sends for
    them (UTF-8, as the Encoder of a client left at its defaults). Anything else (a bool, a
    string UTF-8 cannot encode, a command name holding a space for redis-py to split, another
    encoding) is packed, or refused, by redis-py's own packer."""

    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        command = args[0]
        encoder = self.encoder
        if (
            type(command) is str
            and " " not in command
            and encoder.encoding == "utf-8"
            and encoder.encoding_errors == "strict"
        ):
            try:
                return [hiredis.pack_command(args)]
            except Exception:  # noqa: S110 (redis-py's packer takes it, or says why not)
                pass
        return super().pack_command(*args)  # type: ignore[misc]


@functools.cache
def _packing_in_c(connection_class: type) -> type:
    return type(connection_class.__name__, (_PacksInC, connection_class), {})


def connect(
    url: str, *, cluster: bool, timeout_seconds: float = 5.0, max_connections: int = 1000
) -> RedisClient:
    """A client for the URL; with `cluster`, a Redis Cluster client that finds every node
    from the one the URL names. No call waits longer than timeout_seconds for a connection
    or a reply (pub/sub reads set their own). At most max_connections to each node: more
    concurrent calls wait for a free connection (one server) or fail as unavailable (a
    cluster, whose client cannot wait)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        # After Redis restarts, every pooled connection is dead: retry on a new one (briefly,
        # so a Redis that is really down fails fast). from_url's default is no retry at all.
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    }
    if cluster:
        # Without full coverage the client keeps serving the slots of the masters that are up.
        return _RedisCluster.from_url(
            url, require_full_coverage=False, max_connections=max_connections, **options
        )
    pool = _QuickPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_seconds,
        health_check_interval=30,
        **options,
    )
    pool.connection_class = _packing_in_c(pool.connection_class)
    return Redis.from_pool(pool)


async def prepare(client: RedisClient) -> None:
    """Learn a cluster's nodes and slots now: redis-py's cluster client, left to do it on first
    use, fails some of many concurrent first calls. Unreachable now: it retries on first use."""
    if isinstance(client, RedisCluster):
        with contextlib.suppress(*REDIS_DOWN):
            await client.initialize()


Health = Literal["ok", "degraded", "unavailable"]


async def redis_health(client: RedisClient, timeout_seconds: float = 2.0) -> Health:
    """ok: every master answers; degraded (a cluster only): some do, so the slots of the
    others fail; unavailable: none does."""
    if isinstance(client, RedisCluster):
        masters = client.get_primaries()
        pings = [client.ping(target_nodes=node) for node in masters]
    else:
        pings = [client.ping()]
    answers = await asyncio.gather(
        *(asyncio.wait_for(ping, timeout_seconds) for ping in pings), return_exceptions=True
    )
    up = sum(1 for answer in answers if answer is True)
    if up == len(answers):
        return "ok"
    return "degraded" if up else "unavailable"
