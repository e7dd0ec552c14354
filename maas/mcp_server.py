"""The /mcp endpoint: the Model Context Protocol over streamable HTTP (the official SDK), serving
the tools of maas/mcp_tools.py.

Stateless, with JSON responses: no MCP session lives in a process, so any replica serves any
request. The endpoint sits behind the app's middleware like /graphql (request id, bearer
authentication by maas.authenticate, body limit); a tool finds its caller's tenant where the
middleware put it. A tool's failure is a result with `isError: true` whose text says the code
and message and whose structured content is `{code, message, ...details}` — the codes GraphQL
errors carry; anything unexpected is masked and logged with an id, as schema/errors.py does.

Importing the SDK costs start-up CPU and memory, so maas/app.py imports this module only when
MCP_ENABLED.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from maas.mcp_tools import TOOLS
from services.errors import MaasError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context
    from starlette.types import Receive, Scope, Send

log = logging.getLogger("maas.mcp")
INSTRUCTIONS = (
    "Memory for AI agents. Short-term: a session's messages (add_messages) and the context "
    "window to put in front of the model (get_context). Long-term: memories within a scope "
    "(userId, agentId, sessionId): search_memories, add_memory, update_memory, delete_memory. "
    "Errors carry a code: BAD_USER_INPUT, NOT_FOUND, LIMIT_EXCEEDED, UNAUTHENTICATED, "
    "UNAVAILABLE, INTERNAL."
)


class MaasMCPServer(MCPServer):
    """The SDK's server whose tool failures carry the codes of GraphQL errors."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            return _coded(name, error)


def _coded(tool: str, error: ToolError) -> CallToolResult:
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
    """A tool's coded failure, for the model to read (text) and for code (structured)."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        structured_content={"code": code, "message": message, **details},
        is_error=True,
    )


def _arguments_problem(error: ValidationError) -> str:
    # Where and what, not the value given (it may be large, or personal).
    problems = (
        f"{'.'.join(str(part) for part in e['loc']) or 'arguments'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    )
    return "Invalid arguments: " + "; ".join(problems) + "."


class McpEndpoint:
    """The ASGI endpoint of /mcp and what must run while the app does (the SDK's task group)."""

    def __init__(self, max_request_bytes: int) -> None:
        self.server = MaasMCPServer("maas", instructions=INSTRUCTIONS)
        for tool, hints in TOOLS:
            self.server.add_tool(tool, annotations=hints)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=max_request_bytes,
            # Every request carries its bearer credential, which a page that rebinds a name to
            # this address cannot supply: the Host check only refuses load balancers' names.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._asgi = StreamableHTTPASGIApp(self.server.session_manager)

    def run(self) -> AbstractAsyncContextManager[None]:
        """Enter in the app's lifespan: tool calls run in the task group it holds."""
        return self.server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)
