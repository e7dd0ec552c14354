"""Frames a client should never send, over both WebSocket protocols: each closes the connection
with 4400 (an invalid message) instead of raising inside the server, and errors the protocol
handlers write themselves carry a code like every other error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.graphql_client import (
    API_KEYS,
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    LEGACY_GRAPHQL_WS,
    SESSION_EVENTS,
    ws_url,
)
from tests.support.patience import patience

PROTOCOLS = [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS]
START = {GRAPHQL_TRANSPORT_WS: "subscribe", LEGACY_GRAPHQL_WS: "start"}
DEEP = 50_000
TOO_MANY_TOKENS = 'subscription {{ sessionEvents(sessionId: "s") {{ {} }} }}'.format(
    " ".join(["type"] * 30)
)


@pytest.fixture
def url(module_server, redis) -> str:
    return module_server(api_keys=API_KEYS, max_subscriptions_per_connection=1)


async def opened(url: str, protocol: str) -> ClientConnection:
    """A connection through connection_init and its ack."""
    socket = await connect(ws_url(url), subprotocols=[protocol], open_timeout=patience())
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {KEY_A}"}})
    )
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


async def close_code(socket: ClientConnection) -> int | None:
    """The code the server closed with (waiting for its close frame)."""
    try:
        while True:
            await socket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def start(protocol: str, payload: Any, op_id: Any = "1") -> str:
    return json.dumps({"type": START[protocol], "id": op_id, "payload": payload})


def malformed(protocol: str) -> dict[str, str]:
    query = {"query": SESSION_EVENTS, "variables": {"sessionId": "s"}}
    return {
        "a JSON array": "[1, 2]",
        "a string": '"subscribe"',
        "not JSON": "{",
        "no type": json.dumps({"id": "1", "payload": query}),
        "a payload that is a list": start(protocol, [query]),
        "a payload that is a string": start(protocol, "query"),
        "no payload": json.dumps({"type": START[protocol], "id": "1"}),
        "a query that is not a string": start(protocol, {"query": 5}),
        "variables that are a list": start(protocol, {"query": SESSION_EVENTS, "variables": []}),
        "an id that is not a string": start(protocol, query, op_id=7),
        "variables nested deep": start(protocol, {"query": SESSION_EVENTS}).replace(
            "}}", ', "variables": ' + '{"k":' * DEEP + "1" + "}" * DEEP + "}}"
        ),
        "NaN in variables": start(protocol, query).replace('"s"', "NaN"),
        "a lone surrogate": start(protocol, query).replace('"s"', '"\\ud800"'),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_malformed_frame_closes_the_connection_with_4400(url, protocol):
    for name, frame in malformed(protocol).items():
        socket = await opened(url, protocol)
        await socket.send(frame)
        assert await close_code(socket) == 4400, name


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_malformed_connection_init_closes_the_connection(url, protocol):
    socket = await connect(ws_url(url), subprotocols=[protocol], open_timeout=patience())
    await socket.send(json.dumps({"type": "connection_init", "payload": [KEY_A]}))
    assert await close_code(socket) == 4400


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_subscription_limit_is_a_coded_error(url, protocol):
    socket = await opened(url, protocol)
    query = {"query": SESSION_EVENTS, "variables": {"sessionId": "s"}}
    await socket.send(start(protocol, query, "1"))
    await socket.send(start(protocol, query, "2"))
    reply = json.loads(await socket.recv())
    assert (reply["type"], reply["id"]) == ("error", "2"), reply
    errors = reply["payload"] if isinstance(reply["payload"], list) else [reply["payload"]]
    assert [e["extensions"]["code"] for e in errors] == ["LIMIT_EXCEEDED"]
    await socket.close()


async def test_a_subscription_over_the_token_limit_is_refused_with_its_reason(module_server, redis):
    # graphql-transport-ws: a document that does not parse closes the connection with 4400
    # and says why (Strawberry's reading of the protocol); it used to complete silently.
    url = module_server(api_keys=API_KEYS, max_query_tokens=20)
    socket = await opened(url, GRAPHQL_TRANSPORT_WS)
    await socket.send(start(GRAPHQL_TRANSPORT_WS, {"query": TOO_MANY_TOKENS}))
    with pytest.raises(ConnectionClosed) as closed:
        await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    assert "more than 20 tokens" in closed.value.rcvd.reason


async def test_a_legacy_subscription_over_the_token_limit_is_a_coded_error(module_server, redis):
    url = module_server(api_keys=API_KEYS, max_query_tokens=20)
    socket = await opened(url, LEGACY_GRAPHQL_WS)
    await socket.send(start(LEGACY_GRAPHQL_WS, {"query": TOO_MANY_TOKENS}))
    reply = json.loads(await socket.recv())
    assert reply["type"] == "error", reply
    assert reply["payload"]["extensions"]["code"] == "LIMIT_EXCEEDED", reply
    await socket.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_document_over_the_length_limit_is_a_coded_error_and_the_socket_stays(
    url, protocol
):
    socket = await opened(url, protocol)
    long_query = SESSION_EVENTS + " " * 200_000
    await socket.send(start(protocol, {"query": long_query, "variables": {"sessionId": "s"}}, "1"))
    reply = json.loads(await socket.recv())
    assert (reply["type"], reply["id"]) == ("error", "1"), reply
    errors = reply["payload"] if isinstance(reply["payload"], list) else [reply["payload"]]
    assert [e["extensions"]["code"] for e in errors] == ["LIMIT_EXCEEDED"]
    # The connection still serves: the same subscription at a sane length is accepted.
    await socket.send(
        start(protocol, {"query": SESSION_EVENTS, "variables": {"sessionId": "s"}}, "2")
    )
    await socket.close()
