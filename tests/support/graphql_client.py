"""GraphQL clients for end-to-end tests: the real `gql` client over HTTP or WebSocket, raw
httpx requests for status codes and error bodies, and a subscription reader that knows when
its subscription is live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.support.patience import patience

GRAPHQL_TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
LEGACY_GRAPHQL_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL

MESSAGE_FIELDS = "id seq role content name metadata tokenCount createdAt isSummary"
CONFIG_FIELDS = "strategy maxMessages maxTokens ttlSeconds"
EVENT_FIELDS = (
    f"eventId type sessionId at messages {{ {MESSAGE_FIELDS} }} config {{ {CONFIG_FIELDS} }} "
    f"summary {{ {MESSAGE_FIELDS} }}"
)
SESSION_EVENTS = f"""
subscription Events($sessionId: String, $after: String) {{
  sessionEvents(sessionId: $sessionId, after: $after) {{ {EVENT_FIELDS} }}
}}
"""
ADD_MESSAGES = f"""
mutation Add($sessionId: String!, $messages: [MessageInput!]!) {{
  addMessages(input: {{sessionId: $sessionId, messages: $messages}}) {{
    sessionId duplicateIds messages {{ {MESSAGE_FIELDS} }}
  }}
}}
"""
# Metadata that marks the messages a ready-probe writes, so readers can skip their events.
PROBE = "readyProbe"
# How long a probe waits for its event before writing another: a poll interval, not a limit
# (probing goes on for the patience).
PROBE_INTERVAL_S = 0.05


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


def http_client(base_url: str, key: str | None = None) -> Client:
    """A gql client over HTTP POST, authenticated with `key` when given."""
    transport = HTTPXAsyncTransport(
        url=f"{base_url}/graphql", headers=bearer(key), timeout=patience()
    )
    # gql bounds each operation on its own too (10 s unless told): a batch of 50 memory adds
    # takes longer than that on a loaded machine.
    return Client(
        transport=transport, fetch_schema_from_transport=False, execute_timeout=patience()
    )


def ws_client(
    base_url: str, key: str | None = None, *, protocol: str = GRAPHQL_TRANSPORT_WS
) -> Client:
    """A gql client over one WebSocket; the key travels in the connection_init payload."""
    transport = WebsocketsTransport(
        url=ws_url(base_url),
        init_payload=bearer(key),
        subprotocols=[protocol],
        ack_timeout=patience(),
        close_timeout=patience(),
        connect_timeout=patience(),
    )
    return Client(
        transport=transport, fetch_schema_from_transport=False, execute_timeout=patience()
    )


def request(query: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(query, variable_values=variables or None)


async def execute(session: AsyncClientSession, query: str, **variables: Any) -> dict[str, Any]:
    return await session.execute(request(query, **variables))


async def execute_error(
    session: AsyncClientSession, query: str, **variables: Any
) -> list[dict[str, Any]]:
    """The errors of an operation that must fail."""
    try:
        result = await execute(session, query, **variables)
    except TransportQueryError as error:
        errors = error.errors
    else:
        raise AssertionError(f"expected errors, got {result!r}")
    assert errors, "the operation failed without GraphQL errors"
    return errors


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in errors]


async def post(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    key: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A raw POST to `{url}/graphql`, for status codes and error bodies."""
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    headers = {**bearer(key), **kwargs.pop("headers", {})}
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        return await client.post("/graphql", json=body, headers=headers, **kwargs)


def message(content: str, role: str = "USER", **fields: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **fields}


async def add_messages(
    session: AsyncClientSession, session_id: str, *contents: str, **fields: Any
) -> dict[str, Any]:
    """Adds one USER message per content; returns the addMessages payload."""
    result = await execute(
        session,
        ADD_MESSAGES,
        sessionId=session_id,
        messages=[message(c, **fields) for c in contents],
    )
    return result["addMessages"]


class EventReader:
    """Reads one `sessionEvents` subscription in a background task.

    Subscriptions have no per-operation acknowledgement, so `ready` writes probe messages
    (to a session the subscription sees) until the first probe event arrives; from then on the
    subscription is live and `next` returns the following events, probes left out.
    """

    def __init__(
        self, ws: AsyncClientSession, session_id: str | None, after: str | None = None
    ) -> None:
        self._ws = ws
        self._session_id = session_id
        self._after = after
        self._events: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            async for event in self._ws.subscribe(
                request(SESSION_EVENTS, sessionId=self._session_id, after=self._after)
            ):
                self._events.put_nowait(event["sessionEvents"])
        except Exception as error:
            self._events.put_nowait(error)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-reader")

    async def ready(self, writer: AsyncClientSession, probe_session: str) -> None:
        """Returns once the subscription is live, proven by an event of a probe write."""
        deadline = asyncio.get_running_loop().time() + patience()
        while asyncio.get_running_loop().time() < deadline:
            await add_messages(writer, probe_session, "probe", metadata={PROBE: True})
            with contextlib.suppress(TimeoutError):
                # A probe's event comes within this unless the subscription is not live yet.
                await self._get(within=PROBE_INTERVAL_S)
                return
        raise AssertionError("the subscription never received a probe event")

    async def _get(self, within: float) -> dict[str, Any]:
        item = await asyncio.wait_for(self._events.get(), within)
        if isinstance(item, BaseException):
            raise item
        return item

    async def next(self, within: float | None = None) -> dict[str, Any]:
        """The next event that is not a probe's, waiting at most `within` seconds (default: the
        patience) for each."""
        within = patience() if within is None else within
        while True:
            event = await self._get(within)
            if not is_probe(event):
                return event

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def is_probe(event: dict[str, Any]) -> bool:
    messages = event.get("messages") or []
    return bool(messages) and all(m["metadata"].get(PROBE) for m in messages)


