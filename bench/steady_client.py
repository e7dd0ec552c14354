"""A well-behaved client at a steady rate (open loop): each request is due at a fixed time and
its latency counts from then, so a server that stalls for a second shows a second on every
request due during the stall, not on one request of a closed loop that waited politely."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.http_load import HttpConnection, HttpError

# uvicorn closes a keep-alive connection idle for 5 s: one idle longer than this is not reused.
IDLE_REUSE_S = 2.0


@dataclass(frozen=True)
class Stream:
    """One kind of request, sent every `interval_s`; `ok` judges a reply (status, body)."""

    name: str
    request: bytes
    interval_s: float
    ok: Callable[[int, bytes], bool]


@dataclass
class StreamFigures:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    unanswered: int = 0  # still waiting when the phase was over (counted at their wait so far)


class SteadyClient:
    """Sends every stream at its rate from `start()` until `stop()`; a request takes an idle
    keep-alive connection or opens one, so requests due during a stall are all in flight."""

    def __init__(self, host: str, port: int, streams: Sequence[Stream]) -> None:
        self.host = host
        self.port = port
        self.streams = list(streams)
        self.figures = {s.name: StreamFigures(s.name) for s in streams}
        self._idle: list[tuple[HttpConnection, float]] = []  # with the time it went idle
        self._open: set[HttpConnection] = set()
        self._tickers: list[asyncio.Task[None]] = []
        self._pending: dict[asyncio.Task[None], tuple[str, float]] = {}

    def start(self) -> None:
        began = time.perf_counter()
        self._tickers = [asyncio.create_task(self._tick(s, began)) for s in self.streams]

    async def stop(self, grace_s: float) -> dict[str, StreamFigures]:
        """Stops sending; waits up to grace_s for the requests in flight, then counts the
        rest at their wait so far."""
        for ticker in self._tickers:
            ticker.cancel()
        await asyncio.gather(*self._tickers, return_exceptions=True)
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=grace_s)
        now = time.perf_counter()
        for task, (name, due) in list(self._pending.items()):
            if task.done():
                continue
            task.cancel()
            self.figures[name].latencies_s.append(now - due)
            self.figures[name].unanswered += 1
        for connection in self._open:
            connection.close()
        return self.figures

    async def _tick(self, stream: Stream, began: float) -> None:
        due = began
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.create_task(self._send(stream, due))
            self._pending[task] = (stream.name, due)
            task.add_done_callback(self._pending.pop)
            due += stream.interval_s

    async def _send(self, stream: Stream, due: float) -> None:
        figures = self.figures[stream.name]
        try:
            connection = self._reusable() or await self._connect()
            status, body = await connection.request(stream.request)
        except (OSError, HttpError):
            figures.latencies_s.append(time.perf_counter() - due)
            figures.errors += 1
            return
        figures.latencies_s.append(time.perf_counter() - due)
        if not stream.ok(status, body):
            figures.errors += 1
        self._idle.append((connection, time.perf_counter()))

    def _reusable(self) -> HttpConnection | None:
        """The most recently used idle connection the server has not closed or soon will."""
        while self._idle:
            connection, since = self._idle.pop()
            if not connection.closed and time.perf_counter() - since < IDLE_REUSE_S:
                return connection
            connection.close()
        return None

    async def _connect(self) -> HttpConnection:
        connection = await HttpConnection.open(self.host, self.port)
        self._open.add(connection)
        return connection
