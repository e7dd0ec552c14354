"""Vector store probes for readiness: the embedded file opens and reads, and is never created
by the probe; DocumentDB/MongoDB answers ping, and one that does not answer fails the probe
within its time limit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo.errors import PyMongoError

from stores.store_health import MongoProbe, SQLiteProbe
from tests.support.patience import patience
from tests.support.silent_server import silent_server

TIMEOUT = 0.5


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "ltm" / "memories.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE memories (id TEXT)")
    db.commit()
    db.close()
    return path


def test_the_embedded_file_answers(database: Path) -> None:
    asyncio.run(SQLiteProbe(database, TIMEOUT)())


def test_a_missing_embedded_file_is_an_error_and_is_not_created(database: Path) -> None:
    database.unlink()
    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(SQLiteProbe(database, TIMEOUT)())
    assert not database.exists()


def test_a_file_that_is_no_database_is_an_error(database: Path) -> None:
    database.write_bytes(b"not a database, " * 512)
    with pytest.raises(sqlite3.DatabaseError):
        asyncio.run(SQLiteProbe(database, TIMEOUT)())


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_server() as port:
        yield port


async def test_a_mongo_server_that_never_answers_fails_the_probe_in_time(
    silent: int,
) -> None:
    probe = MongoProbe(f"mongodb://127.0.0.1:{silent}/", TIMEOUT)
    # The server never answers, so only the probe's own time limit can end the wait: pymongo's
    # error says it did (a wait the test had to cut off would be a TimeoutError instead).
    with pytest.raises(PyMongoError):
        async with asyncio.timeout(patience()):
            await probe()
    await probe.close()
