"""Many subscribers of one session on one server: those with the same operation share one
execution per event and receive the very bytes an unshared execution sends; different
selections, variables and tenants each get their own result."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.graphql_client import (
    API_KEYS,
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    KEY_B,
    LEGACY_GRAPHQL_WS,
    FrameReader,
    add_messages,
    all_live,
    result_of,
)
from tests.support.patience import patience

PROTOCOLS = pytest.mark.parametrize(
    "protocol",
    [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS],
    ids=["graphql-transport-ws", "graphql-ws"],
)
# Every selection here includes `type`: all_live's fence is a CONFIG_CHANGED event.
DASHBOARD = """
subscription Dashboard($sid: String, $withMessages: Boolean = true) {
  sessionEvents(sessionId: $sid) {
    type sessionId at
    messages @include(if: $withMessages) { ...Fields }
    config { strategy maxMessages }
  }
}
fragment Fields on Message {
  id seq role content name metadata tokenCount createdAt isSummary
  __typename
}
"""
TYPES_ONLY = "subscription($sid: String) { sessionEvents(sessionId: $sid) { type } }"
ALIASED = """
subscription($sid: String) {
  e: sessionEvents(sessionId: $sid) { kind: type, texts: messages { text: content } }
}
"""
# Probes, fences and tricky JSON: quotes, backslashes, non-ASCII, a newline.
CONTENT = 'Dashboards see "this" \\ ünïcödé ✓\nsecond line'


@pytest.fixture
def unshared_url(module_server: Callable[..., str], redis: Any) -> str:
    """A server of the same Redis that executes every subscriber's result on its own."""
    return module_server(api_keys=API_KEYS, shared_subscription_execution=False)


@contextlib.asynccontextmanager
async def readers(count: int, url: str, *args: Any, **kwargs: Any) -> AsyncIterator[list[Any]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(FrameReader(url, *args, **kwargs)) for _ in range(count)
        ]


async def results_counted(url: str) -> dict[str, float]:
    """maas_subscription_event_results_total of the server, by execution."""
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        text = (await client.get("/metrics")).text
    found = re.findall(
        r'^maas_subscription_event_results_total\{execution="(\w+)"\} ([0-9.e+]+)$', text, re.M
    )
    counted = {"executed": 0.0, "shared": 0.0}
    counted.update({name: float(value) for name, value in found})
    return counted


def counted_since(before: dict[str, float], after: dict[str, float]) -> tuple[int, int]:
    return (
        round(after["executed"] - before["executed"]),
        round(after["shared"] - before["shared"]),
    )


async def test_many_subscribers_of_one_operation_receive_the_same_correct_event(url, api):
    async with readers(12, url, KEY_A, DASHBOARD, {"sid": "dash"}) as group:
        await all_live(group, api, "dash")
        added = await add_messages(api, "dash", CONTENT, "and another", metadata={"k": [1, 2]})
        frames = [await reader.frame() for reader in group]

    assert len(set(frames)) == 1, "every subscriber got the same bytes"
    event = result_of(frames[0])["data"]["sessionEvents"]
    assert event["type"] == "MESSAGES_ADDED"
    assert event["sessionId"] == "dash"
    assert event["config"] is None
    assert [{k: m[k] for k in added["messages"][0]} for m in event["messages"]] == added["messages"]
    assert [m["content"] for m in event["messages"]] == [CONTENT, "and another"]
    assert {m["__typename"] for m in event["messages"]} == {"Message"}


@PROTOCOLS
async def test_a_shared_result_is_byte_for_byte_what_an_unshared_execution_sends(
    url, unshared_url, api, protocol
):
    # Both servers are on the same Redis: one write reaches the subscribers of both.
    async with (
        readers(3, url, KEY_A, DASHBOARD, {"sid": "dash"}, protocol=protocol) as shared,
        readers(3, unshared_url, KEY_A, DASHBOARD, {"sid": "dash"}, protocol=protocol) as own,
    ):
        await all_live([*shared, *own], api, "dash")
        await add_messages(api, "dash", CONTENT, name="ana", metadata={"x": {"y": None}})
        frames = [await reader.frame() for reader in (*shared, *own)]

    assert len(set(frames)) == 1
    assert json.loads(frames[0])["id"] == "1"
    assert result_of(frames[0])["data"]["sessionEvents"]["messages"][0]["content"] == CONTENT


