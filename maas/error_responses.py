"""Errors answered outside GraphQL execution (transport, routing, limits) in the shape of a
GraphQL response, so every client reads one format with `extensions.code`."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

# The code of each HTTP status the transport answers with itself.
_CODES = {401: "UNAUTHENTICATED", 404: "NOT_FOUND", 413: "LIMIT_EXCEEDED", 429: "LIMIT_EXCEEDED"}


def code_of_status(status: int) -> str:
    """The code of an HTTP error status: the client's mistake unless it is the server's."""
    if status >= 500:
        return "INTERNAL"
    return _CODES.get(status, "BAD_USER_INPUT")


def graphql_error_response(
    status: int,
    message: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **details: object,
) -> JSONResponse:
    """`{"errors": [{"message", "extensions": {"code", ...}}]}` with an HTTP status."""
    extensions = {"code": code or code_of_status(status), **details}
    return JSONResponse(
        {"errors": [{"message": message, "extensions": extensions}]},
        status_code=status,
        headers=dict(headers or {}),
    )
