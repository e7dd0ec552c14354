"""One master of a 3-master Redis Cluster killed under write load: its slots answer
UNAVAILABLE, the other masters keep serving, subscriptions on its sessions end with UNAVAILABLE
(the others carry on), and after it restarts nothing acknowledged is missing and a client
resuming with `after` sees every event once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis

from stores.redis_keys import SessionKeys, TenantKeys
from tests.e2e.conftest import Connect
from tests.support.chaos import (
    WriteLoad,
    collect_until,
    error_codes,
    stored_ids,
    subscribe_from_state,
    until_ended,
)
from tests.support.graphql_client import API_KEYS, KEY_A, EventReader, add_messages
from tests.support.patience import PATIENCE_S
from tests.support.redis_cluster import LocalRedisCluster

TENANT = API_KEYS[KEY_A]

# redis-py's cluster client can drop its connections to a master that died without closing
# them; Python then warns when it collects them. A resource warning of the library at garbage
# collection, not a behaviour of the service: ignored here, and only these two.
pytestmark = [
    pytest.mark.filterwarnings(
        f"ignore:Exception ignored in. <function {owner}.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    )
    for owner in ("StreamWriter", "AbstractConnection")
]


def session_on(cluster: LocalRedisCluster, node: int) -> str:
    """A session id of the tenant whose keys live on `node`."""
    for n in range(100_000):
        session = f"s{n}"
        if cluster.node_for_key(SessionKeys.of("maas", TENANT, session).meta) == node:
            return session
    raise AssertionError(f"no session id lands on node {node}")


async def readiness(client: httpx.AsyncClient, status: str) -> dict:
    """Poll /health/ready until it reports `status`."""
    body: dict = {}
    try:
        async with asyncio.timeout(PATIENCE_S):
            while body.get("status") != status:
                await asyncio.sleep(0.1)
                body = (await client.get("/health/ready")).json()
    except TimeoutError:
        raise AssertionError(f"readiness never said {status}; last: {body}") from None
    return body


async def test_sessions_spread_over_every_master(
    empty_redis_cluster: LocalRedisCluster, serve_on, connect: Connect
):
    cluster = empty_redis_cluster
    url = serve_on(cluster.url, redis_cluster=True)
    api = await connect(url, KEY_A)
    for node in range(3):
        await add_messages(api, session_on(cluster, node), f"on master {node}")
    for node in cluster.nodes:
        # Asked directly, each master holds the keys of one session.
        with redis.Redis.from_url(node.url) as direct:
            assert direct.keys(f"maas:{{{TENANT}:*"), f"master {node.index} holds no session"


async def test_a_dead_master_fails_only_its_slots_and_nothing_acknowledged_is_lost(
    killable_redis_cluster: LocalRedisCluster, serve_on, http, connect: Connect
):
    cluster = killable_redis_cluster
    tenant_node = cluster.node_for_key(TenantKeys.of("maas", TENANT).sessions)
    victim, survivor = (node for node in range(3) if node != tenant_node)
    doomed, safe = session_on(cluster, victim), session_on(cluster, survivor)
    url = serve_on(cluster.url, redis_cluster=True, events_outage_grace_seconds=1)
    client = http(url)
    readers = await subscribe_from_state(url, KEY_A, [doomed, safe], connect)
    load = WriteLoad(url, KEY_A, [doomed, safe])
    load.start()
    await load.until_acked(40)

    cluster.kill(victim)
    safe_at_kill = len(load.acked[safe])
    # The other masters keep serving: writes to the safe session go on being acknowledged.
    await load.until_acked(safe_at_kill + 30, session=safe)
    # The dead master's session: its subscription ends with UNAVAILABLE, not silence.
    doomed_before = await until_ended(readers[doomed])
    assert error_codes(doomed_before.error) == ["UNAVAILABLE"]
    degraded = await readiness(client, "degraded")
    assert degraded["checks"]["redis"] == "degraded"

    await asyncio.to_thread(cluster.restart, victim)
    doomed_at_restart = len(load.acked[doomed])
    await load.until_acked(doomed_at_restart + 10, session=doomed)
    await load.stop()
    await readiness(client, "ok")

    assert load.failures["UNAVAILABLE"] > 0
    assert set(load.failures) == {"UNAVAILABLE"}, load.failures
    for session in (doomed, safe):
        stored = await stored_ids(client, KEY_A, session)
        assert set(load.acked[session]) <= set(stored)
    # The safe session's subscription never stopped: every acknowledged write, once.
    safe_delivery = await collect_until(readers[safe], set(load.acked[safe]))
    assert safe_delivery.error is None
    assert len(safe_delivery.message_ids) == len(set(safe_delivery.message_ids))
    # The tenant-wide stream lives on a surviving master: it saw every write, once.
    everything = {i for ids in load.acked.values() for i in ids}
    tenant_wide = await collect_until(readers[None], everything)
    assert tenant_wide.error is None
    assert len(tenant_wide.message_ids) == len(set(tenant_wide.message_ids))
    # The doomed session's dashboard resumes after the last event it got: the rest, once.
    assert doomed_before.events  # it had events before its master went down
    last = doomed_before.events[-1]["eventId"]
    resumed = EventReader(await connect(url, KEY_A, ws=True), doomed, last)
    resumed.start()
    missing = set(load.acked[doomed]) - set(doomed_before.message_ids)
    again = await collect_until(resumed, missing)
    assert again.error is None
    assert len(again.message_ids) == len(set(again.message_ids))
    assert not set(again.message_ids) & set(doomed_before.message_ids)
    for reader in [*readers.values(), resumed]:
        await reader.close()
