"""An in-memory stand-in for the pymongo calls the DocumentDB stores make, that keeps documents and
evaluates the query shapes they send, one call at a time.

Where tests/support/fake_mongo.py records commands and evaluates nothing (for asserting the exact
documents sent), this one answers the way a server does, so concurrency tests can run the real
service on it: every call holds one lock, as a server applies a single-document write atomically,
and conditional writes (find_one_and_update, find_one_and_delete, delete_one) report what they
changed. It knows equality and $eq/$ne/$gt/$gte/$lt/$lte/$in/$nin/$exists/$regex with
$and/$or/$nor on dotted paths, inclusion projections, sort, skip and limit, and $set.

Vector search is evaluated the way the DocumentDB engine behaves where it matters for a filtered
search (/work/shared/DOCUMENTDB.md; pg_documentdb's bson_aggregation_vector_search.c and
query_operator.c):
- `$search`/`cosmosSearch` must be the first stage and needs the vector index (createIndexes);
- k above 1,000 is refused (the engine's cap);
- every path of the `filter` pre-filter needs its own single-path ordinary index, or the search
  fails with the engine's "The index for filter path '...' was not found" (a compound or wildcard
  index does not count, nor the `_id` primary key);
- `exact: true` filters first and then ranks every match by cosine similarity; `exact: false`
  ranks the k nearest of the whole collection and filters them (an approximate scan's worst case);
- stages after `$search` (`$project` with the search score, `$match`) see only those k hits.

Keyword search (`$text`) as the engine does it (tests/support/text_search.py says how words are
analysed and scored, and what is not emulated):
- `$text` needs a text index (createIndexes with a "text" key), or fails as the engine does;
  a collection has one text index at most (createIndexes with a second one fails whole);
- it is evaluated only in a pipeline's first `$match`, at its top level or in its top-level
  `$and`, together with the stage's other conditions; anywhere else it is refused;
- `{"$meta": "textScore"}` in a `$project` needs that `$text`; `$sort`, `$limit` and `$count`
  follow.
Other commands (create, ...) answer ok.
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from tests.support.text_search import query_lexemes, text_score

_MISSING = object()
MAX_K = 1000  # the open-source engine's largest k
_SCORE = "__search_score"  # where a hit carries its score until a $project asks for it
_TEXT_SCORE = "__text_score"  # the same for a $text match's score
_NO_TEXT_INDEX = "A text index is necessary to perform a $text query."
_NO_TEXT_SCORE = (
    "The query needs text score metadata, but this required information is currently unavailable."
)
_NO_FILTER_INDEX = (
    "The index for filter path '{}' was not found, please check whether the index is created."
)
_NO_VECTOR_INDEX = "Similarity index was not found for a vector similarity search query."


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
        name = next(iter(command))
        if name == "create":
            self[command["create"]]
        elif name == "createIndexes":
            collection = self[command["createIndexes"]]
            collection.check_one_text_index(command["indexes"])
            for index in command["indexes"]:
                collection.add_index(index)
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
        self.indexes: dict[str, dict[str, Any]] = {}
        self.searches: list[dict[str, Any]] = []  # every cosmosSearch spec received, in order

    def add_index(self, index: Mapping[str, Any]) -> None:
        """Keep an index definition (createIndexes again with the same name is a no-op)."""
        with self._lock:
            self.indexes.setdefault(index["name"], copy.deepcopy(dict(index)))

    def check_one_text_index(self, indexes: Sequence[Mapping[str, Any]]) -> None:
        """Refuse (the whole command, as the engine does) a text index beside another one."""
        with self._lock:
            texts = {
                index["name"]: dict(index["key"])
                for index in [*self.indexes.values(), *indexes]
                if "text" in dict(index["key"]).values()
            }
        if len(texts) > 1:
            raise OperationFailure(
                f"Expected exactly one text index. Indexes: {sorted(texts)}", 17194
            )

    def prefilter_paths(self) -> set[str]:
        """Paths the engine pre-filters on: those with their own single-path ordinary index."""
        with self._lock:
            keys = [dict(index["key"]) for index in self.indexes.values()]
        return {
            path
            for key in keys
            if len(key) == 1
            for path, kind in key.items()
            if kind in (1, -1) and "$**" not in path and path != "_id"
        }

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
        stages = list(pipeline)
        if any("$search" in stage for stage in stages[1:]):
            raise OperationFailure("$search must be the first stage in the pipeline", 2)
        if any(_text_query(stage.get("$match") or {})[0] for stage in stages[1:]):
            raise OperationFailure(_NO_TEXT_INDEX, 27)  # what the engine answers there
        if stages and "$search" in stages[0]:
            found = self._search(stages.pop(0)["$search"])
        elif stages and _text_query(stages[0].get("$match") or {})[0]:
            found = self._text_match(stages.pop(0)["$match"])
        else:
            with self._lock:
                found = [copy.deepcopy(d) for d in self.documents.values()]
        for stage in stages:
            (name, spec), *_ = stage.items()
            if name == "$match":
                found = [d for d in found if _matches(d, spec)]
            elif name == "$project":
                found = [_project_scored(d, spec) for d in found]
            elif name == "$sort":
                for path, direction in reversed(list(spec.items())):
                    found.sort(key=lambda d, p=path: _sort_key(_get(d, p)), reverse=direction < 0)
            elif name == "$limit":
                found = found[:spec]
            elif name == "$count":
                found = [{spec: len(found)}] if found else []
            else:
                raise NotImplementedError(f"stage {name} is not evaluated by this stand-in")
        return found

    def list_indexes(self, **kwargs: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(index) for index in self.indexes.values()]

    def create_index(self, keys: Any, **kwargs: Any) -> str:
        key = {keys: 1} if isinstance(keys, str) else dict(keys)
        name = kwargs.get("name") or "_".join(f"{p}_{d}" for p, d in key.items())
        self.add_index({"name": name, "key": key})
        return str(name)

    def _search(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        cosmos = spec["cosmosSearch"]
        self.searches.append(copy.deepcopy(dict(cosmos)))
        path, k, vector = cosmos["path"], cosmos["k"], cosmos["vector"]
        with self._lock:
            vector_paths = [
                p
                for ix in self.indexes.values()
                for p, kind in ix["key"].items()
                if kind == "cosmosSearch"
            ]
        if path not in vector_paths:
            raise OperationFailure(_NO_VECTOR_INDEX, 2)
        if not 1 <= k <= MAX_K:
            raise OperationFailure(f"k must be between 1 and {MAX_K}, got {k}", 2)
        prefilter = cosmos.get("filter") or {}
        allowed = self.prefilter_paths()
        for filtered in _filter_paths(prefilter):
            if filtered not in allowed:
                raise OperationFailure(_NO_FILTER_INDEX.format(filtered), 2)
        with self._lock:
            stored = [copy.deepcopy(d) for d in self.documents.values()]
        with_vectors = [d for d in stored if _vector_of(d, path, len(vector)) is not None]
        if cosmos.get("exact"):
            candidates = [d for d in with_vectors if _matches(d, prefilter)]
            return _nearest(candidates, path, vector, k)
        return [d for d in _nearest(with_vectors, path, vector, k) if _matches(d, prefilter)]

    def _text_match(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The documents matching a first $match with $text, each with its text score."""
        text, rest = _text_query(query)
        with self._lock:
            paths = [
                path
                for index in self.indexes.values()
                for path, kind in index["key"].items()
                if kind == "text"
            ]
            stored = [copy.deepcopy(d) for d in self.documents.values()]
        if not paths:
            raise OperationFailure(_NO_TEXT_INDEX, 27)
        wanted = query_lexemes(text["$search"])
        found = []
        for document in stored:
            texts = [v for v in (_get(document, p) for p in paths) if isinstance(v, str)]
            score = sum(text_score(t, wanted) for t in texts)
            if score > 0 and _matches(document, rest):
                document[_TEXT_SCORE] = score
                found.append(document)
        return found

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


