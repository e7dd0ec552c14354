"""The quota of stored messages and its ledger in the tenant's slot, against a real Redis (one
server, and a 3-master cluster where the ledger lives on another node than the sessions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from services.errors import LimitExceeded
from services.quotas import Admission, MessageQuota
from services.session_events import messages_added_prefix
from services.stm import ShortTermMemory
from services.stm_model import NewMessage, Role
from services.tenant_limits import LimitPolicy, TenantLimits
from stores.message_ledger import MessageLedger
from stores.redis_keys import SessionKeys, TenantKeys
from stores.redis_messages import RedisMessageStore, ReservationTooSmall
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.single_and_cluster

TENANT = "local"


def user(text: str, id: str | None = None) -> NewMessage:
    return NewMessage(role=Role.USER, content=text, id=id)


def users(count: int, prefix: str = "m") -> list[NewMessage]:
    return [user(f"{prefix}{i}", id=f"{prefix}{i}") for i in range(count)]


@pytest.fixture
def ledger(redis: Redis) -> MessageLedger:
    return MessageLedger(redis, RedisMessageStore(redis))


@pytest.fixture
def limited(make_stm: Callable[..., ShortTermMemory]) -> ShortTermMemory:
    """STM with a quota of 10 stored messages per tenant."""
    return make_stm(quota_max_messages=10)


async def stored(stm: ShortTermMemory, tenant: str = TENANT) -> int:
    """Messages the tenant's sessions hold, read from the sessions themselves."""
    page = await stm.list_sessions(tenant, first=500, after=None)
    return sum(session.message_count for session, _ in page.sessions)


async def test_the_ledger_follows_appends_retries_and_deletes(
    stm: ShortTermMemory, ledger: MessageLedger
):
    await stm.add_messages(TENANT, "a", users(3))
    await stm.add_messages(TENANT, "b", users(2))
    assert await ledger.counted(TENANT) == (5, 0)
    await stm.add_messages(TENANT, "a", users(4))  # three of them stored already
    assert await ledger.counted(TENANT) == (6, 0)
    await stm.delete_session(TENANT, "a")
    assert await ledger.counted(TENANT) == (2, 0)


async def test_a_write_past_the_quota_fails_whole_and_stores_nothing(
    limited: ShortTermMemory, ledger: MessageLedger
):
    await limited.add_messages(TENANT, "a", users(8))
    with pytest.raises(LimitExceeded) as refused:
        await limited.add_messages(TENANT, "b", users(3, "n"))
    assert refused.value.details == {
        "quota": "messages",
        "limit": 10,
        "used": 8,
        "requested": 3,
    }
    assert await limited.get_session(TENANT, "b") is None
    assert await ledger.counted(TENANT) == (8, 0)
    await limited.add_messages(TENANT, "b", users(2, "n"))
    assert await stored(limited) == 10


async def test_quotas_are_per_tenant(limited: ShortTermMemory):
    await limited.add_messages("t1", "s", users(10))
    await limited.add_messages("t2", "s", users(10))
    with pytest.raises(LimitExceeded):
        await limited.add_messages("t1", "s", users(1, "n"))


async def test_a_retried_write_at_the_quota_is_answered_not_refused(limited: ShortTermMemory):
    first = await limited.add_messages(TENANT, "s", users(10))
    retry = await limited.add_messages(TENANT, "s", users(10))
    assert retry.duplicate_ids == [m.id for m in first.messages]
    with pytest.raises(LimitExceeded) as refused:
        await limited.add_messages(TENANT, "s", [*users(10), user("one more", id="x")])
    assert refused.value.details["requested"] == 1
    assert await stored(limited) == 10


async def test_deleting_a_session_frees_its_messages(limited: ShortTermMemory):
    await limited.add_messages(TENANT, "a", users(6))
    await limited.add_messages(TENANT, "b", users(4))
    with pytest.raises(LimitExceeded):
        await limited.add_messages(TENANT, "c", users(5))
    await limited.delete_session(TENANT, "a")
    await limited.add_messages(TENANT, "c", users(5))
    assert await stored(limited) == 9


async def test_a_summary_frees_the_messages_it_folds(
    make_stm: Callable[..., ShortTermMemory], fake_llm: FakeLLM, ledger: MessageLedger
):
    stm = make_stm(
        quota_max_messages=10, stm_default_strategy="token_threshold", stm_max_tokens=400
    )
    fake_llm.script("The user counted words.")
    words = " ".join(f"word{i}" for i in range(40))
    await stm.add_messages(TENANT, "s", [user(f"{i} {words}") for i in range(8)])
    await stm.wait_idle()
    session = await stm.get_session(TENANT, "s")
    assert session is not None
    assert session.summary_count == 1
    assert await ledger.counted(TENANT) == (session.message_count, 0)
    assert session.message_count < 8
    await stm.add_messages(TENANT, "s", users(10 - session.message_count))


