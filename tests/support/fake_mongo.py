"""A recording stand-in for the few pymongo client, database and collection calls the DocumentDB
stores make.

It evaluates nothing: no query matching, no sorting, no index. It records every call and answers
with what the test scripted for that call (a value, or an exception to raise), in order, or with a
neutral default. DocumentDB cannot run on these machines; tests assert on the documents sent.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any


@dataclass
class Call:
    """One recorded call: target is "db" or a collection name; method is the pymongo method
    (for Database.command, "command:<command name>")."""

    target: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class FakeDatabase:
    """Records calls; `answer(target, method, *results)` scripts what the next calls return."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[Call] = []
        self._answers: dict[tuple[str, str], deque[Any]] = {}
        self._collections: dict[str, FakeCollection] = {}

    def answer(self, target: str, method: str, *results: Any) -> None:
        """Queue results for (target, method); an exception instance is raised instead."""
        self._answers.setdefault((target, method), deque()).extend(results)

    def record(
        self, target: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any
    ) -> Any:
        self.calls.append(Call(target, method, copy.deepcopy(args), copy.deepcopy(kwargs)))
        queue = self._answers.get((target, method))
        result = queue.popleft() if queue else default
        if isinstance(result, BaseException):
            raise result
        return result

    def calls_to(self, target: str, method: str) -> list[Call]:
        """The recorded calls of one method on one target, in order."""
        return [c for c in self.calls if (c.target, c.method) == (target, method)]

    def commands(self, name: str | None = None) -> list[dict[str, Any]]:
        """The command documents sent with Database.command (optionally of one command name)."""
        return [
            c.args[0]
            for c in self.calls
            if c.target == "db"
            and c.method.startswith("command:")
            and (name is None or c.method == f"command:{name}")
        ]

    # ---- the pymongo Database surface used by the stores ---------------------------------------

    def __getitem__(self, name: str) -> FakeCollection:
        return self._collections.setdefault(name, FakeCollection(self, name))

    def command(self, command: dict[str, Any], **kwargs: Any) -> Any:
        method = f"command:{next(iter(command))}"
        return self.record("db", method, (command,), kwargs, {"ok": 1.0})

    def list_collection_names(self, **kwargs: Any) -> list[str]:
        return self.record("db", "list_collection_names", (), kwargs, [])


class FakeCollection:
    """The pymongo Collection methods the stores call, each recorded on the database."""

    def __init__(self, db: FakeDatabase, name: str) -> None:
        self.db = db
        self.name = name

    def _record(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any
    ) -> Any:
        return self.db.record(self.name, method, args, kwargs, default)

    def list_indexes(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self._record("list_indexes", (), kwargs, [])

    def aggregate(self, pipeline: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        return self._record("aggregate", (pipeline,), kwargs, [])

    def find(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return self._record("find", args, kwargs, [])

    def find_one(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self._record("find_one", args, kwargs, None)

    def insert_one(self, document: dict[str, Any], **kwargs: Any) -> Any:
        return self._record("insert_one", (document,), kwargs, SimpleNamespace(acknowledged=True))

    def insert_many(self, documents: list[dict[str, Any]], **kwargs: Any) -> Any:
        return self._record("insert_many", (documents,), kwargs, SimpleNamespace(acknowledged=True))

    def update_one(self, *args: Any, **kwargs: Any) -> Any:
        return self._record("update_one", args, kwargs, SimpleNamespace(matched_count=1))

    def delete_one(self, *args: Any, **kwargs: Any) -> Any:
        return self._record("delete_one", args, kwargs, SimpleNamespace(deleted_count=1))

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._record("delete_many", args, kwargs, SimpleNamespace(deleted_count=0))

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self._record("find_one_and_update", args, kwargs, None)

    def find_one_and_delete(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self._record("find_one_and_delete", args, kwargs, None)

    def drop(self, **kwargs: Any) -> None:
        return self._record("drop", (), kwargs, None)


class FakeClient:
    """client[db_name] gives a FakeDatabase (the same one each time)."""

    def __init__(self) -> None:
        self.databases: dict[str, FakeDatabase] = {}
        self.closed = False

    def __getitem__(self, name: str) -> FakeDatabase:
        return self.databases.setdefault(name, FakeDatabase(name))

    def close(self) -> None:
        self.closed = True
