"""Redis killed (SIGKILL) under write load with subscriptions open, then restarted: nothing
acknowledged is lost, every failure is UNAVAILABLE, subscriptions carry on (or end with
UNAVAILABLE when the outage outlasts their grace), and a client resuming with `after` sees
every event exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.app import create_app
from maas.settings import Settings
from stores.redis_server import RedisServerProcess
from tests.e2e.conftest import Connect
from tests.support.chaos import WriteLoad, collect_until, ended_with, error_codes, stored_ids
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import API_KEYS, KEY_A, EventReader, add_messages, execute
from tests.support.threaded_server import ThreadedServer

SESSIONS = ["alpha", "beta"]


@pytest.fixture
def crashable_redis(tmp_path: Path) -> Iterator[RedisServerProcess]:
    """A redis-server of the test's own that acknowledges a write only once it is on disk
    (appendfsync always): what it acknowledged must survive SIGKILL."""
    server = RedisServerProcess(
        tmp_path / "redis", persistent=True, extra_args=("--appendfsync", "always")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def serve_on(fake_llm_server: FakeLLM, tmp_path: Path) -> Iterator[Callable[..., str]]:
    servers: list[ThreadedServer] = []

    def start(redis_url: str, **overrides: Any) -> str:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            redis_url=redis_url,
            api_keys=API_KEYS,
            data_dir=tmp_path / "data",
            llm_base_url=fake_llm_server.base_url,
            llm_api_key="test-key",
            **overrides,
        )
        server = ThreadedServer(create_app(settings)).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def http(serve_on) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(url: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=url, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def subscribe_from_state(url: str, connect: Connect) -> dict[str | None, EventReader]:
    """One subscription per session and one tenant-wide, each resuming from a state read, so
    each is sure to miss nothing from that read on (no probing needed)."""
    api = await connect(url, KEY_A)
    for session in SESSIONS:
        await add_messages(api, session, "opening")
    readers: dict[str | None, EventReader] = {}
    for session in SESSIONS:
        read = await execute(
            api, "query($id: ID!) { session(id: $id) { lastEventId } }", id=session
        )
        readers[session] = EventReader(
            await connect(url, KEY_A, ws=True), session, read["session"]["lastEventId"]
        )
    listing = await execute(api, "{ sessions { lastEventId } }")
    readers[None] = EventReader(
        await connect(url, KEY_A, ws=True), None, listing["sessions"]["lastEventId"]
    )
    for reader in readers.values():
        reader.start()
    return readers


async def test_sigkill_under_load_loses_nothing_acknowledged_and_subscriptions_carry_on(
    crashable_redis: RedisServerProcess, serve_on, http, connect: Connect
):
    url = serve_on(crashable_redis.url, events_outage_grace_seconds=600)
    readers = await subscribe_from_state(url, connect)
    load = WriteLoad(url, KEY_A, SESSIONS)
    load.start()
    await load.until_acked(40)
    crashable_redis.kill()
    await asyncio.sleep(1.0)  # writes fail meanwhile
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
    crashable_redis: RedisServerProcess, serve_on, connect: Connect
):
    url = serve_on(crashable_redis.url, events_outage_grace_seconds=0.5)
    readers = await subscribe_from_state(url, connect)
    crashable_redis.kill()
    try:
        # Redis stays down until every subscription has ended: an error, never silence.
        for reader in readers.values():
            assert error_codes(await ended_with(reader)) == ["UNAVAILABLE"]
        ready = await http_get(url, "/health/ready")
        assert ready.status_code == 503
    finally:
        await asyncio.to_thread(crashable_redis.restart)
    for reader in readers.values():
        await reader.close()


async def http_get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await client.get(path)
