"""The Redis client the stores use: what counts as Redis being down, and health."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest
from redis.asyncio.connection import Connection

from stores.redis_client import connect, is_redis_down, prepare, redis_health
from tests.support.redis_cluster import LocalRedisCluster


class _ClosedTransport:
    """A writer whose transport was closed by a concurrent disconnect, as uvloop reports it."""

    def writelines(self, data: object) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    def close(self) -> None:
        pass


async def test_a_command_sent_on_a_connection_closed_under_it_counts_as_redis_down(redis_url):
    address = urlparse(redis_url)
    connection = Connection(host=address.hostname, port=address.port)
    await connection.connect()
    # redis-py then leaks the transport's error instead of ConnectionError (redis/redis-py#4287).
    writer, connection._writer = connection._writer, _ClosedTransport()  # type: ignore[assignment]
    with pytest.raises(RuntimeError) as leaked:
        await connection.send_packed_command(connection.pack_command("PING"), check_health=False)
    writer.close()
    assert is_redis_down(leaked.value)
    # The same kind of error raised anywhere else is a bug, not an outage.
    assert not is_redis_down(RuntimeError("unable to perform operation"))
    assert not is_redis_down(AttributeError("'NoneType' object has no attribute 'writelines'"))


async def test_health_of_one_server(redis_url):
    client = connect(redis_url, cluster=False)
    assert await redis_health(client) == "ok"
    await client.aclose()
    down = connect("redis://127.0.0.1:1/0", cluster=False, timeout_seconds=1)
    assert await redis_health(down) == "unavailable"
    await down.aclose()


async def test_health_of_a_cluster_with_a_master_down(killable_redis_cluster: LocalRedisCluster):
    client = connect(killable_redis_cluster.url, cluster=True, timeout_seconds=1)
    await prepare(client)
    assert await redis_health(client) == "ok"
    killable_redis_cluster.kill(1)
    assert await redis_health(client) == "degraded"
    await asyncio.to_thread(killable_redis_cluster.restart, 1)
    assert await redis_health(client) == "ok"
    await client.aclose()