@contextlib.asynccontextmanager
async def subscribed(
    ws: AsyncClientSession,
    writer: AsyncClientSession,
    session_id: str | None,
    probe_session: str | None = None,
) -> AsyncIterator[EventReader]:
    """A live `sessionEvents(sessionId)` subscription on `ws`, probed through `writer`."""
    reader = EventReader(ws, session_id)
    reader.start()
    try:
        probe = probe_session or session_id or f"probe-{uuid.uuid4().hex[:8]}"
        await reader.ready(writer, probe)
        yield reader
    finally:
        await reader.close()


# Two tenants' API keys; distinctive so a leak into a log cannot match anything else.
KEY_A = "sk-test-alpha-5c1e9b7d"
KEY_B = "sk-test-bravo-82d0f4a6"
API_KEYS = {KEY_A: "tenant-a", KEY_B: "tenant-b"}


SET_MAX_MESSAGES = """
mutation Set($id: String!, $max: Int!) {
  setSessionConfig(input: {sessionId: $id, maxMessages: $max}) { session { id } }
}
"""


class FrameReader:
    """One subscription over a raw WebSocket (no gql), keeping each result message exactly as
    the bytes the server sent: for comparing what subscribers receive, byte for byte."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        protocol: str = GRAPHQL_TRANSPORT_WS,
        operation_id: str = "1",
    ) -> None:
        self._url = ws_url(base_url)
        self._key = key
        self._payload = {"query": query, "variables": variables or {}}
        self._protocol = protocol
        self._id = operation_id
        self._frames: asyncio.Queue[str] = asyncio.Queue()
        self._socket: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FrameReader:
        from websockets.asyncio.client import connect

        self._socket = await connect(
            self._url,
            subprotocols=[self._protocol],  # type: ignore[list-item]
            open_timeout=patience(),
        )
        init = {"type": "connection_init", "payload": bearer(self._key)}
        await self._socket.send(json.dumps(init))
        while json.loads(await self._socket.recv())["type"] != "connection_ack":
            pass
        await self.start(self._id, self._payload["query"], self._payload["variables"])
        self._task = asyncio.create_task(self._read(), name="frame-reader")
        return self

    async def start(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        """Start an operation on this connection; its messages arrive among the frames."""
        start = "subscribe" if self._protocol == GRAPHQL_TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self._socket.send(json.dumps({"id": operation_id, "type": start, "payload": payload}))

    async def _read(self) -> None:
        async for frame in self._socket:
            if json.loads(frame)["type"] not in ("ka", "ping", "pong"):
                self._frames.put_nowait(frame)

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._socket.close()

    @property
    def waiting(self) -> int:
        """Frames received and not read yet."""
        return self._frames.qsize()

    async def frame(self, within: float | None = None) -> str:
        """The next message the server sent on this subscription, as received (waiting at most
        `within` seconds, default the patience)."""
        return await asyncio.wait_for(self._frames.get(), patience() if within is None else within)

    def drain(self) -> list[str]:
        drained = []
        while not self._frames.empty():
            drained.append(self._frames.get_nowait())
        return drained


def result_of(frame: str) -> dict[str, Any]:
    """The payload (data, errors) of a `next` or `data` frame."""
    message = json.loads(frame)
    assert message["type"] in ("next", "data"), message
    return message["payload"]


async def all_live(readers: list[FrameReader], writer: AsyncClientSession, session_id: str) -> None:
    """Return once every reader's subscription (whose selection includes `type`) is live and
    nothing is in flight: probe writes until each has an event, then a config change as a
    fence that every reader must reach; everything up to the fence is dropped."""
    deadline = asyncio.get_running_loop().time() + patience()
    while True:
        await add_messages(writer, session_id, "probe", metadata={PROBE: True})
        await asyncio.sleep(PROBE_INTERVAL_S)
        if all(reader.waiting for reader in readers):
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("a subscription never received a probe event")
    await execute(writer, SET_MAX_MESSAGES, id=session_id, max=50)
    for reader in readers:
        while '"CONFIG_CHANGED"' not in await reader.frame():
            pass
