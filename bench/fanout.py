"""Fan-out: many graphql-transport-ws subscribers on one session; how long a write takes to
reach each of them, one write at a time (`measure`) or at a steady rate (`sustain`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from bench.http_load import HttpConnection, encode_json_post
from bench.stats import percentile
from bench.ws_client import WsConnection

SUBSCRIPTION = (
    "subscription($sid: String!) { sessionEvents(sessionId: $sid) "
    "{ type sessionId messages { id content } } }"
)
ADD_MESSAGE = (
    "mutation($sid: String!, $content: String!) { addMessages(input: {sessionId: $sid, "
    "messages: [{role: USER, content: $content}]}) { messages { id } } }"
)
MAX_WRITERS = 16  # connections the steady-rate writer may have in flight


@dataclass
class _Round:
    """Arrival times (perf_counter) of one message's `next` at each subscriber."""

    content: str
    expected: int
    since: float = 0.0  # when the write was due (steady rate) or began (one at a time)
    arrivals: list[float] = field(default_factory=list)
    frames: set[bytes] = field(default_factory=set)  # distinct raw `next` frames received
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self, at: float, frame: bytes) -> None:
        self.arrivals.append(at)
        self.frames.add(frame)
        if len(self.arrivals) >= self.expected:
            self.done.set()


@dataclass(frozen=True)
class FanoutRound:
    """Delivery latencies (s) from just before the write, one per subscriber that got it."""

    latencies_s: list[float]
    subscribers: int  # how many should have got it (more than len(latencies_s) on a timeout)
    write_s: float  # how long the HTTP write itself took
    distinct_frames: int  # 1 when every subscriber received the same bytes


@dataclass(frozen=True)
class SustainedRun:
    """One steady-rate run: for each event, when it was due (s from the first) and its lags
    (s from when it was due to each arrival; missing ones were not delivered in time)."""

    rate: float
    duration_s: float
    subscribers: int
    events: list[tuple[float, list[float]]]
    write_errors: int
    wall_s: float  # from the first write due to the last arrival (or the give-up time)

    @property
    def complete(self) -> int:
        """Events every subscriber received."""
        return sum(1 for _, lags in self.events if len(lags) == self.subscribers)

    def lags_ms(self, start_s: float, end_s: float) -> list[float]:
        return [lag * 1000 for due, lags in self.events if start_s <= due < end_s for lag in lags]

    def window(self, first: bool, seconds: float = 2.0) -> tuple[float, float]:
        """Lag p50 and p99 (ms) of the events due in the first or the last `seconds`."""
        lags = (
            self.lags_ms(0.0, seconds)
            if first
            else self.lags_ms(self.duration_s - seconds, self.duration_s)
        )
        return percentile(lags, 50), percentile(lags, 99)

    @property
    def delivered_per_s(self) -> float:
        """Complete events per second of wall time (the rate itself when it keeps up)."""
        return self.complete / self.wall_s if self.wall_s else 0.0

    @property
    def keeps_up(self) -> bool:
        """Every event reached everyone, and the median lag at the end is no worse than at the
        start (within 1.5x + 50 ms; a backlog adds to every later event's lag, so its median
        grows, where a noisy machine moves mostly the tail)."""
        if self.complete < len(self.events) or self.write_errors:
            return False
        first_p50, _ = self.window(True)
        last_p50, _ = self.window(False)
        return last_p50 <= 1.5 * first_p50 + 50


