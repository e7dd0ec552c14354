"""What text and JSON from a client may hold: what every store can keep and every response can
carry as RFC 8259 JSON. No lone surrogates (UTF-8 cannot encode them: Redis, SQLite and BSON
refuse them), no NaN or infinities (JSON has no token for them), integers within 64 bits (what
SQLite and BSON hold), nesting no deeper than a limit (deep values exhaust recursion in JSON
encoders and copies)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from services.errors import InvalidInput, LimitExceeded

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """Whether text holds a UTF-16 surrogate alone (from an escape like \\ud800)."""
    return _SURROGATE.search(text) is not None


def check_text(text: str, field: str) -> None:
    """Text that UTF-8 can encode."""
    if has_lone_surrogate(text):
        raise InvalidInput(f"{field} holds an unpaired UTF-16 surrogate.", field=field)


@dataclass(frozen=True)
class JsonLimits:
    """How large a JSON value may be: nesting, members of one array or object, values in all."""

    max_depth: int = MAX_DEPTH
    max_items: int = 1_000
    max_values: int = 20_000


@dataclass(frozen=True)
class JsonProblem:
    where: str
    what: str
    over_limit: bool  # a limit was passed (LIMIT_EXCEEDED), not a wrong value


def check_json_value(value: Any, field: str, max_depth: int = MAX_DEPTH) -> None:
    """A JSON value every store keeps and every response encodes; InvalidInput names where
    it goes wrong, LimitExceeded when it is nested deeper than max_depth."""
    problem = json_value_problem(value, JsonLimits(max_depth, INT64_MAX, INT64_MAX))
    if problem is None:
        return
    path = field + problem.where
    if problem.over_limit:
        raise LimitExceeded(f"{path}: {problem.what}.", field=field, limit=max_depth)
    raise InvalidInput(f"{path}: {problem.what}.", field=field)


def json_value_problem(value: Any, limits: JsonLimits) -> JsonProblem | None:
    """The first problem of a JSON value, or None. Iterative, so any depth is safe to
    inspect."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    seen = 0
    while stack:
        item, where, depth = stack.pop()
        seen += 1
        if seen > limits.max_values:
            return JsonProblem("", f"more than {limits.max_values} values", True)
        kind = type(item)
        if kind is str:
            if _SURROGATE.search(item):
                return JsonProblem(where, "text with an unpaired UTF-16 surrogate", False)
        elif kind is dict or kind is list:
            if depth >= limits.max_depth:
                what = f"a value nested deeper than {limits.max_depth} levels"
                return JsonProblem(where, what, True)
            if len(item) > limits.max_items:
                what = f"more than {limits.max_items} {'members' if kind is dict else 'items'}"
                return JsonProblem(where, what, True)
            if kind is dict:
                for key, member in item.items():
                    if type(key) is not str or "\x00" in key:
                        # BSON keys cannot hold NUL.
                        return JsonProblem(
                            where, "an object key that is not text without NUL", False
                        )
                    if _SURROGATE.search(key):
                        return JsonProblem(
                            where, "an object key with an unpaired UTF-16 surrogate", False
                        )
                    stack.append((member, f"{where}.{key}", depth + 1))
            else:
                stack.extend((member, f"{where}[{i}]", depth + 1) for i, member in enumerate(item))
        elif kind is float:
            if not math.isfinite(item):
                return JsonProblem(where, "a number JSON cannot represent (NaN or infinite)", False)
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return JsonProblem(where, "an integer beyond 64 bits", False)
        elif item is not None and kind is not bool:
            return JsonProblem(where, f"a {kind.__name__}, which is not JSON", False)
    return None