async def test_sessions_that_expired_are_found_and_their_messages_freed(
    limited: ShortTermMemory, redis: Redis, ledger: MessageLedger
):
    await limited.add_messages(TENANT, "old", users(7))
    await limited.add_messages(TENANT, "live", users(3))
    # Expiry removes a session's keys and writes no event: as if its TTL ran out.
    await redis.delete(*SessionKeys.of("maas", TENANT, "old").data)
    assert await ledger.counted(TENANT) == (10, 0)  # the ledger cannot know yet
    await limited.add_messages(TENANT, "new", users(5, "n"))
    assert await ledger.counted(TENANT) == (8, 0)
    listed = await limited.list_sessions(TENANT, first=10, after=None)
    assert [session.id for session, _ in listed.sessions] == ["new", "live"]


async def test_a_listing_that_finds_a_session_expired_frees_its_messages(
    stm: ShortTermMemory, redis: Redis, ledger: MessageLedger
):
    await stm.add_messages(TENANT, "old", users(7))
    await stm.add_messages(TENANT, "live", users(3))
    await redis.delete(*SessionKeys.of("maas", TENANT, "old").data)
    await stm.list_sessions(TENANT, first=10, after=None)
    assert await ledger.counted(TENANT) == (3, 0)


async def test_a_dead_writers_reservation_holds_until_it_expires_then_is_released(
    limited: ShortTermMemory, redis: Redis, ledger: MessageLedger
):
    # A writer reserved room and died before writing: while its reservation lives, the room
    # stays taken (the write might still land); once expired, the session's state settles it.
    live = await ledger.reserve(TENANT, "ghost", 6, limit=10)
    assert live.lease is not None
    with pytest.raises(LimitExceeded) as refused:
        await limited.add_messages(TENANT, "s", users(5))
    assert refused.value.details["used"] == 6
    await ledger.release(TENANT, live.lease)
    # That refusal looked for stale counts; the next may look again at once (not in a second).
    await redis.delete(TenantKeys.of("maas", TENANT).message_sweep)

    dead = await MessageLedger(redis, RedisMessageStore(redis), lease_ms=0).reserve(
        TENANT, "ghost", 6, limit=10
    )
    assert dead.lease is not None
    await limited.add_messages(TENANT, "s", users(5))
    assert await ledger.counted(TENANT) == (5, 0)


async def test_a_write_whose_copy_failed_stays_counted_until_a_later_copy_counts_it(
    limited: ShortTermMemory, redis: Redis, ledger: MessageLedger
):
    # The session's script ran; the copy into the tenant's slot did not (its node was down).
    store = RedisMessageStore(redis)
    reservation = await ledger.reserve(TENANT, "s", 4, limit=10)
    assert reservation.lease is not None
    records = [(m.id or "", m.content) for m in users(4)]
    keys = SessionKeys.of("maas", TENANT, "s")
    await store._scripts.append(
        keys=[*keys.data, keys.backlog],
        args=[0, 100, 0, 1, messages_added_prefix("s", 1), -1, "0", 0, *_pairs(records)],
    )
    assert await ledger.counted(TENANT) == (0, 4)
    with pytest.raises(LimitExceeded):
        await limited.add_messages(TENANT, "other", users(7, "n"))
    # The session's next write copies both events: its messages are counted, and the
    # reservation stays until it expires (conservative: the room it holds is double-counted).
    await limited.add_messages(TENANT, "s", users(2, "n"))
    assert await ledger.counted(TENANT) == (6, 4)


def _pairs(records: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for message_id, content in records:
        out += [message_id, '{"seq":0,"tokens":1,"content":"' + content + '"}']
    return out


async def test_concurrent_writers_never_store_past_the_quota(
    limited: ShortTermMemory, ledger: MessageLedger
):
    async def write(n: int) -> int:
        try:
            result = await limited.add_messages(TENANT, f"s{n % 4}", users(3, f"w{n}-"))
        except LimitExceeded:
            return 0
        return len(result.messages)

    acknowledged = await asyncio.gather(*(write(n) for n in range(12)))
    assert sum(acknowledged) <= 10
    assert sum(acknowledged) == await stored(limited) == 9  # three writes of three fit
    assert await ledger.counted(TENANT) == (9, 0)


async def test_an_append_under_a_reservation_too_small_for_it_writes_nothing(redis: Redis):
    store = RedisMessageStore(redis)
    records = [(m.id or "", '{"seq":0,"tokens":1}') for m in users(2)]
    with pytest.raises(ReservationTooSmall) as refused:
        await store.append(
            TENANT, "s", records, default_ttl=0, now_ms=1, event_prefix="[", max_new=1
        )
    assert refused.value.new == 2
    assert await store.read_meta(TENANT, "s") is None


async def test_a_write_that_found_its_reservation_too_small_gives_it_back_and_counts_again(
    redis: Redis, ledger: MessageLedger
):
    quota = MessageQuota(ledger, LimitPolicy(TenantLimits(max_messages=10)))
    admissions: list[Admission] = []

    async def write(admission: Admission) -> str:
        admissions.append(admission)
        if len(admissions) == 1:
            raise ReservationTooSmall(3)
        return "written"

    assert await quota.write(TENANT, "s", ["a", "b", "c"], write) == "written"
    first, second = admissions
    assert first.lease != second.lease
    assert await ledger.counted(TENANT) == (0, 3)  # the second's, until its write is copied
