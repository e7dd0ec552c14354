"""Live session events over WebSocket, through the real gql client, with both subprotocols."""

from __future__ import annotations

from datetime import datetime

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.support.graphql_client import (
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    LEGACY_GRAPHQL_WS,
    SESSION_EVENTS,
    add_messages,
    codes,
    execute,
    request,
    subscribed,
)

pytestmark = pytest.mark.single_and_cluster

PROTOCOLS = pytest.mark.parametrize(
    "protocol",
    [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS],
    ids=["graphql-transport-ws", "graphql-ws"],
)
SET_MAX = """
mutation Set($id: String!, $max: Int!) {
  setSessionConfig(input: {sessionId: $id, maxMessages: $max}) { session { id } }
}
"""
DELETE = "mutation Delete($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"


@PROTOCOLS
async def test_a_sessions_events_arrive_in_the_order_they_happened(url, api, connect, protocol):
    socket = await connect(url, KEY_A, ws=True, protocol=protocol)
    async with subscribed(socket, api, "chat") as events:
        added = await add_messages(api, "chat", "hello", "world")
        await execute(api, SET_MAX, id="chat", max=7)
        await execute(api, DELETE, id="chat")

        first, second, third = [await events.next() for _ in range(3)]

    assert [e["type"] for e in (first, second, third)] == [
        "MESSAGES_ADDED",
        "CONFIG_CHANGED",
        "SESSION_DELETED",
    ]
    assert {e["sessionId"] for e in (first, second, third)} == {"chat"}
    assert first["messages"] == added["messages"]
    assert [m["content"] for m in first["messages"]] == ["hello", "world"]
    assert first["config"] is None
    assert second["messages"] == []
    assert second["config"] == {
        "strategy": "SLIDING_WINDOW",
        "maxMessages": 7,
        "maxTokens": 8000,
        "ttlSeconds": 86400,
    }
    assert third["messages"] == []
    assert third["config"] is None
    times = [datetime.fromisoformat(e["at"]) for e in (first, second, third)]
    assert times == sorted(times)


async def test_without_a_session_id_every_session_of_the_tenant_is_followed(url, api, connect):
    socket = await connect(url, KEY_A, ws=True)
    async with subscribed(socket, api, None) as events:
        await add_messages(api, "one", "to one")
        await add_messages(api, "two", "to two")
        await execute(api, SET_MAX, id="three", max=5)
        await execute(api, DELETE, id="one")
        seen = [await events.next() for _ in range(4)]
    assert [(e["type"], e["sessionId"]) for e in seen] == [
        ("MESSAGES_ADDED", "one"),
        ("MESSAGES_ADDED", "two"),
        ("CONFIG_CHANGED", "three"),
        ("SESSION_DELETED", "one"),
    ]


async def test_a_subscriber_to_one_session_gets_no_events_of_another(url, api, connect):
    socket = await connect(url, KEY_A, ws=True)
    async with subscribed(socket, api, "mine") as events:
        await add_messages(api, "other", "not for you")
        await execute(api, SET_MAX, id="other", max=4)
        await execute(api, DELETE, id="other")
        await add_messages(api, "mine", "for you")
        # Events arrive in the order they happened, so any of the other session's would
        # have come first.
        event = await events.next()
    assert event["sessionId"] == "mine"
    assert [m["content"] for m in event["messages"]] == ["for you"]


async def test_two_subscriptions_on_one_socket_each_get_their_events(url, api, connect):
    socket = await connect(url, KEY_A, ws=True)
    async with (
        subscribed(socket, api, "chat") as one_session,
        subscribed(socket, api, None, probe_session="chat") as all_sessions,
    ):
        await add_messages(api, "elsewhere", "only for the tenant-wide one")
        await add_messages(api, "chat", "for both")
        assert [m["content"] for m in (await one_session.next())["messages"]] == ["for both"]
        tenant_wide = [await all_sessions.next() for _ in range(2)]
    assert [e["sessionId"] for e in tenant_wide] == ["elsewhere", "chat"]


async def test_queries_and_mutations_work_over_a_graphql_transport_ws_socket(url, connect):
    socket = await connect(url, KEY_A, ws=True, protocol=GRAPHQL_TRANSPORT_WS)
    added = await add_messages(socket, "chat", "over the socket")
    assert [m["seq"] for m in added["messages"]] == [1]
    result = await execute(socket, '{ session(id: "chat") { messageCount } }')
    assert result == {"session": {"messageCount": 1}}


async def test_a_mutation_over_a_legacy_graphql_ws_socket_runs_or_is_bad_user_input(url, connect):
    socket = await connect(url, KEY_A, ws=True, protocol=LEGACY_GRAPHQL_WS)
    try:
        await add_messages(socket, "chat", "over the socket")
    except TransportQueryError as error:
        errors = error.errors or []
    else:
        return
    assert codes(errors) == ["BAD_USER_INPUT"]


async def test_subscribing_to_a_malformed_session_id_is_bad_user_input(url, connect):
    socket = await connect(url, KEY_A, ws=True)
    with pytest.raises(TransportQueryError) as failure:
        async for _ in socket.subscribe(request(SESSION_EVENTS, sessionId="not valid!")):
            pass
    assert codes(failure.value.errors or []) == ["BAD_USER_INPUT"]
