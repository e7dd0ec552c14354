"""Dashboards that drop their WebSocket and come back: with `after` they get every event they
missed exactly once, then live ones; a state read says where to start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.e2e.conftest import Connect
from tests.support.graphql_client import (
    API_KEYS,
    KEY_A,
    SESSION_EVENTS,
    EventReader,
    add_messages,
    codes,
    execute,
    request,
)
from tests.support.memory_queries import MEMORY_EVENTS, remember
from tests.support.patience import patience

pytestmark = pytest.mark.single_and_cluster


def contents(events: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for e in events for m in e["messages"]]


async def follow(socket: Any, session_id: str | None, after: str | None) -> EventReader:
    reader = EventReader(socket, session_id, after)
    reader.start()
    return reader


async def test_a_dashboard_resuming_after_its_last_event_misses_none_and_repeats_none(
    url, api, connect: Connect
):
    await add_messages(api, "chat", "before the read")
    read = await execute(api, '{ session(id: "chat") { lastEventId messageCount } }')
    assert read["session"]["messageCount"] == 1
    # Subscribing after the read's event id needs no probing: nothing written after the read
    # can be missed, whenever the subscription becomes live.
    socket = await connect(url, KEY_A, ws=True)
    reader = await follow(socket, "chat", read["session"]["lastEventId"])
    await add_messages(api, "chat", "one")
    first = await reader.next()
    assert contents([first]) == ["one"]
    await reader.close()  # the dashboard goes away ...

    await add_messages(api, "chat", "two")  # ... while the session goes on
    await add_messages(api, "chat", "three")
    again = await follow(await connect(url, KEY_A, ws=True), "chat", first["eventId"])
    await add_messages(api, "chat", "four")
    resumed = [await again.next() for _ in range(3)]
    await again.close()
    assert contents(resumed) == ["two", "three", "four"]
    ids = [first["eventId"], *(e["eventId"] for e in resumed)]
    assert len(set(ids)) == 4


async def test_every_session_of_the_tenant_resumes_from_the_session_list(
    url, api, connect: Connect
):
    await add_messages(api, "one", "listed")
    listing = await execute(api, "{ sessions { nodes { id } lastEventId } }")
    assert [n["id"] for n in listing["sessions"]["nodes"]] == ["one"]
    await add_messages(api, "two", "after the listing")
    await execute(api, 'mutation { deleteSession(input: {sessionId: "one"}) { sessionId } }')
    reader = await follow(
        await connect(url, KEY_A, ws=True), None, listing["sessions"]["lastEventId"]
    )
    seen = [await reader.next() for _ in range(2)]
    await reader.close()
    assert [(e["type"], e["sessionId"]) for e in seen] == [
        ("MESSAGES_ADDED", "two"),
        ("SESSION_DELETED", "one"),
    ]


async def test_an_after_that_is_not_an_event_id_is_bad_user_input(url, connect: Connect):
    socket = await connect(url, KEY_A, ws=True)
    with pytest.raises(TransportQueryError) as failure:
        async for _ in socket.subscribe(request(SESSION_EVENTS, sessionId="s", after="last")):
            pass
    assert codes(failure.value.errors or []) == ["BAD_USER_INPUT"]


async def test_resuming_from_events_no_longer_kept_asks_to_resync(
    module_server: Callable[..., str], redis, connect: Connect
):
    url = module_server(api_keys=API_KEYS, events_max_per_stream=2)
    api = await connect(url, KEY_A)
    await add_messages(api, "chat", "old")
    read = await execute(api, '{ session(id: "chat") { lastEventId } }')
    for n in range(3):
        await add_messages(api, "chat", f"new {n}")
    socket = await connect(url, KEY_A, ws=True)
    with pytest.raises(TransportQueryError) as failure:
        async for _ in socket.subscribe(
            request(SESSION_EVENTS, sessionId="chat", after=read["session"]["lastEventId"])
        ):
            pass
    errors = failure.value.errors or []
    assert codes(errors) == ["RESYNC_REQUIRED"]
    assert "lastEventId" in errors[0]["message"]


async def test_memory_events_resume_after_an_event_id(
    live_server: Callable[..., str], connect: Connect
):
    url = live_server()
    api = await connect(url)
    socket = await connect(url, ws=True)
    first = await remember(api, "Alice likes opera.")
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def read(after: str | None) -> None:
        async for event in socket.subscribe(request(MEMORY_EVENTS, userId="alice", after=after)):
            queue.put_nowait(event["memoryEvents"])

    # The first memory's event id, from a subscription that replays from the stream's start.
    task = asyncio.create_task(read("0-0"))
    event = await asyncio.wait_for(queue.get(), patience())
    assert event["memoryId"] == first["id"]
    task.cancel()
    second = await remember(api, "Alice visits Vienna in May.")
    await remember(api, "Bob likes jazz.", user_id="bob")  # another scope: filtered out
    task = asyncio.create_task(read(event["eventId"]))
    resumed = await asyncio.wait_for(queue.get(), patience())
    task.cancel()
    assert (resumed["type"], resumed["memoryId"]) == ("ADDED", second["id"])
