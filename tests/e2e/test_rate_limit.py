"""The request rate limit as a client meets it: HTTP 429 with Retry-After, LIMIT_EXCEEDED with
retryAfterSeconds, over HTTP and WebSocket; what counts as a request and what does not."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from services.stm import ShortTermMemory
from services.stm_model import NewMessage, Role
from tests.support.graphql_client import (
    API_KEYS,
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    KEY_B,
    SESSION_EVENTS,
    FrameReader,
    bearer,
    post,
    ws_url,
)
from tests.support.prometheus_samples import sample, scrape

QUERY = "{ sessions(first: 1) { nodes { id } } }"
# Tenant A: two requests, then one per 1000 s (none more within a test). Tenant B: no limit.
LIMITS = {"tenant-a": {"rate_limit_requests_per_second": 0.001, "rate_limit_burst": 2}}


@pytest.fixture
def url(module_server: Callable[..., str], redis) -> str:
    return module_server(api_keys=API_KEYS, tenant_limits=LIMITS)


async def test_over_http_a_request_past_the_burst_is_429_with_retry_after(url: str):
    assert [(await post(url, QUERY, key=KEY_A)).status_code for _ in range(2)] == [200, 200]
    refused = await post(url, QUERY, key=KEY_A)
    assert refused.status_code == 429
    assert 990 <= int(refused.headers["Retry-After"]) <= 1000
    body = refused.json()
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "retryAfterSeconds": pytest.approx(1000, abs=10),
        "requestsPerSecond": 0.001,
        "burst": 2,
    }
    # Another tenant has its own limit (here: none).
    assert all([(await post(url, QUERY, key=KEY_B)).status_code == 200 for _ in range(5)])
    assert sample(await scrape(url), "maas_limit_rejections_total", limit="requests") >= 1


async def test_refused_requests_and_unauthenticated_or_invalid_ones_cost_nothing(url: str):
    for _ in range(3):
        invalid = await post(url, "{ sessions { nope } }", key=KEY_A)
        assert invalid.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        unauthenticated = await post(url, QUERY)
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for _ in range(2):
        assert (await post(url, QUERY, key=KEY_A)).status_code == 200
    for _ in range(3):
        assert (await post(url, QUERY, key=KEY_A)).status_code == 429


async def test_each_operation_over_a_websocket_counts_once(url: str):
    # A query sent over a socket is a request, as is a subscribe (the third here, refused:
    # its only result is the error, then it is complete).
    async with FrameReader(url, KEY_A, QUERY, operation_id="q") as query:
        assert json.loads(await query.frame())["payload"]["data"] == {"sessions": {"nodes": []}}
    async with FrameReader(url, KEY_A, SESSION_EVENTS, {"sessionId": "s"}) as live:
        async with FrameReader(url, KEY_A, SESSION_EVENTS, {"sessionId": "s"}) as refused:
            next_, complete = [json.loads(await refused.frame()) for _ in range(2)]
        assert next_["type"] == "next"
        assert next_["payload"]["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert complete["type"] == "complete"
        assert live.waiting == 0  # the live subscription got nothing of it


async def test_a_refused_subscribe_leaves_the_socket_and_its_other_subscriptions_alone(
    url: str, stm: ShortTermMemory
):
    from websockets.asyncio.client import connect

    async with connect(ws_url(url), subprotocols=[GRAPHQL_TRANSPORT_WS]) as socket:  # type: ignore[list-item]

        async def send(message: dict) -> None:
            await socket.send(json.dumps(message))

        async def receive() -> dict:
            while (message := json.loads(await socket.recv()))["type"] in ("ping", "pong"):
                pass
            return message

        await send({"type": "connection_init", "payload": bearer(KEY_A)})
        assert (await receive())["type"] == "connection_ack"
        # Writes that are no requests to this server: the service itself, on the same Redis.
        await stm.add_messages("tenant-a", "s", [NewMessage(role=Role.USER, content="first")])
        session = await stm.get_session("tenant-a", "s")
        assert session is not None
        # After the first event: one written before a subscription is live still comes.
        variables = {"sessionId": "s", "after": session.last_event_id}
        for operation_id in ("1", "2", "3"):  # the burst is two: one of them is refused
            payload = {"query": SESSION_EVENTS, "variables": variables}
            await send({"id": operation_id, "type": "subscribe", "payload": payload})
        refused = await receive()
        assert refused["type"] == "next"
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert await receive() == {"id": refused["id"], "type": "complete"}
        # The next write reaches both live subscriptions.
        await stm.add_messages("tenant-a", "s", [NewMessage(role=Role.USER, content="hi")])
        delivered = [await receive() for _ in range(2)]
        assert sorted(m["id"] for m in delivered) == sorted({"1", "2", "3"} - {refused["id"]})
        assert all(
            m["payload"]["data"]["sessionEvents"]["type"] == "MESSAGES_ADDED" for m in delivered
        )