class _Writers:
    """Keep-alive HTTP connections for writes that may overlap (at most MAX_WRITERS)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[HttpConnection] = []
        self._gate = asyncio.Semaphore(MAX_WRITERS)
        self.errors = 0

    async def write(self, raw: bytes) -> None:
        async with self._gate:
            connection = self._idle.pop() if self._idle else None
            if connection is None or connection.closed:
                connection = await HttpConnection.open(self.host, self.port)
            try:
                status, body = await connection.request(raw)
            except Exception:
                self.errors += 1
                connection.close()
                return
            if status != 200 or b'"errors"' in body:
                self.errors += 1
            self._idle.append(connection)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class FanoutBench:
    """Subscribers on one session over one server; `measure()` and `sustain()` write and time
    delivery."""

    def __init__(self, host: str, port: int, session_id: str, subscribers: int) -> None:
        self.host, self.port = host, port
        self.session_id = session_id
        self.count = subscribers
        self._sockets: list[WsConnection] = []
        self._rounds: dict[str, _Round] = {}
        self._writer: HttpConnection | None = None
        self.errors: list[str] = []

    async def _subscribe_one(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            ws = await WsConnection.open(self.host, self.port, "/graphql", "graphql-transport-ws")
            self._sockets.append(ws)
            ack = json.loads(await ws.exchange('{"type":"connection_init","payload":{}}'))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            ws.on_message = self._on_message
            ws.send_text(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"sid": self.session_id}},
                    }
                )
            )

    def _on_message(self, at: float, raw: bytes) -> None:
        message = json.loads(raw)
        if message.get("type") == "next":
            event = message["payload"]["data"]["sessionEvents"]
            found = self._rounds.get(event["messages"][0]["content"])
            if found is not None:
                found.arrive(at, raw)
        elif message.get("type") != "pong":
            self.errors.append(raw[:200].decode(errors="replace"))

    async def start(self) -> float:
        """Connect and subscribe everyone, then make sure every subscription is live by
        waiting until each subscriber got a warm-up message. Returns the seconds it took."""
        began = time.perf_counter()
        gate = asyncio.Semaphore(64)
        await asyncio.gather(*(self._subscribe_one(gate) for _ in range(self.count)))
        for attempt in range(20):
            # After `subscribe` nothing is acknowledged: write until everyone has heard one.
            warm = await self._deliver(f"warm-up {attempt}", wait_s=3.0)
            if len(warm.latencies_s) == self.count:
                return time.perf_counter() - began
        raise RuntimeError("subscribers never all received the warm-up message")

    def _write_request(self, content: str) -> bytes:
        return encode_json_post(
            "/graphql",
            {"query": ADD_MESSAGE, "variables": {"sid": self.session_id, "content": content}},
        )

    async def _deliver(self, content: str, wait_s: float) -> FanoutRound:
        if self._writer is None or self._writer.closed:
            # uvicorn closes a keep-alive connection idle for 5 s.
            self._writer = await HttpConnection.open(self.host, self.port)
        current = _Round(content, self.count)
        self._rounds[content] = current
        raw = self._write_request(content)
        before = time.perf_counter()
        status, body = await self._writer.request(raw)
        written = time.perf_counter()
        if status != 200 or b'"errors"' in body:
            raise RuntimeError(f"write failed: {status} {body[:200]!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), wait_s)
        del self._rounds[content]
        return FanoutRound(
            [at - before for at in current.arrivals],
            self.count,
            written - before,
            len(current.frames),
        )

    async def measure(self, index: int, wait_s: float = 30.0) -> FanoutRound:
        """Write one message; wait for every subscriber (or the timeout: fewer latencies)."""
        return await self._deliver(f"fan-out round {index}", wait_s)

    async def sustain(self, rate: float, duration_s: float, grace_s: float = 10.0) -> SustainedRun:
        """Write `rate` messages a second for `duration_s`, each due at its time whether or not
        the previous ones were answered (an open loop), and time every delivery from when its
        write was due. Waits up to `grace_s` after the last write for the stragglers."""
        writers = _Writers(self.host, self.port)
        count = round(rate * duration_s)
        label = f"rate {rate:g} {time.monotonic_ns()}"
        start = time.perf_counter() + 0.1
        rounds: list[_Round] = []
        writes: list[asyncio.Task[None]] = []
        try:
            for index in range(count):
                due = start + index / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                current = _Round(f"{label} #{index}", self.count, since=due)
                self._rounds[current.content] = current
                rounds.append(current)
                raw = self._write_request(current.content)
                writes.append(asyncio.create_task(writers.write(raw)))
            deadline = time.perf_counter() + grace_s
            for current in rounds:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        current.done.wait(), max(0.0, deadline - time.perf_counter())
                    )
            await asyncio.gather(*writes)
        finally:
            for current in rounds:
                self._rounds.pop(current.content, None)
            writers.close()
        last = max((max(r.arrivals) for r in rounds if r.arrivals), default=start)
        incomplete = any(len(r.arrivals) < self.count for r in rounds)
        end = max(last, time.perf_counter()) if incomplete else last
        return SustainedRun(
            rate=rate,
            duration_s=duration_s,
            subscribers=self.count,
            events=[(r.since - start, [at - r.since for at in r.arrivals]) for r in rounds],
            write_errors=writers.errors,
            wall_s=end - start,
        )

    async def close(self) -> None:
        for ws in self._sockets:
            ws.close()
        if self._writer is not None:
            self._writer.close()
