"""Subscribers that would compute the same result for an event share one execution of it; all
others, and every error, stay their own. Runs the real schema's subscriptions over a stand-in
STM service that hands every subscriber the same event objects, as the real one does."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from maas.api_keys import ApiKeyAuth
from maas.auth import Authenticator
from maas.graphql_view import MaasGraphQL
from resolvers.context import RequestContext
from schema import build_schema
from schema.shared_execution import SharedData, SharedEventResults
from services import session_events, stm_model

EVENTS = """
subscription Events($sid: String, $withMessages: Boolean = true) {
  sessionEvents(sessionId: $sid) {
    type sessionId at
    messages @include(if: $withMessages) { id seq role content metadata tokenCount createdAt }
  }
}
"""
TYPES_ONLY = "subscription { sessionEvents { type } }"
SESSION_IDS = "subscription { sessionEvents { sessionId } }"
ALIASED = "subscription { e: sessionEvents { kind: type, texts: messages { content } } }"


def make_event(session_id: Any = "chat", *contents: str) -> session_events.SessionEvent:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    messages = [
        stm_model.Message(
            id=f"m{seq}",
            seq=seq,
            role=stm_model.Role.USER,
            content=content,
            tokens=3,
            created_at=at,
            metadata={"n": seq, "é": [1.5, None, True]},
        )
        for seq, content in enumerate(contents, 1)
    ]
    return session_events.SessionEvent(
        event_id="1-0",
        type=session_events.SessionEventType.MESSAGES_ADDED,
        session_id=session_id,
        at=at,
        messages=messages,
    )


class EventSource:
    """Stands in for the STM service's session_events: every subscriber of a tenant gets the
    very same event objects."""

    def __init__(self) -> None:
        self._queues: list[tuple[str, asyncio.Queue[Any]]] = []
        self.joined: asyncio.Queue[None] = asyncio.Queue()

    async def session_events(
        self, tenant: str, session_id: str | None, after: str | None = None
    ) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.append((tenant, queue))
        self.joined.put_nowait(None)
        while True:
            yield await queue.get()

    def publish(self, tenant: str, event: Any) -> None:
        for owner, queue in self._queues:
            if owner == tenant:
                queue.put_nowait(event)


class Counts:
    """What the memo reports: results executed for their subscriber, and results shared."""

    def __init__(self) -> None:
        self.executed = 0
        self.shared = 0

    def __call__(self, shared: bool) -> None:
        if shared:
            self.shared += 1
        else:
            self.executed += 1


class Subscribers:
    """Subscriptions to the real schema, each collecting its results in a task."""

    def __init__(self, schema: Any, source: EventSource) -> None:
        self.schema, self.source = schema, source
        self.results: list[list[Any]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._arrived = asyncio.Condition()

    async def add(self, query: str, tenant: str = "acme", **variables: Any) -> list[Any]:
        """Subscribe; returns the list its results will be appended to."""
        context = RequestContext(stm=self.source, tenant=tenant)  # type: ignore[arg-type]
        results: list[Any] = []
        stream = await self.schema.subscribe(
            query, variable_values=variables or None, context_value=context
        )

        async def collect() -> None:
            async for result in stream:
                async with self._arrived:
                    results.append(result)
                    self._arrived.notify_all()

        self._tasks.append(asyncio.create_task(collect()))
        await self.source.joined.get()  # the resolver is listening
        self.results.append(results)
        return results

    async def received(self, count: int) -> None:
        """Wait until every subscriber has `count` results."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: all(len(r) >= count for r in self.results))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def counts() -> Counts:
    return Counts()


@pytest.fixture
def memo(counts: Counts) -> SharedEventResults:
    return SharedEventResults(on_result=counts)


@pytest.fixture
def source() -> EventSource:
    return EventSource()


@pytest.fixture
async def subscribers(memo: SharedEventResults, source: EventSource) -> AsyncIterator[Subscribers]:
    group = Subscribers(build_schema(shared_results=memo), source)
    yield group
    await group.close()


async def test_subscribers_of_one_operation_share_one_execution_and_its_result(
    subscribers, source, counts
):
    received = [await subscribers.add(EVENTS, sid="chat") for _ in range(25)]
    source.publish("acme", make_event("chat", "hello", "wörld"))
    await subscribers.received(1)

    first = received[0][0]
    assert first.errors is None
    assert first.data["sessionEvents"]["messages"][1]["content"] == "wörld"
    assert all(r[0].data is first.data for r in received)
    assert (counts.executed, counts.shared) == (1, 24)


async def test_each_event_is_executed_once_for_its_subscribers(subscribers, source, counts):
    received = [await subscribers.add(EVENTS) for _ in range(5)]
    for n in range(3):
        source.publish("acme", make_event("chat", f"event {n}"))
        await subscribers.received(n + 1)
    contents = [[e.data["sessionEvents"]["messages"][0]["content"] for e in r] for r in received]
    assert contents == [["event 0", "event 1", "event 2"]] * 5
    assert (counts.executed, counts.shared) == (3, 12)


