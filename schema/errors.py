"""Every error reaches the client with `extensions.code`; unexpected ones are masked and logged
with an id the client can quote."""

from __future__ import annotations

import logging
import uuid

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from services.errors import MaasError

log = logging.getLogger("maas.errors")

# graphql-core and Strawberry's limiters report their limits as plain validation errors; these
# are the messages they use.
_LIMIT_MESSAGES = (
    "exceeds maximum operation depth",
    "aliases found. Allowed:",
    "Document contains more than",
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


class ErrorCodes(MaskErrors):
    """Adds a code to every error; replaces unexpected ones by an INTERNAL error with an id."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._classify(error) for error in errors]

    def _classify(self, error: GraphQLError) -> GraphQLError:
        if (error.extensions or {}).get("code"):
            return error
        original = error.original_error
        if isinstance(original, MaasError):
            return _with_code(error, original.code, original.message, **original.details)
        if original is None:
            limited = any(m in error.message for m in _LIMIT_MESSAGES)
            return _with_code(error, "LIMIT_EXCEEDED" if limited else "BAD_USER_INPUT")
        error_id = uuid.uuid4().hex[:16]
        log.error("internal error %s at %s", error_id, error.path, exc_info=original)
        return _with_code(error, "INTERNAL", f"Internal error (id {error_id}).", errorId=error_id)
