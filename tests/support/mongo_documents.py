"""An in-memory stand-in for the pymongo calls the DocumentDB stores make, that keeps documents and
evaluates the query shapes they send, one call at a time.

Where tests/support/fake_mongo.py records commands and evaluates nothing (for asserting the exact
documents sent), this one answers the way a server does, so concurrency tests can run the real
service on it: every call holds one lock, as a server applies a single-document write atomically,
and conditional writes (find_one_and_update, find_one_and_delete, delete_one) report what they
changed. It knows equality and $eq/$ne/$gt/$gte/$lt/$lte/$in/$nin/$exists with $and/$or on dotted
paths, inclusion projections, sort, skip and limit, and $set. Vector search is not evaluated:
`aggregate` answers no documents; commands (createIndexes, create, ...) answer ok.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

_MISSING = object()


class DocumentClient:
    """client[db_name] gives a DocumentDatabase; all of them share one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.databases: dict[str, DocumentDatabase] = {}
        self.closed = False

    def __getitem__(self, name: str) -> DocumentDatabase:
        with self.lock:
            return self.databases.setdefault(name, DocumentDatabase(self, name))

    def drop_database(self, name: str) -> None:
        with self.lock:
            self.databases.pop(name, None)

    def close(self) -> None:
        self.closed = True


class DocumentDatabase:
    def __init__(self, client: DocumentClient, name: str) -> None:
        self.client = client
        self.name = name
        self.collections: dict[str, DocumentCollection] = {}

    def __getitem__(self, name: str) -> DocumentCollection:
        with self.client.lock:
            return self.collections.setdefault(name, DocumentCollection(self.client.lock, name))

    def command(self, command: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        if next(iter(command)) == "create":
            self[command["create"]]
        return {"ok": 1.0}

    def list_collection_names(self, filter: Mapping[str, Any] | None = None) -> list[str]:
        with self.client.lock:
            return [n for n in self.collections if _matches({"name": n}, filter or {})]


class DocumentCollection:
    """Documents by _id; each method runs under the client's lock."""

    def __init__(self, lock: threading.RLock, name: str) -> None:
        self._lock = lock
        self.name = name
        self.documents: dict[Any, dict[str, Any]] = {}

    # ---- writes --------------------------------------------------------------------------------

    def insert_one(self, document: dict[str, Any], **kwargs: Any) -> Any:
        with self._lock:
            if document["_id"] in self.documents:
                raise DuplicateKeyError(f"E11000 duplicate key {document['_id']!r}", 11000)
            self.documents[document["_id"]] = copy.deepcopy(document)
        return SimpleNamespace(acknowledged=True, inserted_id=document["_id"])

    def insert_many(self, documents: Sequence[dict[str, Any]], ordered: bool = True) -> Any:
        errors = []
        with self._lock:
            for index, document in enumerate(documents):
                if document["_id"] in self.documents:
                    errors.append({"index": index, "code": 11000, "errmsg": "duplicate key"})
                    if ordered:
                        break
                    continue
                self.documents[document["_id"]] = copy.deepcopy(document)
        if errors:
            raise BulkWriteError({"writeErrors": errors})
        return SimpleNamespace(acknowledged=True, inserted_ids=[d["_id"] for d in documents])

    def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], **kwargs: Any
    ) -> Any:
        with self._lock:
            document = self._first(filter)
            if document is not None:
                _apply(document, update)
        matched = int(document is not None)
        return SimpleNamespace(matched_count=matched, modified_count=matched)

    def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        with self._lock:
            document = self._first(filter)
            if document is None:
                return None
            before = copy.deepcopy(document)
            _apply(document, update)
            chosen = document if return_document == ReturnDocument.AFTER else before
            return _project(chosen, projection)

    def find_one_and_delete(
        self,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        with self._lock:
            document = self._first(filter)
            if document is None:
                return None
            del self.documents[document["_id"]]
            return _project(document, projection)

    def delete_one(self, filter: Mapping[str, Any], **kwargs: Any) -> Any:
        with self._lock:
            document = self._first(filter)
            if document is not None:
                del self.documents[document["_id"]]
        return SimpleNamespace(deleted_count=int(document is not None))

    def delete_many(self, filter: Mapping[str, Any], **kwargs: Any) -> Any:
        with self._lock:
            doomed = [key for key, doc in self.documents.items() if _matches(doc, filter)]
            for key in doomed:
                del self.documents[key]
        return SimpleNamespace(deleted_count=len(doomed))

    def drop(self, **kwargs: Any) -> None:
        with self._lock:
            self.documents.clear()

    # ---- reads ---------------------------------------------------------------------------------

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | None = None,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        with self._lock:
            found = [copy.deepcopy(d) for d in self.documents.values() if _matches(d, filter or {})]
        for path, direction in reversed(sort or []):
            found.sort(key=lambda d, p=path: _sort_key(_get(d, p)), reverse=direction < 0)
        found = found[skip:]
        if limit:
            found = found[:limit]
        return [_project(d, projection) for d in found]

    def find_one(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        found = self.find(filter, projection, limit=1)
        return found[0] if found else None

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Any]:
        return []

    def list_indexes(self, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def create_index(self, keys: Any, **kwargs: Any) -> str:
        return "index"

    def _first(self, filter: Mapping[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self.documents.values() if _matches(d, filter)), None)


# ---- evaluation --------------------------------------------------------------------------------


def _get(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _matches(document: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            ok = all(_matches(document, part) for part in condition)
        elif key == "$or":
            ok = any(_matches(document, part) for part in condition)
        else:
            value = _get(document, key)
            if isinstance(condition, Mapping) and any(op.startswith("$") for op in condition):
                ok = all(_test(value, op, operand) for op, operand in condition.items())
            else:
                ok = _test(value, "$eq", condition)
        if not ok:
            return False
    return True


def _test(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return (value is _MISSING and operand is None) or value == operand
    if op == "$ne":
        return not _test(value, "$eq", operand)
    if op == "$in":
        return any(_test(value, "$eq", item) for item in operand)
    if op == "$nin":
        return not _test(value, "$in", operand)
    if op == "$exists":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING or value is None or not _comparable(value, operand):
        return False
    if op == "$gt":
        return bool(value > operand)
    if op == "$gte":
        return bool(value >= operand)
    if op == "$lt":
        return bool(value < operand)
    if op == "$lte":
        return bool(value <= operand)
    raise NotImplementedError(f"operator {op} is not evaluated by this stand-in")


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or type(a) is type(b)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is _MISSING or value is None:
        return (0, 0)
    return (1, value)


def _apply(document: dict[str, Any], update: Mapping[str, Any]) -> None:
    for op, fields in update.items():
        if op != "$set":
            raise NotImplementedError(f"update operator {op} is not evaluated by this stand-in")
        for path, value in fields.items():
            *parents, last = path.split(".")
            target = document
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = copy.deepcopy(value)


def _project(document: Mapping[str, Any], projection: Mapping[str, Any] | None) -> dict[str, Any]:
    if not projection:
        return copy.deepcopy(dict(document))
    kept = {"_id": document["_id"]}
    for path, include in projection.items():
        if include and (value := _get(document, path)) is not _MISSING:
            kept[path] = copy.deepcopy(value)
    return kept
