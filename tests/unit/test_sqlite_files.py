"""Opening an embedded store's SQLite file while another process is creating it (two replicas
starting at once on one volume) waits for it instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from stores.sqlite_files import SQLiteFile
from tests.support.patience import patience


def test_a_file_being_created_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "ltm.db"
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("BEGIN IMMEDIATE")  # the other process, creating its tables
    creator.execute("CREATE TABLE memories (id TEXT)")
    opened: list[SQLiteFile] = []
    failures: list[BaseException] = []
    started = threading.Event()

    def open_file() -> None:
        started.set()
        try:
            opened.append(SQLiteFile(path))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=open_file)
    thread.start()
    started.wait(patience())
    # SQLite refused the switch to WAL at once here, whatever busy_timeout said.
    thread.join(timeout=0.2)
    creator.execute("COMMIT")
    thread.join(timeout=patience())

    assert failures == []
    (file,) = opened
    assert file.connection().execute("PRAGMA journal_mode").fetchone() == ("wal",)
    file.close()
    creator.close()
