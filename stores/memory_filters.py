"""mem0's metadata filters, parsed once and rendered for each store (SQL for the embedded store,
MongoDB query documents for DocumentDB and MongoDB).

mem0 hands a vector store its filters as given by the caller or after `_process_metadata_filters`:
    {"user_id": "u1"}                           equality ("*" = the field exists)
    {"score": {"gte": 3, "lt": 9}}              eq ne gt gte lt lte in nin contains icontains
    {"AND": [...]} {"OR": [...]} {"NOT": [...]}  (or the processed {"$or": [...]}, {"$not": [...]})
Keys are payload paths; dots reach into nested objects ("metadata.topic").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains"})
_PATH_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Field:
    """One condition on one payload path; op "exists" is the "*" wildcard."""

    path: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class All:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Field | All | AnyOf | Not


def parse(filters: Mapping[str, Any] | None) -> Condition:
    """The filters as a condition tree; ValueError on an unknown operator or a bad path."""
    parts: list[Condition] = []
    for key, value in (filters or {}).items():
        if key in ("AND", "$and"):
            parts.extend(parse(item) for item in _as_list(key, value))
        elif key in ("OR", "$or"):
            parts.append(AnyOf(tuple(parse(item) for item in _as_list(key, value))))
        elif key in ("NOT", "$not"):
            # NOT [a, b] keeps what matches none of them, as mem0's own stores read it.
            parts.extend(Not(parse(item)) for item in _as_list(key, value))
        else:
            parts.extend(_field_conditions(key, value))
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def _as_list(key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{key} takes a non-empty list of conditions")
    return value


def _field_conditions(path: str, value: Any) -> list[Condition]:
    if not all(_PATH_PART.fullmatch(part) for part in path.split(".")):
        raise ValueError(f"filter path {path!r}: letters, digits, _ and -, dot-separated")
    if value == "*":
        return [Field(path, "exists")]
    if not isinstance(value, Mapping):
        return [Field(path, "eq", value)]
    conditions: list[Condition] = []
    for op, operand in value.items():
        if op not in OPERATORS:
            raise ValueError(f"unsupported filter operator {op!r} on {path!r}")
        if op in ("in", "nin") and not isinstance(operand, list):
            raise ValueError(f"{op} on {path!r} takes a list")
        conditions.append(Field(path, op, operand))
    return conditions


def fields_of(condition: Condition) -> list[Field]:
    """The top-level conjuncts of a condition that are plain field conditions."""
    if isinstance(condition, Field):
        return [condition]
    if isinstance(condition, All):
        return [part for part in condition.parts if isinstance(part, Field)]
    return []


# ---- MongoDB / DocumentDB -------------------------------------------------------------------

_MONGO_OPS = {"eq": "$eq", "ne": "$ne", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}


def to_mongo(condition: Condition, prefix: str = "payload.") -> dict[str, Any]:
    """A MongoDB query document; paths get `prefix` (documents keep the payload apart)."""
    if isinstance(condition, All):
        if not condition.parts:
            return {}
        return {"$and": [to_mongo(part, prefix) for part in condition.parts]}
    if isinstance(condition, AnyOf):
        return {"$or": [to_mongo(part, prefix) for part in condition.parts]}
    if isinstance(condition, Not):
        return {"$nor": [to_mongo(condition.part, prefix)]}
    path = prefix + condition.path
    op, value = condition.op, condition.value
    if op in _MONGO_OPS:
        return {path: {_MONGO_OPS[op]: value}}
    if op in ("in", "nin"):
        return {path: {f"${op}": list(value)}}
    if op == "exists":
        return {path: {"$exists": True}}
    pattern = {"$regex": re.escape(str(value))}
    if op == "icontains":
        pattern["$options"] = "i"
    return {path: pattern}


# ---- SQLite (JSON1) -------------------------------------------------------------------------

_SQL_OPS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def to_sql(
    condition: Condition, payload_column: str = "payload", columns: Mapping[str, str] = {}
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters. Paths listed in `columns` use that (indexed) column;
    the rest are read from the JSON payload."""
    params: list[Any] = []
    clause = _sql(condition, payload_column, columns, params)
    return clause, params


def _sql(condition: Condition, payload: str, columns: Mapping[str, str], params: list[Any]) -> str:
    if isinstance(condition, All):
        if not condition.parts:
            return "1"
        return "(" + " AND ".join(_sql(p, payload, columns, params) for p in condition.parts) + ")"
    if isinstance(condition, AnyOf):
        return "(" + " OR ".join(_sql(p, payload, columns, params) for p in condition.parts) + ")"
    if isinstance(condition, Not):
        return f"NOT COALESCE({_sql(condition.part, payload, columns, params)}, 0)"
    # Paths are checked against _PATH_PART when parsed, so quoting them here is safe.
    json_path = "$." + ".".join(f'"{part}"' for part in condition.path.split("."))
    target = columns.get(condition.path) or f"json_extract({payload}, '{json_path}')"
    op, value = condition.op, condition.value
    if op in _SQL_OPS:
        params.append(value)
        return f"{target} {_SQL_OPS[op]} ?"
    if op == "ne":
        params.append(value)
        return f"({target} IS NULL OR {target} != ?)"
    if op in ("in", "nin"):
        params.extend(value)
        marks = ",".join("?" * len(value))
        if op == "in":
            return f"{target} IN ({marks})" if value else "0"
        return f"({target} IS NULL OR {target} NOT IN ({marks}))" if value else "1"
    if op == "exists":
        return f"{target} IS NOT NULL"
    params.append(str(value))
    if op == "icontains":
        return f"instr(lower({target}), lower(?)) > 0"
    return f"instr({target}, ?) > 0"
