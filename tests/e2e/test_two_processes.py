"""Two real `maas serve` processes on one Redis: what one process writes, the other serves,
and live events cross processes through Redis pub/sub."""

from __future__ import annotations

import pytest

from tests.support.graphql_client import (
    KEY_A,
    KEY_B,
    add_messages,
    execute,
    subscribed,
)

pytestmark = pytest.mark.single_and_cluster

SESSION = "query One($id: ID!) { session(id: $id) { messageCount messages { nodes { content } } } }"
SET_MAX = """
mutation Set($id: String!, $max: Int!) {
  setSessionConfig(input: {sessionId: $id, maxMessages: $max}) { session { id } }
}
"""
DELETE = "mutation Delete($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"


@pytest.fixture(scope="module")
def servers(two_processes):
    """Two `maas serve` processes on the test Redis (their tenants A and B have no limits)."""
    return two_processes


async def test_a_subscriber_on_one_process_sees_writes_through_another(servers, redis, connect):
    first, second = servers
    socket = await connect(first.url, KEY_A, ws=True)
    writer = await connect(second.url, KEY_A)
    async with subscribed(socket, writer, "chat") as events:
        added = await add_messages(writer, "chat", "from process two")
        await execute(writer, SET_MAX, id="chat", max=9)
        await execute(writer, DELETE, id="chat")
        seen = [await events.next() for _ in range(3)]
    assert [e["type"] for e in seen] == ["MESSAGES_ADDED", "CONFIG_CHANGED", "SESSION_DELETED"]
    assert seen[0]["messages"] == added["messages"]
    assert seen[1]["config"]["maxMessages"] == 9


async def test_another_tenants_writes_on_another_process_are_not_delivered(servers, redis, connect):
    first, second = servers
    socket = await connect(first.url, KEY_B, ws=True)
    tenant_b = await connect(first.url, KEY_B)
    tenant_a = await connect(second.url, KEY_A)
    async with subscribed(socket, tenant_b, None, probe_session="chat") as events:
        await add_messages(tenant_a, "chat", "tenant a, process two")
        await add_messages(tenant_b, "chat", "tenant b, process one")
        event = await events.next()
    assert [m["content"] for m in event["messages"]] == ["tenant b, process one"]


async def test_both_processes_serve_the_same_sessions(servers, redis, connect):
    first, second = servers
    one = await connect(first.url, KEY_A)
    two = await connect(second.url, KEY_A)
    await add_messages(one, "chat", "written on one")
    await add_messages(two, "chat", "written on two")
    expected = {
        "session": {
            "messageCount": 2,
            "messages": {"nodes": [{"content": "written on one"}, {"content": "written on two"}]},
        }
    }
    assert await execute(one, SESSION, id="chat") == expected
    assert await execute(two, SESSION, id="chat") == expected
