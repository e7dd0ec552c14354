"""Strict decoding of the JSON clients send (HTTP bodies, GET parameters, WebSocket frames),
before anything else touches it: UTF-8, RFC 8259 (no NaN or Infinity), numbers every store
keeps, no lone surrogates, nesting within a limit. A problem is a `BadJson` with the code the
client gets."""

from __future__ import annotations

import json
import re
from typing import Any

from services.json_values import INT64_MAX, INT64_MIN, json_value_problem

# A lone surrogate can only come from an escape (strict UTF-8 refuses encoded ones): text
# without such an escape needs no search for them.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BadJson(ValueError):
    """JSON the service refuses; `code` is BAD_USER_INPUT or LIMIT_EXCEEDED."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _refuse_constant(token: str) -> Any:
    raise BadJson(f"{token} is not JSON (RFC 8259 has no NaN or Infinity).")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadJson(f"The number {text[:40]} is too large.")
    return value


def _int64(text: str) -> int:
    # Checked on the text first: int() of thousands of digits is slow, and refused past 4,300.
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= int(text) <= INT64_MAX:
        raise BadJson(f"The integer {text[:40]} does not fit in 64 bits.")
    return int(text)


def decode(data: str | bytes, max_depth: int) -> Any:
    """The value of a JSON text, or BadJson."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("The request is not valid UTF-8.") from None
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int64
        )
    except json.JSONDecodeError as error:
        raise BadJson(f"The request is not valid JSON: {error.msg} at {error.pos}.") from None
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {max_depth} levels.", "LIMIT_EXCEEDED") from None
    if _needs_inspection(raw, max_depth):
        problem = json_value_problem(value, max_depth)
        if problem is not None:
            where, what = problem
            if what == "depth":
                raise BadJson(f"JSON nested deeper than {max_depth} levels.", "LIMIT_EXCEEDED")
            raise BadJson(f"The request holds {what} (at {where or 'the top'}).")
    return value


def _needs_inspection(raw: bytes, max_depth: int) -> bool:
    """Whether the decoded value could be too deep or hold a lone surrogate; cheap on the
    text, so most requests skip walking their value."""
    return (
        raw.count(b"{") + raw.count(b"[") > max_depth or _SURROGATE_ESCAPE.search(raw) is not None
    )
