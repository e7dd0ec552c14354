"""Cheap probes of the vector stores for readiness: does the store answer a trivial request?

Each probe is its own small connection, apart from the engine's (the adapters stay as they are,
and a probe works while the engine is still to be built). A probe raises when the store does
not answer; the caller bounds how long it may take.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Protocol


class StoreProbe(Protocol):
    async def __call__(self) -> None:
        """Returns when the store answers; raises otherwise."""

    async def close(self) -> None: ...


class SQLiteProbe:
    """The embedded store's file opens (without being created) and its schema reads."""

    def __init__(self, path: Path, timeout_seconds: float) -> None:
        # mode=rw: a file that is gone is an error, not a new empty database.
        self._uri = f"{Path(path).resolve().as_uri()}?mode=rw"
        self._timeout = timeout_seconds

    async def __call__(self) -> None:
        await asyncio.to_thread(self._read_schema)

    def _read_schema(self) -> None:
        db = sqlite3.connect(self._uri, uri=True, timeout=self._timeout)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()

    async def close(self) -> None:
        pass


class MongoProbe:
    """DocumentDB or MongoDB answers `ping`, through a client of its own made on first use
    (pymongo's asyncio client: no thread waits on a server that does not answer)."""

    def __init__(self, uri: str, timeout_seconds: float) -> None:
        self._uri = uri
        self._timeout_ms = max(1, int(timeout_seconds * 1000))
        self._client: Any = None

    async def __call__(self) -> None:
        if self._client is None:
            from pymongo import AsyncMongoClient

            self._client = AsyncMongoClient(
                self._uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                socketTimeoutMS=self._timeout_ms,
                maxPoolSize=1,
            )
        await self._client.admin.command("ping")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