@pytest.mark.parametrize(
    ("server", "expected"),
    [("url", (1, 9)), ("unshared_url", (10, 0))],
    ids=["shared", "per-subscriber"],
)
async def test_one_execution_serves_every_subscriber_of_an_operation(
    server, expected, request, api
):
    base_url = request.getfixturevalue(server)
    async with readers(10, base_url, KEY_A, DASHBOARD, {"sid": "dash"}) as group:
        await all_live(group, api, "dash")
        before = await results_counted(base_url)
        await add_messages(api, "dash", "one event")
        frames = [await reader.frame() for reader in group]
        after = await results_counted(base_url)

    assert len(set(frames)) == 1
    assert counted_since(before, after) == expected


async def test_subscribers_with_other_selections_or_variables_each_get_their_own_shape(url, api):
    async with (
        readers(3, url, KEY_A, DASHBOARD, {"sid": "dash"}) as full,
        # Tenant-wide, the same selection follows the tenant's stream: the same change as
        # another event, shared with the session's only when the two streams gave it the same
        # id (both stamped in one millisecond: then it is decoded as one object).
        readers(1, url, KEY_A, DASHBOARD) as tenant_wide,
        readers(2, url, KEY_A, DASHBOARD, {"sid": "dash", "withMessages": False}) as bare,
        readers(2, url, KEY_A, TYPES_ONLY, {"sid": "dash"}) as types,
        readers(2, url, KEY_A, ALIASED, {"sid": "dash"}, operation_id="op-2") as aliased,
    ):
        everyone = [*full, *tenant_wide, *bare, *types, *aliased]
        await all_live(everyone, api, "dash")
        before = await results_counted(url)
        await add_messages(api, "dash", "shapes")
        frames = {id(reader): await reader.frame() for reader in everyone}
        after = await results_counted(url)

    def data(group: list[Any]) -> list[dict[str, Any]]:
        return [result_of(frames[id(reader)])["data"] for reader in group]

    [full_event] = {json.dumps(d, sort_keys=True) for d in data([*full, *tenant_wide])}
    event = json.loads(full_event)["sessionEvents"]
    assert [m["content"] for m in event["messages"]] == ["shapes"]
    assert (
        data(bare)
        == [
            {
                "sessionEvents": {
                    "type": "MESSAGES_ADDED",
                    "sessionId": "dash",
                    "at": event["at"],
                    "config": None,
                }
            }
        ]
        * 2
    )
    assert data(types) == [{"sessionEvents": {"type": "MESSAGES_ADDED"}}] * 2
    assert data(aliased) == [{"e": {"kind": "MESSAGES_ADDED", "texts": [{"text": "shapes"}]}}] * 2
    assert {json.loads(frames[id(r)])["id"] for r in aliased} == {"op-2"}
    # Ten subscribers, four different results (five when the tenant stream's id differs).
    assert counted_since(before, after) in {(4, 6), (5, 5)}


async def test_tenants_receive_only_their_own_events_and_results(url, connect):
    api_a, api_b = await connect(url, KEY_A), await connect(url, KEY_B)
    async with (
        readers(3, url, KEY_A, DASHBOARD, {"sid": "dash"}) as tenant_a,
        readers(3, url, KEY_B, DASHBOARD, {"sid": "dash"}) as tenant_b,
    ):
        await all_live(tenant_a, api_a, "dash")
        await all_live(tenant_b, api_b, "dash")
        before = await results_counted(url)
        await add_messages(api_a, "dash", "for tenant a")
        await add_messages(api_b, "dash", "for tenant b")
        await add_messages(api_a, "dash", "a again")
        frames_a = [[await r.frame(), await r.frame()] for r in tenant_a]
        frames_b = [await r.frame() for r in tenant_b]
        after = await results_counted(url)
        leftovers = [r.drain() for r in (*tenant_a, *tenant_b)]

    def contents(frame: str) -> list[str]:
        return [m["content"] for m in result_of(frame)["data"]["sessionEvents"]["messages"]]

    # Events arrive in order: B's, had it leaked to A, would come between A's two.
    assert [[contents(f) for f in frames] for frames in frames_a] == [
        [["for tenant a"], ["a again"]]
    ] * 3
    assert [contents(frame) for frame in frames_b] == [["for tenant b"]] * 3
    assert leftovers == [[]] * 6
    # One execution per event, shared by the two other subscribers of its tenant.
    assert counted_since(before, after) == (3, 6)
