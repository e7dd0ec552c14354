"""Fan-out: many graphql-transport-ws subscribers on one session; how long one write takes to
reach each of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from bench.http_load import HttpConnection, encode_json_post

SUBSCRIPTION = (
    "subscription($sid: String!) { sessionEvents(sessionId: $sid) "
    "{ type sessionId messages { id content } } }"
)
ADD_MESSAGE = (
    "mutation($sid: String!, $content: String!) { addMessages(input: {sessionId: $sid, "
    "messages: [{role: USER, content: $content}]}) { messages { id } } }"
)


@dataclass
class _Round:
    """Arrival times (perf_counter) of one message's `next` at each subscriber."""

    content: str
    expected: int
    arrivals: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self, at: float) -> None:
        self.arrivals.append(at)
        if len(self.arrivals) >= self.expected:
            self.done.set()


@dataclass(frozen=True)
class FanoutRound:
    """Delivery latencies (s) from just before the write, one per subscriber that got it."""

    latencies_s: list[float]
    subscribers: int  # how many should have got it (more than len(latencies_s) on a timeout)
    write_s: float  # how long the HTTP write itself took


class FanoutBench:
    """Subscribers on one session over one server; `measure()` writes and times delivery."""

    def __init__(self, host: str, port: int, session_id: str, subscribers: int) -> None:
        self.host, self.port = host, port
        self.session_id = session_id
        self.count = subscribers
        self._sockets: list[ClientConnection] = []
        self._readers: list[asyncio.Task[None]] = []
        self._rounds: dict[str, _Round] = {}
        self._writer: HttpConnection | None = None
        self.errors: list[str] = []

    async def _subscribe_one(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            ws = await connect(
                f"ws://{self.host}:{self.port}/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                compression=None,
                ping_interval=None,
                open_timeout=60,
            )
            self._sockets.append(ws)
            await ws.send('{"type":"connection_init","payload":{}}')
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"sid": self.session_id}},
                    }
                )
            )
        self._readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        clock = time.perf_counter
        with contextlib.suppress(Exception):
            async for raw in ws:
                at = clock()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    event = message["payload"]["data"]["sessionEvents"]
                    found = self._rounds.get(event["messages"][0]["content"])
                    if found is not None:
                        found.arrive(at)
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind != "pong":
                    self.errors.append(str(raw)[:200])

    async def start(self) -> float:
        """Connect and subscribe everyone, then make sure every subscription is live by
        waiting until each subscriber got a warm-up message. Returns the seconds it took."""
        began = time.perf_counter()
        gate = asyncio.Semaphore(64)
        await asyncio.gather(*(self._subscribe_one(gate) for _ in range(self.count)))
        self._writer = await HttpConnection.open(self.host, self.port)
        for attempt in range(20):
            # After `subscribe` nothing is acknowledged: write until everyone has heard one.
            warm = await self._deliver(f"warm-up {attempt}", wait_s=3.0)
            if len(warm.latencies_s) == self.count:
                return time.perf_counter() - began
        raise RuntimeError("subscribers never all received the warm-up message")

    async def _deliver(self, content: str, wait_s: float) -> FanoutRound:
        assert self._writer is not None
        current = _Round(content, self.count)
        self._rounds[content] = current
        raw = encode_json_post(
            "/graphql",
            {"query": ADD_MESSAGE, "variables": {"sid": self.session_id, "content": content}},
        )
        before = time.perf_counter()
        status, body = await self._writer.request(raw)
        written = time.perf_counter()
        if status != 200 or b'"errors"' in body:
            raise RuntimeError(f"write failed: {status} {body[:200]!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), wait_s)
        del self._rounds[content]
        return FanoutRound([at - before for at in current.arrivals], self.count, written - before)

    async def measure(self, index: int, wait_s: float = 30.0) -> FanoutRound:
        """Write one message; wait for every subscriber (or the timeout: fewer latencies)."""
        return await self._deliver(f"fan-out round {index}", wait_s)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self._sockets), return_exceptions=True)
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
