"""Session events as the STM service writes and serves them: one per change, in the session's
stream and (copied) in the tenant's, resumable after any event id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.errors import InvalidInput, ResyncRequired
from services.session_events import SessionEvent, SessionEventType
from services.stm import ShortTermMemory
from services.stm_model import ConfigChange, NewMessage, Role
from stores.redis_keys import SessionKeys, TenantKeys
from tests.support.patience import patience

pytestmark = pytest.mark.single_and_cluster

TENANT = "local"


def user(text: str, id: str | None = None) -> NewMessage:
    return NewMessage(role=Role.USER, content=text, id=id)


async def events_after(
    stm: ShortTermMemory, session_id: str | None, after: str, count: int
) -> list[SessionEvent]:
    """The next `count` events after `after` (replayed from the stream)."""
    feed: AsyncIterator[SessionEvent] = stm.session_events(TENANT, session_id, after)
    try:
        return [await asyncio.wait_for(anext(feed), patience()) for _ in range(count)]
    finally:
        await feed.aclose()  # type: ignore[attr-defined]


async def test_every_change_is_one_event_in_the_session_and_the_tenant_stream(
    stm: ShortTermMemory,
):
    await stm.add_messages(TENANT, "s", [user("a"), user("b")])
    await stm.set_config(TENANT, "s", ConfigChange(max_messages=7))
    await stm.add_messages(TENANT, "other", [user("c")])
    await stm.delete_session(TENANT, "s")

    own = await events_after(stm, "s", "0-0", 3)
    assert [e.type for e in own] == [
        SessionEventType.MESSAGES_ADDED,
        SessionEventType.CONFIG_CHANGED,
        SessionEventType.SESSION_DELETED,
    ]
    assert [m.content for m in own[0].messages] == ["a", "b"]
    assert own[1].config is not None
    assert own[1].config.max_messages == 7
    tenant_wide = await events_after(stm, None, "0-0", 4)
    assert [(e.type, e.session_id) for e in tenant_wide] == [
        (SessionEventType.MESSAGES_ADDED, "s"),
        (SessionEventType.CONFIG_CHANGED, "s"),
        (SessionEventType.MESSAGES_ADDED, "other"),
        (SessionEventType.SESSION_DELETED, "s"),
    ]
    # The tenant's stream has ids of its own, in its own order.
    ids = [e.event_id for e in tenant_wide]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


async def test_a_duplicate_write_makes_no_event(stm: ShortTermMemory, redis: Redis):
    await stm.add_messages(TENANT, "s", [user("a", id="m-1")])
    await stm.add_messages(TENANT, "s", [user("a", id="m-1")])
    assert await redis.xlen(SessionKeys.of("maas", TENANT, "s").events) == 1
    assert await redis.xlen(TenantKeys.of("maas", TENANT).session_events) == 1


async def test_concurrent_writers_reach_the_tenant_stream_once_each_in_session_order(
    make_stm, redis: Redis
):
    # Two service instances stand for two server processes writing the same sessions.
    one, two = make_stm(), make_stm()

    async def writer(stm: ShortTermMemory, name: str) -> None:
        for i in range(20):
            await stm.add_messages(TENANT, f"s{i % 3}", [user(f"{name}-{i}")])

    await asyncio.gather(writer(one, "x"), writer(two, "y"), writer(one, "z"))
    tenant_wide = await events_after(one, None, "0-0", 60)
    contents = [m.content for e in tenant_wide for m in e.messages]
    assert sorted(contents) == sorted(f"{w}-{i}" for w in "xyz" for i in range(20))
    for session in ("s0", "s1", "s2"):
        mine = [e for e in tenant_wide if e.session_id == session]
        own_events = await events_after(one, session, "0-0", len(mine))
        own = [m.content for e in own_events for m in e.messages]
        assert [m.content for e in mine for m in e.messages] == own


async def test_a_write_whose_index_step_failed_is_listed_after_its_retry(
    stm: ShortTermMemory, redis: Redis
):
    index = TenantKeys.of("maas", TENANT).sessions
    await redis.set(index, "not a sorted set")  # the tenant's slot refuses the second step
    with pytest.raises(ResponseError):
        await stm.add_messages(TENANT, "s", [user("a", id="m-1")])
    await redis.delete(index)
    # The message was stored and its event written; the retry (same id) stores nothing new
    # and brings the missing event into the tenant's stream and the session into the index.
    retry = await stm.add_messages(TENANT, "s", [user("a", id="m-1")])
    assert retry.duplicate_ids == ["m-1"]
    page = await stm.list_sessions(TENANT, first=10, after=None)
    assert [s.id for s, _ in page.sessions] == ["s"]
    [event] = await events_after(stm, None, "0-0", 1)
    assert [m.id for m in event.messages] == ["m-1"]
    assert page.last_event_id == event.event_id


async def test_the_next_write_repairs_what_a_failed_index_step_missed(
    stm: ShortTermMemory, redis: Redis
):
    index = TenantKeys.of("maas", TENANT).sessions
    await redis.set(index, "not a sorted set")
    with pytest.raises(ResponseError):
        await stm.add_messages(TENANT, "s", [user("first")])
    await redis.delete(index)
    await stm.add_messages(TENANT, "s", [user("second")])
    tenant_wide = await events_after(stm, None, "0-0", 2)
    assert [m.content for e in tenant_wide for m in e.messages] == ["first", "second"]


async def test_a_session_read_tells_where_to_resume(stm: ShortTermMemory):
    await stm.add_messages(TENANT, "s", [user("seen in the read")])
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    assert session.last_event_id is not None
    await stm.add_messages(TENANT, "s", [user("after the read")])
    [event] = await events_after(stm, "s", session.last_event_id, 1)
    assert [m.content for m in event.messages] == ["after the read"]


async def test_a_deleted_sessions_events_can_still_be_resumed(stm: ShortTermMemory):
    await stm.add_messages(TENANT, "s", [user("a")])
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    await stm.delete_session(TENANT, "s")
    [event] = await events_after(stm, "s", session.last_event_id or "", 1)
    assert event.type is SessionEventType.SESSION_DELETED


async def test_resuming_from_an_event_no_longer_kept_asks_for_a_resync(make_stm):
    stm = make_stm(events_max_per_stream=2)
    first = await stm.add_messages(TENANT, "s", [user("0")])
    assert first.messages
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    for n in range(1, 4):
        await stm.add_messages(TENANT, "s", [user(str(n))])
    with pytest.raises(ResyncRequired):
        await events_after(stm, "s", session.last_event_id or "", 1)


async def test_an_after_that_is_no_event_id_is_bad_input(stm: ShortTermMemory):
    with pytest.raises(InvalidInput):
        await events_after(stm, "s", "yesterday", 1)


async def test_a_summary_reaches_the_tenant_stream_and_every_mark_outlives_its_stream(
    make_stm, fake_llm, redis: Redis
):
    # The mark (the newest event copied into the tenant's stream) must live as long as the
    # session's stream, or a later copy would take old events for new ones.
    stm = make_stm(
        stm_default_strategy="token_threshold", stm_max_tokens=400, stm_session_ttl_seconds=500
    )
    stream = SessionKeys.of("maas", TENANT, "s").events
    mark = TenantKeys.of("maas", TENANT).fan_in_mark("s")

    async def mark_outlives_stream() -> None:
        assert await redis.pttl(mark) > await redis.pttl(stream) > 0

    fake_llm.script("The user counted words.")
    words = " ".join(f"word{i}" for i in range(40))
    await stm.add_messages(TENANT, "s", [user(f"{i} {words}") for i in range(8)])
    await mark_outlives_stream()
    await stm.wait_idle()  # the summary's own copy refreshes the mark too
    tenant_wide = await events_after(stm, None, "0-0", 2)
    assert [e.type for e in tenant_wide] == [
        SessionEventType.MESSAGES_ADDED,
        SessionEventType.SESSION_SUMMARIZED,
    ]
    await mark_outlives_stream()
    await stm.delete_session(TENANT, "s")  # the stream now lives EVENTS_MAX_AGE_SECONDS more
    await mark_outlives_stream()


async def test_a_session_recreated_after_it_was_seen_gone_stays_listed(
    stm: ShortTermMemory, redis: Redis
):
    # list_sessions drops an index entry whose session is gone, but only if no write touched
    # it since it was seen: the guard, as a write landing between the read and the drop.
    await stm.add_messages(TENANT, "s", [user("x")])
    keys = TenantKeys.of("maas", TENANT)
    index = keys.sessions
    seen = int(await redis.zscore(index, "s"))
    await redis.zadd(index, {"s": seen + 1})  # a write since
    forget = stm._store._scripts.forget_sessions
    await forget(keys=[index, keys.message_ledger], args=["s", seen])
    assert await redis.zscore(index, "s") == seen + 1
    await forget(keys=[index, keys.message_ledger], args=["s", seen + 1])
    assert await redis.zscore(index, "s") is None
