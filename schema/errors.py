"""Every error reaches the client with `extensions.code`; unexpected ones are masked and logged
with an id the client can quote."""

from __future__ import annotations

import logging
import re
import uuid

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from services.errors import MaasError

log = logging.getLogger("maas.errors")

# graphql-core and Strawberry's limiters report their limits as plain validation errors; these
# are the messages they use.
_LIMIT_MESSAGES = (
    "exceeds maximum operation depth",
    "aliases found. Allowed:",
    "Document contains more than",
)


# graphql-core's hints at names the schema has ("Did you mean 'session'?").
_SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


# What graphql-core and Strawberry raise about the request itself (variables that do not
# coerce, an operation type the transport does not run).
REQUEST_ERRORS = (GraphQLError, InvalidOperationTypeError, CannotGetOperationTypeError)


def is_request_error(error: GraphQLError) -> bool:
    """An error in the request itself, which graphql-core's message describes safely."""
    original = error.original_error
    return error.path is None and (original is None or isinstance(original, REQUEST_ERRORS))


def request_error_code(error: GraphQLError) -> str:
    """The code of an error in the request itself."""
    return (
        "LIMIT_EXCEEDED" if any(m in error.message for m in _LIMIT_MESSAGES) else ("BAD_USER_INPUT")
    )


def _with_code(
    error: GraphQLError, code: str, message: str | None = None, **details: object
) -> GraphQLError:
    return GraphQLError(
        message=message or error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={**(error.extensions or {}), "code": code, **details},
    )


def code_errors(result: object) -> None:
    """Gives every error of the result a code; replaces unexpected ones by an INTERNAL error
    with an id (logged with the original)."""
    # MaskErrors asks isinstance() of a runtime-checkable Protocol first, which costs ~15 µs
    # for every result of every subscriber; an attribute read tells the same.
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [classified(error) for error in errors]  # type: ignore[attr-defined]


class ErrorCodes(MaskErrors):
    """code_errors as the extension of Strawberry's own execution (subscriptions, each of
    their results included); queries and mutations call it directly (schema.lean_operation)."""

    def _process_result(self, result: object) -> None:
        code_errors(result)


def classified(error: GraphQLError) -> GraphQLError:
    """The error with its code: as it is when it has one, else a new error."""
    if (error.extensions or {}).get("code"):
        return error
    original = error.original_error
    if isinstance(original, MaasError):
        return _with_code(error, original.code, original.message, **original.details)
    if is_request_error(error):
        # No path: the request itself (syntax, validation, variables, operation type) is
        # wrong, and graphql-core's message describes only the request.
        return _with_code(error, request_error_code(error))
    error_id = uuid.uuid4().hex[:16]
    log.error("internal error %s at %s", error_id, error.path, exc_info=original)
    return _with_code(error, "INTERNAL", f"Internal error (id {error_id}).", errorId=error_id)
