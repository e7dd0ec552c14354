"""The Redis message store and its scripts, against a real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from services.stm import ShortTermMemory
from services.stm_model import ConfigChange, NewMessage, Role
from stores.redis_keys import SessionKeys

pytestmark = pytest.mark.single_and_cluster

TENANT = "local"


def user(text: str, id: str | None = None) -> NewMessage:
    return NewMessage(role=Role.USER, content=text, id=id)


async def all_messages(stm: ShortTermMemory, session: str, tenant: str = TENANT) -> list:
    page = await stm.get_messages(tenant, session, first=500)
    return page.messages


async def test_five_hundred_messages_in_one_call_come_back_in_order(stm: ShortTermMemory):
    await stm.add_messages(TENANT, "s", [user(f"m{i}") for i in range(500)])
    messages = await all_messages(stm, "s")
    assert [m.content for m in messages] == [f"m{i}" for i in range(500)]
    assert [m.seq for m in messages] == list(range(1, 501))


async def test_concurrent_writers_in_one_millisecond_keep_each_writers_order(
    stm: ShortTermMemory,
):
    async def writer(w: int) -> None:
        for i in range(10):
            await stm.add_messages(TENANT, "s", [user(f"w{w}-{i}")])

    await asyncio.gather(*(writer(w) for w in range(25)))
    messages = await all_messages(stm, "s")
    assert [m.seq for m in messages] == list(range(1, 251))
    for w in range(25):
        mine = [m.content for m in messages if m.content.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(10)]


async def test_a_retried_write_is_stored_once(stm: ShortTermMemory):
    batch = [user("a", id="c-1"), user("b", id="c-2")]
    first = await stm.add_messages(TENANT, "s", batch)
    retry = await stm.add_messages(TENANT, "s", [*batch, user("c", id="c-3")])
    assert first.duplicate_ids == []
    assert retry.duplicate_ids == ["c-1", "c-2"]
    assert [m.id for m in retry.messages] == ["c-1", "c-2", "c-3"]
    assert [m.seq for m in retry.messages] == [1, 2, 3]
    assert [m.content for m in await all_messages(stm, "s")] == ["a", "b", "c"]
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    assert session.message_count == 3


async def test_token_counts_are_stored_with_each_message_and_summed(stm: ShortTermMemory):
    result = await stm.add_messages(TENANT, "s", [user("hello world"), user("")])
    # OpenAI accounting: 3 per message + role ("user" = 1) + content.
    assert [m.tokens for m in result.messages] == [3 + 1 + 2, 3 + 1 + 0]
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    assert session.token_count == 10


async def test_every_key_of_a_session_shares_one_cluster_slot(stm: ShortTermMemory, redis: Redis):
    await stm.add_messages(TENANT, "user:42:chat", [user("x")])
    # On a cluster, ask every master (KEYS would ask just one).
    where = {"target_nodes": RedisCluster.ALL_NODES} if isinstance(redis, RedisCluster) else {}
    keys = [k.decode() for k in await redis.keys("maas:{local:user:42:chat}*", **where)]
    assert len(keys) >= 3
    assert len({key_slot(k.encode()) for k in keys}) == 1
    all_keys = SessionKeys.of("maas", TENANT, "user:42:chat")
    assert len({key_slot(k.encode()) for k in [*all_keys.data, all_keys.lock]}) == 1


async def test_every_write_renews_the_ttl_of_every_key(make_stm, redis: Redis):
    stm = make_stm(stm_session_ttl_seconds=100)
    await stm.add_messages(TENANT, "s", [user("x")])
    keys = SessionKeys.of("maas", TENANT, "s")
    for key in (keys.meta, keys.order, keys.msgs):
        await redis.expire(key, 5)
    await stm.add_messages(TENANT, "s", [user("y")])
    for key in (keys.meta, keys.order, keys.msgs):
        assert 95 < await redis.ttl(key) <= 100


async def test_a_session_ttl_of_zero_never_expires(make_stm, redis: Redis):
    stm = make_stm(stm_session_ttl_seconds=100)
    await stm.add_messages(TENANT, "s", [user("x")])
    await stm.set_config(TENANT, "s", ConfigChange(ttl_seconds=0))
    keys = SessionKeys.of("maas", TENANT, "s")
    for key in (keys.meta, keys.order, keys.msgs):
        assert await redis.ttl(key) == -1


async def test_expired_sessions_leave_the_session_list(make_stm, redis: Redis):
    stm = make_stm(stm_session_ttl_seconds=100)
    for name in ("a", "b", "c"):
        await stm.add_messages(TENANT, name, [user("x")])
    await redis.delete(*SessionKeys.of("maas", TENANT, "b").data)  # as if its TTL ran out
    page = await stm.list_sessions(TENANT, first=10, after=None)
    assert [s.id for s, _ in page.sessions] == ["c", "a"]
    assert not page.has_more


async def test_session_list_pages_by_last_activity(stm: ShortTermMemory):
    for i in range(5):
        await stm.add_messages(TENANT, f"s{i}", [user("x")])
        await asyncio.sleep(0.002)
    await stm.add_messages(TENANT, "s1", [user("again")])
    first = await stm.list_sessions(TENANT, first=2, after=None)
    assert [s.id for s, _ in first.sessions] == ["s1", "s4"]
    assert first.has_more
    rest = await stm.list_sessions(TENANT, first=10, after=first.sessions[-1][1])
    assert [s.id for s, _ in rest.sessions] == ["s3", "s2", "s0"]
    assert not rest.has_more


async def test_tenants_never_see_each_others_sessions(stm: ShortTermMemory):
    await stm.add_messages("acme", "shared-id", [user("acme's secret")])
    await stm.add_messages("globex", "shared-id", [user("globex's note")])
    assert [m.content for m in await all_messages(stm, "shared-id", "acme")] == ["acme's secret"]
    assert [m.content for m in await all_messages(stm, "shared-id", "globex")] == ["globex's note"]
    page = await stm.list_sessions("initech", first=10, after=None)
    assert page.sessions == []
    assert await stm.get_session("initech", "shared-id") is None


async def test_records_keep_metadata_exactly(stm: ShortTermMemory, redis: Redis):
    metadata = {"tags": [], "nested": {"empty": {}, "list": [1, "two", None]}, "ü": "ok"}
    await stm.add_messages(
        TENANT, "s", [NewMessage(Role.TOOL, "r", name="search", metadata=metadata)]
    )
    [stored] = await all_messages(stm, "s")
    assert stored.metadata == metadata
    assert stored.name == "search"
    raw = await redis.hvals(SessionKeys.of("maas", TENANT, "s").msgs)
    assert json.loads(raw[0])["metadata"] == metadata


async def test_writes_survive_redis_forgetting_the_scripts(stm: ShortTermMemory, redis: Redis):
    await stm.add_messages(TENANT, "s", [user("before")])
    await redis.script_flush()
    await stm.add_messages(TENANT, "s", [user("after")])
    await redis.script_flush()
    await stm.set_config(TENANT, "s", ConfigChange(max_messages=5))
    assert [m.content for m in await all_messages(stm, "s")] == ["before", "after"]


async def test_paging_shows_every_session_once_when_all_share_one_millisecond(make_stm):
    stm = make_stm(clock=lambda: 1_700_000_000_000)
    for i in range(100):
        await stm.add_messages(TENANT, f"s{i:03}", [user("x")])
    seen: list[str] = []
    after = None
    while True:
        page = await stm.list_sessions(TENANT, first=7, after=after)
        seen += [s.id for s, _ in page.sessions]
        if not page.has_more:
            break
        after = page.sessions[-1][1]
    assert sorted(seen) == [f"s{i:03}" for i in range(100)]
    assert len(seen) == 100
