"""The Redis client the stores use: what counts as Redis being down, and health."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest
import redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from stores.redis_client import connect, is_redis_down, prepare, redis_health
from stores.redis_scripts import LuaScript
from tests.support.patience import short
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
    down = connect("redis://127.0.0.1:1/0", cluster=False, timeout_seconds=short(1))
    assert await redis_health(down) == "unavailable"
    await down.aclose()


async def test_health_of_a_cluster_with_a_master_down(killable_redis_cluster: LocalRedisCluster):
    client = connect(killable_redis_cluster.url, cluster=True, timeout_seconds=short(1))
    await prepare(client)
    assert await redis_health(client) == "ok"
    killable_redis_cluster.kill(1)
    assert await redis_health(client) == "degraded"
    await asyncio.to_thread(killable_redis_cluster.restart, 1)
    assert await redis_health(client) == "ok"
    await client.aclose()


async def test_the_other_masters_serve_while_the_first_master_is_down(
    killable_redis_cluster: LocalRedisCluster,
):
    cluster = killable_redis_cluster
    client = connect(cluster.url, cluster=True, timeout_seconds=short(1))
    await prepare(client)
    # The master of slot 0: redis-py makes the first master of the slot map its default node
    # when it re-reads the cluster, and asks it for the command table before any command.
    dead = cluster.nodes[cluster.slot_owner(0)]
    alive = [n for n in cluster.nodes if n.index != dead.index]
    cluster.kill(dead.index)
    pipe = client.pipeline(transaction=False)
    pipe.get(f"{cluster.hash_tag_on(dead.index)}k")
    with pytest.raises(RedisConnectionError) as failure:
        await pipe.execute()
    assert is_redis_down(failure.value)
    # A failed pipeline makes redis-py re-read the cluster before its next command (without
    # moving the dead master out of first place); the dead master must not take the others
    # down with it.
    for _ in range(5):
        for node in alive:
            await client.set(f"{cluster.hash_tag_on(node.index)}k", 1)
    await asyncio.to_thread(cluster.restart, dead.index)
    await client.aclose()


async def test_a_script_a_master_forgot_runs_while_another_master_is_down(
    killable_redis_cluster: LocalRedisCluster,
):
    # redis-py's own reload loads the script on every master, so it fails while any is down;
    # ours sends it with EVAL to the one master that needs it.
    cluster = killable_redis_cluster
    client = connect(cluster.url, cluster=True, timeout_seconds=short(1))
    await prepare(client)
    echo = LuaScript(client, "return ARGV[1]")
    key = f"{cluster.hash_tag_on(0)}k"
    assert await echo(keys=[key], args=["first"]) == b"first"
    with redis.Redis.from_url(cluster.nodes[0].url) as node:
        node.script_flush()
    cluster.kill(1)
    assert await echo(keys=[key], args=["again"]) == b"again"
    await asyncio.to_thread(cluster.restart, 1)
    await client.aclose()


# --- the connection pool of one server -------------------------------------------------------


def _pool_of(client: redis.asyncio.Redis) -> redis.asyncio.BlockingConnectionPool:
    return client.connection_pool  # type: ignore[return-value]


async def test_commands_on_a_free_connection_skip_the_pools_waiting_path(redis_url, monkeypatch):
    client = connect(redis_url, cluster=False)
    waited = []
    waiting_path = redis.asyncio.BlockingConnectionPool.get_connection

    async def counted(pool, *args, **kwargs):
        waited.append(pool)
        return await waiting_path(pool, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.BlockingConnectionPool, "get_connection", counted)
    for _ in range(10):
        assert await client.ping()
    await client.aclose()
    # Only the first command, which had to make the connection, took redis-py's path.
    assert len(waited) == 1


async def test_many_callers_share_one_connection_and_each_gets_its_own_answer(redis_url):
    client = connect(redis_url, cluster=False, max_connections=1)
    answers = await asyncio.gather(*(client.echo(f"caller {i}") for i in range(40)))
    assert answers == [f"caller {i}".encode() for i in range(40)]
    assert len(_pool_of(client)._available_connections) == 1
    await client.aclose()


async def test_a_caller_waits_for_the_only_connection_until_its_holder_releases_it(redis_url):
    client = connect(redis_url, cluster=False, max_connections=1, timeout_seconds=short(5))
    order: list[str] = []

    async def hold() -> None:
        await client.blpop(["maas-test-pool-empty-list"], timeout=1)
        order.append("holder done")

    async def wait() -> None:
        await asyncio.sleep(0)  # the holder takes the connection first
        assert await client.ping()
        order.append("waiter served")

    await asyncio.gather(hold(), wait())
    assert order == ["holder done", "waiter served"]
    await client.aclose()


async def test_a_caller_that_waits_past_the_pools_timeout_gets_a_connection_error(redis_url):
    holder = connect(redis_url, cluster=False, max_connections=1, timeout_seconds=short(5))
    pool = _pool_of(holder)
    hold_seconds = short(2)
    pool.timeout = hold_seconds / 10  # far shorter than the holder's command
    blocked = asyncio.create_task(holder.blpop(["maas-test-pool-empty-list"], timeout=hold_seconds))
    await asyncio.sleep(0)
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await holder.ping()
    await blocked
    assert await holder.ping()  # free again: served at once
    await holder.aclose()


async def test_commands_are_packed_in_c_as_redis_py_packs_them_and_run(redis_url):
    client = connect(redis_url, cluster=False)
    connection = await client.connection_pool.get_connection()
    python_packer = Connection()  # redis-py's own, same encoding

    def wire(packed: list[bytes | memoryview]) -> bytes:
        return b"".join(packed)

    try:
        commands = (
            ("SET", "k", "valeur é 😀", "EX", 60),
            ("EVALSHA", "a" * 40, 2, b"key:{t}", "x", -7, 10**30, 0.1, 1e300, float("-inf")),
            ("HSET", "h", "", b""),
            ("SET", "k", memoryview(b"x" * 10_000)),
            # Left to redis-py: a name for it to split.
            ("CLIENT SETNAME", "n"),
        )
        for args in commands:
            assert wire(connection.pack_command(*args)) == wire(python_packer.pack_command(*args))
        # hiredis packed them: redis-py's packer sends a large value as a chunk of its own.
        large = ("SET", "k", b"x" * 10_000)
        assert (len(connection.pack_command(*large)), len(python_packer.pack_command(*large))) == (
            1,
            3,
        )
        # What redis-py refuses is refused as it refuses it.
        with pytest.raises(redis.DataError):
            connection.pack_command("SET", "k", True)
        with pytest.raises(UnicodeEncodeError):
            connection.pack_command("SET", "k", "\udcff")
    finally:
        await client.connection_pool.release(connection)
    # A client with another encoding is packed by redis-py (hiredis would send UTF-8).
    latin = connect(f"{redis_url}?encoding=latin-1", cluster=False)
    latin_connection = latin.connection_pool.make_connection()
    assert latin_connection.pack_command("SET", "k", "é") == Connection(
        encoding="latin-1"
    ).pack_command("SET", "k", "é")
    await latin.aclose()
    # And Redis reads what was packed.
    assert await client.set("k", "valeur é 😀")
    assert (await client.get("k")).decode() == "valeur é 😀"
    assert await client.incrbyfloat("f", 0.1) == pytest.approx(0.1)
    await client.aclose()


async def test_every_node_of_a_cluster_packs_commands_in_c(empty_redis_cluster: LocalRedisCluster):
    client = connect(empty_redis_cluster.url, cluster=True)
    await prepare(client)
    large = ("SET", "k", b"x" * 10_000)
    for node in client.get_nodes():  # found after start-up, beside the one the URL names
        connection = node.acquire_connection()
        try:
            # hiredis packs it whole; redis-py's packer sends a large value as a chunk of its own.
            assert len(connection.pack_command(*large)) == 1
        finally:
            node.release(connection)
    for index in range(len(empty_redis_cluster.nodes)):
        key = f"{empty_redis_cluster.hash_tag_on(index)}k"
        assert await client.set(key, "valeur é")
        assert (await client.get(key)).decode() == "valeur é"
    await client.aclose()