async def test_different_selections_and_variables_each_get_their_own_shape(
    subscribers, source, counts
):
    full = [await subscribers.add(EVENTS, sid="chat") for _ in range(2)]
    # sessionId chooses the stream only: the same selection on the same event is shared.
    full_tenant_wide = await subscribers.add(EVENTS)
    without_messages = await subscribers.add(EVENTS, sid="chat", withMessages=False)
    types_only = await subscribers.add(TYPES_ONLY)
    session_ids = await subscribers.add(SESSION_IDS)
    aliased = [await subscribers.add(ALIASED) for _ in range(2)]
    source.publish("acme", make_event("chat", "hi"))
    await subscribers.received(1)

    expected_full = full[0][0].data["sessionEvents"]
    assert set(expected_full) == {"type", "sessionId", "at", "messages"}
    assert [r[0].data["sessionEvents"] for r in (*full, full_tenant_wide)] == [expected_full] * 3
    assert without_messages[0].data == {
        "sessionEvents": {
            "type": "MESSAGES_ADDED",
            "sessionId": "chat",
            "at": expected_full["at"],
        }
    }
    assert types_only[0].data == {"sessionEvents": {"type": "MESSAGES_ADDED"}}
    assert session_ids[0].data == {"sessionEvents": {"sessionId": "chat"}}
    assert [r[0].data for r in aliased] == [
        {"e": {"kind": "MESSAGES_ADDED", "texts": [{"content": "hi"}]}}
    ] * 2
    # Eight subscribers, five different results: five executions, three results shared.
    assert (counts.executed, counts.shared) == (5, 3)


async def test_tenants_never_share_a_result_even_of_the_same_event_object(
    subscribers, source, counts
):
    # Identical payloads on two tenants' channels may decode to one object: it must still be
    # executed for each tenant.
    acme = [await subscribers.add(EVENTS, tenant="acme") for _ in range(3)]
    other = [await subscribers.add(EVENTS, tenant="other") for _ in range(3)]
    event = make_event("chat", "same text")
    source.publish("acme", event)
    source.publish("other", event)
    await subscribers.received(1)

    assert counts.executed == 2
    assert counts.shared == 4
    assert all(r[0].data is acme[0][0].data for r in acme)
    assert all(r[0].data is other[0][0].data for r in other)
    assert acme[0][0].data is not other[0][0].data


async def test_an_execution_error_reaches_each_subscriber_as_its_own_with_its_code(
    subscribers, source, counts
):
    # sessionId is non-null: an event without one fails the field for whoever selects it.
    failing = [await subscribers.add(SESSION_IDS) for _ in range(2)]
    healthy = [await subscribers.add(TYPES_ONLY) for _ in range(2)]
    source.publish("acme", make_event(None, "broken"))
    await subscribers.received(1)

    error_ids = set()
    for results in failing:
        result = results[0]
        assert result.data is None
        [error] = result.errors
        assert error.extensions["code"] == "INTERNAL"
        assert error.path == ["sessionEvents", "sessionId"]
        error_ids.add(error.extensions["errorId"])
    assert len(error_ids) == 2, "each failing subscriber executed, and was told, on its own"
    assert [r[0].data for r in healthy] == [{"sessionEvents": {"type": "MESSAGES_ADDED"}}] * 2
    assert all(r[0].errors is None for r in healthy)
    assert (counts.executed, counts.shared) == (3, 1)


async def test_without_the_memo_every_subscriber_executes_and_gets_the_same_data(source):
    group = Subscribers(build_schema(), source)
    try:
        received = [await group.add(EVENTS, sid="chat") for _ in range(3)]
        source.publish("acme", make_event("chat", "hello"))
        await group.received(1)
    finally:
        await group.close()
    first = received[0][0].data
    assert type(first) is dict
    assert all(r[0].data == first and r[0].data is not first for r in received[1:])


async def test_the_memo_holds_only_events_still_alive(subscribers, source, memo):
    for _ in range(3):
        await subscribers.add(EVENTS)
    for n in range(200):
        source.publish("acme", make_event("chat", f"event {n}"))
    await subscribers.received(200)
    subscribers.results.clear()
    gc.collect()
    # Alive: the events the conversion cache keeps (64) and the one each subscriber is on.
    assert memo.events_held <= 64 + 3


def test_an_events_results_go_when_the_event_does(memo):
    class Event:
        pass

    event = Event()
    memo.results_of(event)["key"] = "result"
    assert memo.results_of(event) == {"key": "result"}
    del event
    gc.collect()
    assert memo.events_held == 0


def test_the_memo_holds_a_bounded_number_of_events(counts):
    memo = SharedEventResults(max_events=4, on_result=counts)

    class Event:
        pass

    events = [Event() for _ in range(10)]
    for event in events:
        assert memo.results_of(event) == {}
    assert memo.events_held == 4
    assert memo.results_of(object()) is None  # cannot be weakly referenced: never shared


def _view() -> MaasGraphQL:
    return MaasGraphQL(build_schema(), auth=Authenticator(ApiKeyAuth({})))


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "next", "payload": {"data": {"e": {"text": 'ünï "q" \\ \n'}}}},
        {"type": "data", "id": "op-7", "payload": {"data": {"x": [1, 2.5, None, True, {}]}}},
    ],
    ids=["graphql-transport-ws", "graphql-ws"],
)
def test_a_shared_result_is_encoded_byte_for_byte_as_an_unshared_one(message):
    view = _view()
    expected = json.dumps(message, separators=(",", ":"))
    shared = {**message, "payload": {"data": SharedData(message["payload"]["data"])}}
    assert view.encode_json(shared) == expected
    assert view.encode_json(shared) == expected  # from the encoding kept on the shared data


def test_messages_carrying_more_than_shared_data_are_encoded_whole():
    view = _view()
    data = SharedData({"a": 1})
    with_extensions = {"id": "1", "type": "next", "payload": {"data": data, "extensions": {}}}
    assert view.encode_json(with_extensions) == json.dumps(with_extensions, separators=(",", ":"))
    assert data.encoded(lambda _: "never used") == "never used"
