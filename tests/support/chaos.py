"""Fault drills: writers that keep appending over HTTP while Redis is broken, and readers that
collect what subscriptions deliver, so a test can say what was acknowledged, what failed with
which code, and what every subscriber saw."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.graphql_client import (
    ADD_MESSAGES,
    EventReader,
    add_messages,
    bearer,
    execute,
    message,
)
from tests.support.patience import PATIENCE_S


@dataclass
class WriteLoad:
    """Writers that append one message at a time, each with its own id, to sessions in turn."""

    url: str
    key: str
    sessions: list[str]
    writers: int = 4
    acked: dict[str, list[str]] = field(default_factory=dict)  # session -> acknowledged ids
    failures: Counter[str] = field(default_factory=Counter)  # error code (or transport) -> n
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def acked_count(self) -> int:
        return sum(len(ids) for ids in self.acked.values())

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write(n), name=f"writer-{n}") for n in range(self.writers)
        ]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def until_acked(self, count: int, session: str | None = None) -> None:
        """Wait until `count` writes in all (or to `session`) were acknowledged."""

        def done() -> bool:
            acked = len(self.acked.get(session, ())) if session else self.acked_count
            return acked >= count

        async with asyncio.timeout(PATIENCE_S), self._progress:
            await self._progress.wait_for(done)

    async def until_failed(self, count: int) -> None:
        """Wait until `count` writes in all failed (with any code, or in transport)."""
        async with asyncio.timeout(PATIENCE_S), self._progress:
            await self._progress.wait_for(lambda: self.failures.total() >= count)

    async def _write(self, writer: int) -> None:
        sessions = itertools.cycle(self.sessions)
        async with httpx.AsyncClient(base_url=self.url, timeout=PATIENCE_S) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                session, message_id = next(sessions), f"w{writer}-{n}"
                body = {
                    "query": ADD_MESSAGES,
                    "variables": {
                        "sessionId": session,
                        "messages": [message(message_id, id=message_id)],
                    },
                }
                try:
                    reply = await client.post("/graphql", json=body, headers=bearer(self.key))
                    result: dict[str, Any] = reply.json()
                except (httpx.TransportError, ValueError):
                    self.failures["transport"] += 1
                    await self._notify()
                    await asyncio.sleep(0.05)
                    continue
                if result.get("errors"):
                    for error in result["errors"]:
                        self.failures[(error.get("extensions") or {}).get("code", "none")] += 1
                    await self._notify()
                    await asyncio.sleep(0.05)  # a client backs off from a failing service
                else:
                    self.acked.setdefault(session, []).append(message_id)
                    await self._notify()

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()


@dataclass
class Delivery:
    """What one subscription delivered: its events in order, and the error that ended it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def message_ids(self) -> list[str]:
        return [m["id"] for e in self.events for m in e["messages"]]


async def collect_until(reader: EventReader, wanted: set[str]) -> Delivery:
    """Read events until every id in `wanted` was delivered or the subscription ended."""
    delivery = Delivery()
    async with asyncio.timeout(PATIENCE_S):
        while not wanted <= set(delivery.message_ids):
            try:
                delivery.events.append(await reader.next(within=PATIENCE_S))
            except Exception as error:  # the subscription ended: gql raises its error
                delivery.error = error
                break
    return delivery


async def until_ended(reader: EventReader) -> Delivery:
    """Read events until the subscription ends with an error."""
    delivery = Delivery()
    async with asyncio.timeout(PATIENCE_S):
        while delivery.error is None:
            try:
                delivery.events.append(await reader.next(within=PATIENCE_S))
            except Exception as error:
                delivery.error = error
    return delivery


def error_codes(error: BaseException | None) -> list[str | None]:
    errors = getattr(error, "errors", None) or []
    return [(e.get("extensions") or {}).get("code") for e in errors]


STORED = """query Stored($id: ID!, $after: String) {
  session(id: $id) { messages(first: 500, after: $after) {
    nodes { id } pageInfo { hasNextPage endCursor } } }
}"""


async def stored_ids(client: httpx.AsyncClient, key: str, session: str) -> list[str]:
    """Every message id the session holds, oldest first."""
    ids: list[str] = []
    after = None
    while True:
        variables = {"id": session, "after": after}
        reply = await client.post(
            "/graphql", json={"query": STORED, "variables": variables}, headers=bearer(key)
        )
        page = reply.json()["data"]["session"]["messages"]
        ids += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def subscribe_from_state(
    url: str, key: str, sessions: list[str], connect: Callable[..., Awaitable[Any]]
) -> dict[str | None, EventReader]:
    """One subscription per session and one tenant-wide (key None), each resuming from a
    state read, so each is sure to miss nothing from that read on (no probing needed)."""
    api = await connect(url, key)
    for session in sessions:
        await add_messages(api, session, "opening")
    readers: dict[str | None, EventReader] = {}
    for session in sessions:
        read = await execute(
            api, "query($id: ID!) { session(id: $id) { lastEventId } }", id=session
        )
        readers[session] = EventReader(
            await connect(url, key, ws=True), session, read["session"]["lastEventId"]
        )
    listing = await execute(api, "{ sessions { lastEventId } }")
    readers[None] = EventReader(
        await connect(url, key, ws=True), None, listing["sessions"]["lastEventId"]
    )
    for reader in readers.values():
        reader.start()
    return readers
