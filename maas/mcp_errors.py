"""MCP tool failures with the codes of GraphQL errors (services/errors.py).

A failed tool call is a result with `isError: true`: its text says `CODE: message` for the
model to read, its structured content is `{code, message, ...details}` (details as GraphQL's
`extensions`: `field`, `limit`, `retryAfterSeconds`...) for code. Arguments the tool's schema
refuses are BAD_USER_INPUT; anything unexpected is masked and logged with an id, as
schema/errors.py does for GraphQL.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from services.errors import MaasError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

log = logging.getLogger("maas.mcp")


class CodedToolErrors(MCPServer):
    """The SDK's server whose tool failures carry the codes of GraphQL errors."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            return coded_result(name, error)


def coded_result(tool: str, error: ToolError) -> CallToolResult:
    """The result of a tool call that failed with `error` (the SDK wraps what the tool raised)."""
    cause = error.__cause__
    if isinstance(cause, MaasError):
        return error_result(cause.code, cause.message, **cause.details)
    if isinstance(cause, ValidationError):
        return error_result("BAD_USER_INPUT", _arguments_problem(cause))
    if cause is None:  # the SDK's own refusal (an unknown tool): its message is safe
        return error_result("BAD_USER_INPUT", str(error))
    error_id = uuid.uuid4().hex[:16]
    log.error("internal error %s in MCP tool %s", error_id, tool, exc_info=cause)
    return error_result("INTERNAL", f"Internal error (id {error_id}).", errorId=error_id)


def error_result(code: str, message: str, **details: Any) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        structured_content={"code": code, "message": message, **details},
        is_error=True,
    )


def _arguments_problem(error: ValidationError) -> str:
    # Where and what, never the value given (it may be large, or personal).
    problems = (
        f"{'.'.join(str(part) for part in e['loc']) or 'arguments'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    )
    return "Invalid arguments: " + "; ".join(problems) + "."