def _text_query(query: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """($text spec, the other conditions) of a $match; $text may stand at the top level or in
    the top-level $and, once; anywhere deeper ($or, $nor, nested $and) is refused."""
    rest = dict(query)
    found = [rest.pop("$text")] if "$text" in rest else []
    if "$and" in rest:
        parts = [dict(part) for part in rest["$and"]]
        found += [part.pop("$text") for part in parts if "$text" in part]
        rest["$and"] = parts
    if len(found) > 1 or _has_text(rest):
        raise OperationFailure("$text may appear once, at the top level of the first $match", 2)
    return (dict(found[0]) if found else None), rest


def _has_text(query: Any) -> bool:
    if isinstance(query, Mapping):
        return "$text" in query or any(_has_text(v) for v in query.values())
    if isinstance(query, list):
        return any(_has_text(v) for v in query)
    return False


def _matches(document: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$text":
            raise OperationFailure("$text is evaluated only in a pipeline's first $match", 2)
        if key == "$and":
            ok = all(_matches(document, part) for part in condition)
        elif key == "$or":
            ok = any(_matches(document, part) for part in condition)
        elif key == "$nor":
            ok = not any(_matches(document, part) for part in condition)
        else:
            value = _get(document, key)
            if isinstance(condition, Mapping) and any(op.startswith("$") for op in condition):
                if "$regex" in condition:
                    ok = _regex(value, condition["$regex"], condition.get("$options", ""))
                    condition = {o: v for o, v in condition.items() if o not in _REGEX_KEYS}
                else:
                    ok = True
                ok = ok and all(_test(value, op, operand) for op, operand in condition.items())
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


_REGEX_KEYS = ("$regex", "$options")


def _regex(value: Any, pattern: str, options: str) -> bool:
    flags = re.IGNORECASE if "i" in options else 0
    return isinstance(value, str) and re.search(pattern, value, flags) is not None


def _filter_paths(query: Mapping[str, Any]) -> list[str]:
    """Every document path a query document tests ($and/$or/$nor descended)."""
    paths: list[str] = []
    for key, condition in query.items():
        if key in ("$and", "$or", "$nor"):
            for part in condition:
                paths.extend(_filter_paths(part))
        else:
            paths.append(key)
    return paths


def _vector_of(document: Mapping[str, Any], path: str, dims: int) -> list[float] | None:
    value = _get(document, path)
    if not isinstance(value, list) or len(value) != dims:
        return None  # the engine leaves a vector of another length out of its index
    return value


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def _nearest(
    documents: list[dict[str, Any]], path: str, vector: Sequence[float], k: int
) -> list[dict[str, Any]]:
    # COS: the engine's score is 1 - cosine distance, i.e. the cosine similarity.
    for document in documents:
        document[_SCORE] = _cosine(_get(document, path), vector)
    return sorted(documents, key=lambda d: d[_SCORE], reverse=True)[:k]


def _project_scored(document: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"_id": document["_id"]}
    for field, value in spec.items():
        if value == {"$meta": "searchScore"}:
            kept[field] = document[_SCORE]
        elif value == {"$meta": "textScore"}:
            if _TEXT_SCORE not in document:
                raise OperationFailure(_NO_TEXT_SCORE, 40218)
            kept[field] = document[_TEXT_SCORE]
        elif value and (found := _get(document, field)) is not _MISSING:
            kept[field] = copy.deepcopy(found)
    return kept


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
