"""API keys and tenants: who may call, and that tenants never see each other's sessions."""

from __future__ import annotations

import json

import pytest
from gql.transport.exceptions import TransportError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.support.graphql_client import (
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    KEY_B,
    LEGACY_GRAPHQL_WS,
    add_messages,
    codes,
    execute,
    execute_error,
    post,
    subscribed,
    ws_url,
)
from tests.support.patience import patience
from tests.support.server_log import leaked_fragments, server_log

SESSION = "query One($id: ID!) { session(id: $id) { id messageCount config { maxMessages } } }"
SESSIONS = "{ sessions(first: 50) { nodes { id } } }"
DELETE = "mutation Delete($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"
SET_MAX = """
mutation Set($id: String!, $max: Int!) {
  setSessionConfig(input: {sessionId: $id, maxMessages: $max}) {
    session { id messageCount config { maxMessages } }
  }
}
"""
ADD = (
    'mutation { addMessages(input: {sessionId: "chat", messages: [{role: USER, content: "x"}]}) '
    "{ sessionId } }"
)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer sk-not-a-key",
        f"Basic {KEY_A}",
        f"{KEY_A}",
        "Bearer",
    ],
    ids=["no-header", "unknown-key", "wrong-scheme", "no-scheme", "empty-key"],
)
async def test_a_call_without_a_valid_key_is_unauthenticated(url, api, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for query in (SESSIONS, ADD):
        reply = await post(url, query, headers=headers)
        # Refused from the headers alone (maas.authenticate), before the body is read.
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"].startswith("Bearer")
        body = reply.json()
        assert "data" not in body
        assert codes(body["errors"]) == ["UNAUTHENTICATED"]
    # The refused write stored nothing, for any tenant.
    assert (await execute(api, SESSIONS))["sessions"]["nodes"] == []


async def test_the_gql_client_sees_unauthenticated_for_an_unknown_key(url, connect):
    stranger = await connect(url, "sk-not-a-key")
    errors = await execute_error(stranger, SESSIONS)
    assert codes(errors) == ["UNAUTHENTICATED"]


async def test_another_tenants_session_looks_missing(url, api, connect):
    await add_messages(api, "private", "secret")
    tenant_b = await connect(url, KEY_B)
    assert await execute(tenant_b, SESSION, id="private") == {"session": None}
    assert (await execute(api, SESSION, id="private"))["session"]["messageCount"] == 1


async def test_another_tenants_sessions_are_not_listed(url, api, connect):
    await add_messages(api, "a-1", "x")
    await add_messages(api, "a-2", "x")
    tenant_b = await connect(url, KEY_B)
    await add_messages(tenant_b, "b-1", "y")
    assert (await execute(tenant_b, SESSIONS))["sessions"]["nodes"] == [{"id": "b-1"}]
    listed_a = (await execute(api, SESSIONS))["sessions"]["nodes"]
    assert sorted(n["id"] for n in listed_a) == ["a-1", "a-2"]


async def test_deleting_another_tenants_session_is_not_found_like_a_missing_one(url, api, connect):
    await add_messages(api, "private", "secret")
    tenant_b = await connect(url, KEY_B)
    theirs = await execute_error(tenant_b, DELETE, id="private")
    missing = await execute_error(tenant_b, DELETE, id="no-such")
    assert codes(theirs) == codes(missing) == ["NOT_FOUND"]
    # Nothing in the answer tells the two apart.
    assert theirs[0]["message"].replace("private", "<id>") == missing[0]["message"].replace(
        "no-such", "<id>"
    )
    assert (await execute(api, SESSION, id="private"))["session"]["messageCount"] == 1


async def test_configuring_another_tenants_session_id_creates_your_own(url, api, connect):
    await add_messages(api, "shared-id", "a's message")
    tenant_b = await connect(url, KEY_B)
    mine = (await execute(tenant_b, SET_MAX, id="shared-id", max=3))["setSessionConfig"]
    assert mine["session"] == {"id": "shared-id", "messageCount": 0, "config": {"maxMessages": 3}}

    theirs = (await execute(api, SESSION, id="shared-id"))["session"]
    assert theirs == {"id": "shared-id", "messageCount": 1, "config": {"maxMessages": 50}}
    assert (await execute(tenant_b, SESSION, id="shared-id"))["session"]["messageCount"] == 0


@pytest.mark.parametrize("session_id", ["shared-id", None], ids=["one-session", "all-sessions"])
async def test_another_tenants_events_are_not_delivered(url, api, connect, session_id):
    tenant_b = await connect(url, KEY_B)
    b_socket = await connect(url, KEY_B, ws=True)
    async with subscribed(b_socket, tenant_b, session_id, probe_session="shared-id") as events:
        await add_messages(api, "shared-id", "for tenant a only")
        await execute(api, SET_MAX, id="shared-id", max=4)
        await execute(api, DELETE, id="shared-id")
        # Events reach subscribers in the order they happened: had any of A's three leaked,
        # it would come before B's own write.
        await add_messages(tenant_b, "shared-id", "b's own")
        event = await events.next()
        assert event["type"] == "MESSAGES_ADDED"
        assert [m["content"] for m in event["messages"]] == ["b's own"]


async def test_a_websocket_without_a_valid_key_is_closed_with_4403(url):
    for payload in ({}, {"Authorization": "Bearer sk-not-a-key"}):
        async with ws_connect(
            ws_url(url), subprotocols=[GRAPHQL_TRANSPORT_WS], open_timeout=patience()
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403


async def test_a_legacy_websocket_without_a_valid_key_gets_a_connection_error(url):
    async with ws_connect(
        ws_url(url), subprotocols=[LEGACY_GRAPHQL_WS], open_timeout=patience()
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
        )
        reply = json.loads(await ws.recv())
        assert reply == {"type": "connection_error", "payload": {"code": "UNAUTHENTICATED"}}
        with pytest.raises(ConnectionClosed):
            await ws.recv()


@pytest.mark.parametrize("protocol", [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS])
async def test_the_gql_client_cannot_open_a_websocket_with_an_unknown_key(url, connect, protocol):
    with pytest.raises(TransportError):
        await connect(url, "sk-not-a-key", ws=True, protocol=protocol)


WRONG_KEY = "sk-wrong-key-77310c"


async def test_api_keys_never_appear_in_the_server_log_over_http(url, connect, caplog):
    with server_log(caplog) as log:
        api = await connect(url, KEY_A)
        await add_messages(api, "chat", "hello")
        await execute(api, "{ sessions { nodes { id context { tokenCount } } } }")
        await execute_error(api, DELETE, id="no-such")
        await execute_error(api, '{ session(id: "bad id!") { id } }')
        await post(url, SESSIONS, key=WRONG_KEY)
        await post(url, "{ sessions { nodes { nope } } }", key=KEY_B)
    assert log.text, "the server logged nothing: the capture is not working"
    for secret in (KEY_A, KEY_B, WRONG_KEY):
        assert not leaked_fragments(secret, log.text)


async def test_api_keys_never_appear_in_the_server_log_over_websockets(url, connect, caplog):
    with server_log(caplog) as log:
        writer = await connect(url, KEY_B)
        socket = await connect(url, KEY_B, ws=True)
        async with subscribed(socket, writer, "chat") as events:
            await add_messages(writer, "chat", "over ws")
            assert (await events.next())["messages"][0]["content"] == "over ws"
        headers = {"Authorization": f"Bearer {KEY_A}"}
        async with ws_connect(
            ws_url(url),
            subprotocols=[GRAPHQL_TRANSPORT_WS],
            additional_headers=headers,
            open_timeout=patience(),
        ) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {WRONG_KEY}"}}
            await ws.send(json.dumps(init))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert log.text, "the server logged nothing: the capture is not working"
    for secret in (KEY_A, KEY_B, WRONG_KEY):
        assert not leaked_fragments(secret, log.text), secret
