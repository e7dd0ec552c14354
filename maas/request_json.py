"""Strict decoding of the JSON clients send (HTTP bodies, GET parameters, WebSocket frames),
before anything else touches it: UTF-8, RFC 8259 (no NaN or Infinity), numbers every store
keeps, no lone surrogates, nesting within a limit. A problem is a `BadJson` with the code the
client gets."""

from __future__ import annotations

import json
import re
from typing import Any

from services.json_values import INT64_MAX, INT64_MIN, JsonLimits, json_value_problem

# A lone surrogate can only come from an escape (strict UTF-8 refuses encoded ones): text
# without such an escape needs no search for them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
    value = int(text) if len(text.lstrip("-")) <= 19 else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        raise BadJson(f"The integer {text[:40]} does not fit in 64 bits.")
    return value


def decode(data: str | bytes, limits: JsonLimits) -> Any:
    """The value of a JSON text, or BadJson."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson("The request is not valid UTF-8.") from None
    else:
        text = data  # already text: a WebSocket frame or a GET parameter, decoded strictly
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int64
        )
    except json.JSONDecodeError as error:
        raise BadJson(f"The request is not valid JSON: {error.msg} at {error.pos}.") from None
    except RecursionError:
        message = f"JSON nested deeper than {limits.max_depth} levels."
        raise BadJson(message, "LIMIT_EXCEEDED") from None
    if _needs_inspection(text, limits):
        problem = json_value_problem(value, limits)
        if problem is not None:
            code = "LIMIT_EXCEEDED" if problem.over_limit else "BAD_USER_INPUT"
            raise BadJson(
                f"The request holds {problem.what} (at {problem.where or 'the top'}).", code
            )
    return value


def _needs_inspection(text: str, limits: JsonLimits) -> bool:
    """Whether the decoded value could break a limit or hold a lone surrogate; counted on
    the text (every container opens with a bracket, every value past a container's first
    follows a comma), so most requests skip walking their value."""
    containers = text.count("{") + text.count("[")
    values = containers + text.count(",") + 1
    return (
        containers > limits.max_depth
        or values > min(limits.max_items, limits.max_values)
        or _SURROGATE_ESCAPE.search(text) is not None
    )
