"""A real 3-master Redis Cluster (tests.support.redis_cluster) under redis-py's asyncio client.

Besides the harness itself, these pin the behaviour of redis-py's cluster client under faults that
the service is designed around: which errors a dead master causes, what recovers by itself, and
which client features (script reload, pipelines, pub/sub) do or do not survive a dead node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterCrossSlotError, NoScriptError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.patience import patience
from tests.support.redis_cluster import CLUSTER_READY_TIMEOUT_S, LocalRedisCluster

COUNTER_SCRIPT = "return redis.call('INCR', KEYS[1])"
PUBLISH_SCRIPT = "return redis.call('PUBLISH', ARGV[1], ARGV[2])"
# What the message store does: read the server clock, then append and bump a sequence.
STREAM_SCRIPT = """
local now = redis.call('TIME')
local id = redis.call('XADD', KEYS[1], '*', 'at', now[1] .. '.' .. now[2], 'text', ARGV[1])
local seq = redis.call('INCR', KEYS[2])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {id, seq, first[1][1], last[1][1]}
"""


def _node(cluster: LocalRedisCluster, index: int) -> redis.Redis:
    """A plain client on one master, bypassing cluster routing."""
    return redis.Redis(port=cluster.nodes[index].port)


def _cluster_info(cluster: LocalRedisCluster, index: int) -> dict[str, str]:
    with _node(cluster, index) as node:
        text = node.execute_command("CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _client_node(client: RedisCluster, cluster: LocalRedisCluster, index: int) -> ClusterNode:
    node = client.get_node(host="127.0.0.1", port=cluster.nodes[index].port)
    assert node is not None
    return node


async def _next_message(pubsub: PubSub) -> dict[str, Any] | None:
    """The next published message (subscribe confirmations skipped), or None at the deadline."""
    deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            return message
    return None


# -- the harness ---------------------------------------------------------------------------


def test_masters_split_all_slots_and_agree(empty_redis_cluster: LocalRedisCluster) -> None:
    nodes = empty_redis_cluster.nodes
    assert len(nodes) == 3
    assert len({node.port for node in nodes}) == len({node.pid for node in nodes}) == 3
    assert [slot for node in nodes for slot in node.slots] == list(range(16384))
    assert max(len(node.slots) for node in nodes) - min(len(node.slots) for node in nodes) <= 1
    for index in range(3):
        info = _cluster_info(empty_redis_cluster, index)
        assert info["cluster_state"] == "ok"
        assert info["cluster_known_nodes"] == "3"
        assert info["cluster_slots_ok"] == "16384"


async def test_keys_with_different_hash_tags_land_on_every_master(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = empty_redis_cluster, redis_cluster_client
    for index in range(3):
        for nth in range(5):
            key = f"{cluster.hash_tag_on(index, nth)}:msgs"
            await client.rpush(key, "hello")
            assert client.get_node_from_key(key).port == cluster.nodes[index].port
            assert cluster.node_for_key(key) == index
    for index in range(3):
        with _node(cluster, index) as node:
            assert node.dbsize() == 5


async def test_flushall_empties_every_master(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    for index in range(3):
        await redis_cluster_client.set(f"{empty_redis_cluster.hash_tag_on(index)}:k", "v")
    empty_redis_cluster.flushall()
    for index in range(3):
        with _node(empty_redis_cluster, index) as node:
            assert node.dbsize() == 0


def test_a_used_data_dir_is_refused(empty_redis_cluster: LocalRedisCluster) -> None:
    # Its nodes.conf files describe the running cluster; forming another one there would fail.
    with pytest.raises(RuntimeError, match="already holds a cluster"):
        LocalRedisCluster(empty_redis_cluster.data_dir).start()


def test_a_node_without_aof_rejoins_empty_but_owning_its_slots(tmp_path: Path) -> None:
    with LocalRedisCluster(tmp_path, masters=2, appendfsync=None) as cluster:
        assert [len(node.slots) for node in cluster.nodes] == [8192, 8192]
        key = f"{cluster.hash_tag_on(0)}:k"
        with _node(cluster, 0) as node:
            assert node.config_get("appendonly") == {"appendonly": "no"}
            node.set(key, "v")

        cluster.kill(0)
        assert cluster.url == cluster.nodes[1].url
        cluster.kill(1)
        with pytest.raises(RuntimeError, match="No node of the cluster is running"):
            _ = cluster.url
        cluster.restart_killed()  # nodes.conf brings back each node's id and slots

        assert [len(node.slots) for node in cluster.nodes] == [8192, 8192]
        with _node(cluster, 0) as node:
            assert node.get(key) is None
    assert all(node.pid is None for node in cluster.nodes)


# -- a dead master -------------------------------------------------------------------------


async def test_killed_master_fails_only_its_own_slots(
    killable_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = killable_redis_cluster, redis_cluster_client
    tags = [cluster.hash_tag_on(index) for index in range(3)]
    for tag in tags:
        await client.set(f"{tag}:k", tag)
    before = cluster.nodes[1]

    cluster.kill(1)
    # Right after the kill, and again once the others flag it `fail`: the survivors still map
    # its slots to it (MOVED there), so the client gets a connection error, never CLUSTERDOWN.
    for phase in ("just killed", "marked fail"):
        if phase == "marked fail":
            cluster.wait_until_failed(1)
        with pytest.raises(RedisConnectionError):
            await client.get(f"{tags[1]}:k")
        with pytest.raises(RedisConnectionError):
            await client.set(f"{tags[1]}:new", "lost")
        assert await client.get(f"{tags[0]}:k") == tags[0].encode()
        assert await client.set(f"{tags[2]}:new", "kept")
        # PING goes to one (default) node, moved off the dead one; all nodes means all must answer.
        assert await client.ping()
        with pytest.raises(RedisConnectionError):
            await client.ping(target_nodes=RedisCluster.ALL_NODES)
    for survivor in (0, 2):
        info = _cluster_info(cluster, survivor)
        assert info["cluster_state"] == "ok"  # cluster-require-full-coverage no
        assert info["cluster_slots_fail"] == str(len(before.slots))

    cluster.restart(1)
    after = cluster.nodes[1]
    assert (after.port, after.node_id, after.slots) == (before.port, before.node_id, before.slots)
    assert after.pid != before.pid
    # The same client object recovers by itself: no rebuild, no reinitialize call.
    assert await client.get(f"{tags[1]}:k") == tags[1].encode()
    assert await client.get(f"{tags[2]}:new") == b"kept"
    assert await client.ping(target_nodes=RedisCluster.ALL_NODES)


async def test_acknowledged_writes_survive_sigkill(
    killable_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = killable_redis_cluster, redis_cluster_client
    keys = [f"{cluster.hash_tag_on(2, nth)}:seq" for nth in range(50)]
    for key in keys:
        assert await client.incr(key) == 1
    stream = f"{cluster.hash_tag_on(2)}:stream"
    ids = [await client.xadd(stream, {"n": str(n)}) for n in range(100)]

    cluster.kill(2)  # appendfsync always: each reply above came after its fsync
    cluster.restart(2)

    assert [await client.get(key) for key in keys] == [b"1"] * len(keys)
    assert [entry_id for entry_id, _ in await client.xrange(stream)] == ids


# -- Lua scripts ---------------------------------------------------------------------------


async def test_registered_script_runs_on_every_master(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    counter = redis_cluster_client.register_script(COUNTER_SCRIPT)
    for index in range(3):
        key = f"{empty_redis_cluster.hash_tag_on(index)}:n"
        assert await counter(keys=[key]) == 1
        assert await counter(keys=[key]) == 2


async def test_script_reloads_after_a_node_lost_its_script_cache(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = empty_redis_cluster, redis_cluster_client
    counter = client.register_script(COUNTER_SCRIPT)
    key = f"{cluster.hash_tag_on(1)}:n"
    assert await counter(keys=[key]) == 1
    # What a restart does on Redis 7. 6.2 writes SCRIPT LOAD into its AOF and replays it, so
    # after kill + restart its cache is still there: don't count on either.
    with _node(cluster, 1) as node:
        node.script_flush()
    assert await counter(keys=[key]) == 2  # NoScriptError -> SCRIPT LOAD -> EVALSHA


async def test_script_cache_miss_fails_while_any_other_master_is_down(
    killable_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = killable_redis_cluster, redis_cluster_client
    counter = client.register_script(COUNTER_SCRIPT)
    key = f"{cluster.hash_tag_on(0)}:n"
    with _node(cluster, 0) as node:
        node.script_flush()

    cluster.kill(2)
    # The reload is SCRIPT LOAD on all primaries, so it fails on the dead one although node 0 is
    # fine. EVAL (or SCRIPT LOAD on the key's node only) runs and caches it on node 0 alone.
    with pytest.raises(RedisConnectionError):
        await counter(keys=[key])
    assert await client.eval(COUNTER_SCRIPT, 1, key) == 1
    assert await counter(keys=[key]) == 2
    with _node(cluster, 0) as node:
        node.script_flush()
    node0 = _client_node(client, cluster, 0)
    assert await client.execute_command("SCRIPT LOAD", COUNTER_SCRIPT, target_nodes=node0)
    assert await counter(keys=[key]) == 3


async def test_stream_script_reads_time_before_writing(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    append = redis_cluster_client.register_script(STREAM_SCRIPT)
    for index in range(3):
        tag = empty_redis_cluster.hash_tag_on(index)
        first_id, seq, _, _ = await append(keys=[f"{tag}:stream", f"{tag}:seq"], args=["a"])
        last_id, seq2, head, tail = await append(keys=[f"{tag}:stream", f"{tag}:seq"], args=["b"])
        assert (seq, seq2) == (1, 2)
        assert (head, tail) == (first_id, last_id)
        entries = await redis_cluster_client.xrevrange(f"{tag}:stream")
        assert [fields[b"text"] for _, fields in entries] == [b"b", b"a"]


async def test_script_keys_must_share_a_slot(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = empty_redis_cluster, redis_cluster_client
    keys = [f"{cluster.hash_tag_on(0)}:a", f"{cluster.hash_tag_on(1)}:b"]
    # Before its first topology load the client sends keyed commands to a random node and
    # follows MOVED, so the cross-slot check is the server's; after it, the client's own.
    with _node(cluster, 0) as node, pytest.raises(ClusterCrossSlotError):
        node.eval(COUNTER_SCRIPT, 2, *keys)
    await client.initialize()
    with pytest.raises(RedisClusterException, match="same key slot"):
        await client.eval(COUNTER_SCRIPT, 2, *keys)


# -- pipelines -----------------------------------------------------------------------------


async def test_pipeline_spans_nodes_and_reports_errors_per_command(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = empty_redis_cluster, redis_cluster_client
    tags = [cluster.hash_tag_on(index) for index in range(3)]
    counter = client.register_script(COUNTER_SCRIPT)
    for tag in tags:
        await counter(keys=[f"{tag}:n"])  # cached on every node
    with _node(cluster, 2) as node:
        node.script_flush()

    pipe = client.pipeline(transaction=False)
    # redis-py blocks pipe.evalsha() in cluster mode; the raw command goes through.
    with pytest.raises(RedisClusterException, match="evalsha is blocked"):
        pipe.evalsha(counter.sha, 1, f"{tags[0]}:n")
    pipe.execute_command("EVALSHA", counter.sha, 1, f"{tags[0]}:n")
    pipe.rpush(f"{tags[1]}:list", "a")
    pipe.execute_command("EVALSHA", counter.sha, 1, f"{tags[2]}:n")
    pipe.rpush(f"{tags[1]}:list", "b")
    pipe.get(f"{tags[0]}:n")
    results = await pipe.execute(raise_on_error=False)

    assert results[:2] == [2, 1]
    assert isinstance(results[2], NoScriptError)  # no reload inside a pipeline
    assert results[3:] == [2, b"2"]
    # Commands are grouped per node, each group sent in order: per node, order holds.
    assert await client.lrange(f"{tags[1]}:list", 0, -1) == [b"a", b"b"]


async def test_pipeline_with_a_dead_node_raises_even_without_raise_on_error(
    killable_redis_cluster: LocalRedisCluster,
) -> None:
    cluster = killable_redis_cluster
    tags = [cluster.hash_tag_on(index) for index in range(3)]
    cluster.kill(1)
    # A new client has no pooled connection to node 1: connecting fails for the whole batch,
    # which is retried (10 times, 0.25 s apart) and then raised. Healthy nodes' commands have
    # run by then, possibly more than once.
    async with RedisCluster.from_url(cluster.url) as client:
        pipe = client.pipeline(transaction=False)
        pipe.incr(f"{tags[0]}:n")
        pipe.get(f"{tags[1]}:k")
        with pytest.raises(RedisConnectionError):
            await pipe.execute(raise_on_error=False)
        assert int(await client.get(f"{tags[0]}:n") or 0) >= 1


# -- pub/sub -------------------------------------------------------------------------------


async def test_publish_in_a_script_reaches_subscribers_on_other_nodes(
    empty_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = empty_redis_cluster, redis_cluster_client
    await client.initialize()
    subscribers = [client.pubsub(node=_client_node(client, cluster, index)) for index in (1, 2)]
    try:
        for pubsub in subscribers:
            await pubsub.subscribe("events")
            assert pubsub.connection is not None
        assert [pubsub.connection.port for pubsub in subscribers if pubsub.connection] == [
            cluster.nodes[1].port,
            cluster.nodes[2].port,
        ]
        key = f"{cluster.hash_tag_on(0)}:k"
        # The reply counts node 0's own subscribers only; the cluster bus carries it further.
        assert await client.eval(PUBLISH_SCRIPT, 1, key, "events", "hello") == 0
        for pubsub in subscribers:
            message = await _next_message(pubsub)
            assert message is not None
            assert (message["channel"], message["data"]) == (b"events", b"hello")
    finally:
        for pubsub in subscribers:
            await pubsub.aclose()


async def test_pubsub_on_a_killed_node_fails_and_resubscribes_after_restart(
    killable_redis_cluster: LocalRedisCluster, redis_cluster_client: RedisCluster
) -> None:
    cluster, client = killable_redis_cluster, redis_cluster_client
    await client.initialize()
    publisher_key = f"{cluster.hash_tag_on(0)}:k"
    on_node2 = client.pubsub(node=_client_node(client, cluster, 2))
    on_node1 = client.pubsub(node=_client_node(client, cluster, 1))
    try:
        await on_node2.subscribe("events")
        confirmation = await on_node2.get_message(timeout=CLUSTER_READY_TIMEOUT_S)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
        cluster.kill(2)
        with pytest.raises(RedisConnectionError):
            await on_node2.get_message(timeout=patience())

        await on_node1.subscribe("events")  # a new one on a survivor works
        await client.eval(PUBLISH_SCRIPT, 1, publisher_key, "events", "while node 2 is down")
        message = await _next_message(on_node1)
        assert message is not None
        assert message["data"] == b"while node 2 is down"

        cluster.restart(2)
        # The same object reconnects and subscribes again on its next read.
        confirmation = await on_node2.get_message(timeout=CLUSTER_READY_TIMEOUT_S)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
        await client.eval(PUBLISH_SCRIPT, 1, publisher_key, "events", "after restart")
        message = await _next_message(on_node2)
        assert message is not None
        assert message["data"] == b"after restart"
    finally:
        await on_node2.aclose()
        await on_node1.aclose()
