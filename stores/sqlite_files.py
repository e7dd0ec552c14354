"""SQLite connections shared by the embedded stores: one per thread, WAL, and writers that wait.

mem0 calls its stores from worker threads. One connection per thread lets readers run side by
side (WAL), and `busy_timeout` makes a writer wait for the lock instead of failing with
"database is locked" (mem0#7196) — whether the other writer is a thread or another process.
Writers of one process also queue on a lock of their own first: SQLite's busy handler waits by
sleeping in growing steps (up to 100 ms), so ten threads contending for the write lock spent
most of a verbatim batch asleep; a Python lock hands over the moment the writer before commits.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from stores.vector_hits import StoreUnavailable

BUSY_TIMEOUT_MS = 30_000
# One writer lock per database file, shared by every SQLiteFile of it in this process (the
# vector store and the history store open the same file).
_writers: dict[Path, threading.Lock] = {}
_writers_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    with _writers_guard:
        return _writers.setdefault(path.resolve(), threading.Lock())


class SQLiteFile:
    """A database file and its per-thread connections."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = _writer_lock(self.path)  # this process's writers, one at a time
        self._use_wal()

    def _use_wal(self) -> None:
        """Persistent in the file, and outside any transaction by SQLite's rule. While another
        connection holds a lock on a file not yet in WAL mode (another process creating it at
        the same moment: two replicas starting on one volume), SQLite refuses the switch at
        once, whatever busy_timeout says: wait for it as busy_timeout would."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                self.connection().execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._guard:
                self._opened.append(db)
        return db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its start (no upgrade deadlocks)."""
        db = self.connection()
        with self._writer:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite {self.path}: {exc}") from exc
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._guard:
            for db in self._opened:
                db.close()
            self._opened.clear()
        self._local = threading.local()
