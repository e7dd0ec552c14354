"""Redis killed (SIGKILL) under write load with subscriptions open, then restarted: nothing
acknowledged is lost, every failure is UNAVAILABLE, subscriptions carry on (or end with
UNAVAILABLE when the outage outlasts their grace), and a client resuming with `after` sees
every event exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.redis_server import RedisServerProcess
from tests.e2e.conftest import Connect
from tests.support.chaos import (
    WriteLoad,
    collect_until,
    error_codes,
    stored_ids,
    subscribe_from_state,
    until_ended,
)
from tests.support.graphql_client import KEY_A, EventReader
from tests.support.patience import patience

SESSIONS = ["alpha", "beta"]


@pytest.fixture
def crashable_redis(tmp_path: Path) -> Iterator[RedisServerProcess]:
    """A redis-server of the test's own that acknowledges a write only once it is on disk
    (appendfsync always): what it acknowledged must survive SIGKILL."""
    server = RedisServerProcess(
        tmp_path / "redis",
        start_timeout=patience(),
        persistent=True,
        extra_args=("--appendfsync", "always"),
    )
    server.start()
    yield server
    server.stop()


async def test_sigkill_under_load_loses_nothing_acknowledged_and_subscriptions_carry_on(
    crashable_redis: RedisServerProcess, serve_on, http, connect: Connect
):
    url = serve_on(crashable_redis.url, events_outage_grace_seconds=600)
    readers = await subscribe_from_state(url, KEY_A, SESSIONS, connect)
    load = WriteLoad(url, KEY_A, SESSIONS)
    load.start()
    await load.until_acked(40)
    crashable_redis.kill()
    await load.until_failed(10)  # writes fail meanwhile: seen, not slept for
    await asyncio.to_thread(crashable_redis.restart)
    before_restart = load.acked_count
    await load.until_acked(before_restart + 40)
    await load.stop()

    # Writes failed while Redis was down, each with UNAVAILABLE (none with INTERNAL, none cut).
    assert load.failures["UNAVAILABLE"] > 0
    assert set(load.failures) == {"UNAVAILABLE"}, load.failures
    client = http(url)
    deliveries = {}
    for session in SESSIONS:
        stored = await stored_ids(client, KEY_A, session)
        assert set(load.acked[session]) <= set(stored)  # nothing acknowledged is lost
        # The session's subscription carried on by itself: every acknowledged write once.
        delivery = deliveries[session] = await collect_until(
            readers[session], set(load.acked[session])
        )
        assert delivery.error is None
        assert set(load.acked[session]) <= set(delivery.message_ids)
        assert len(delivery.message_ids) == len(set(delivery.message_ids))
        assert set(delivery.message_ids) <= set(stored)
    everything = {i for ids in load.acked.values() for i in ids}
    tenant_wide = await collect_until(readers[None], everything)
    assert tenant_wide.error is None
    assert len(tenant_wide.message_ids) == len(set(tenant_wide.message_ids))

    # A dashboard that dropped early (about a quarter in: before the crash) resumes after the
    # last event it saw, and gets every later one exactly once.
    seen = deliveries["alpha"].events
    last_seen = seen[len(seen) // 4]
    resumed = EventReader(await connect(url, KEY_A, ws=True), "alpha", last_seen["eventId"])
    resumed.start()
    later = deliveries["alpha"].message_ids[
        deliveries["alpha"].message_ids.index(last_seen["messages"][-1]["id"]) + 1 :
    ]
    again = await collect_until(resumed, set(later))
    assert again.error is None
    assert again.message_ids == later
    for reader in [*readers.values(), resumed]:
        await reader.close()


async def test_an_outage_past_the_grace_ends_subscriptions_with_unavailable(
    crashable_redis: RedisServerProcess, serve_on, http, connect: Connect
):
    url = serve_on(crashable_redis.url, events_outage_grace_seconds=0.5)
    readers = await subscribe_from_state(url, KEY_A, SESSIONS, connect)
    crashable_redis.kill()
    try:
        # Redis stays down until every subscription has ended: an error, never silence.
        for reader in readers.values():
            assert error_codes((await until_ended(reader)).error) == ["UNAVAILABLE"]
        ready = await http(url).get("/health/ready")
        assert ready.status_code == 503
    finally:
        await asyncio.to_thread(crashable_redis.restart)
    for reader in readers.values():
        await reader.close()
