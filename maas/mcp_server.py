"""The /mcp endpoint: the Model Context Protocol over streamable HTTP (the official SDK), serving
the tools of maas/mcp_tools.py with the error codes of maas/mcp_errors.py.

Stateless, with JSON responses: no MCP session lives in a process, so any replica serves any
request. The endpoint sits behind the app's middleware like /graphql (request id, bearer
authentication by maas.authenticate, body limit); a tool finds its caller's tenant where the
middleware put it. A body is decoded as strictly as GraphQL's (maas/request_json.py) before the
SDK reads it: the SDK's own parser takes NaN and Infinity.

Importing the SDK costs start-up CPU and memory, so maas/app.py imports this module only when
MCP_ENABLED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from maas import request_json
from maas.graphql_view import OFFLOAD_BYTES
from maas.mcp_errors import CodedToolErrors
from maas.mcp_tools import TOOLS

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from services.json_values import JsonLimits

INSTRUCTIONS = (
    "Memory for AI agents. Short-term: a session's messages (add_messages) and the context "
    "window to put in front of the model (get_context). Long-term: memories within a scope "
    "(userId, agentId, sessionId): search_memories, add_memory, update_memory, delete_memory. "
    "Both at once, within a token budget: memory_prompt. "
    "Errors carry a code: BAD_USER_INPUT, NOT_FOUND, LIMIT_EXCEEDED, UNAUTHENTICATED, "
    "UNAVAILABLE, INTERNAL."
)
# JSON-RPC's codes: a body that is not the JSON it should be; a request the server refuses.
PARSE_ERROR, INVALID_REQUEST = -32700, -32600
NO_STREAM = "Method Not Allowed: this stateless endpoint offers no stream; POST each request."
ALLOW_POST = {"Allow": "POST"}


class McpEndpoint:
    """The ASGI endpoint of /mcp, and what must run while the app does (the SDK's task group)."""

    def __init__(self, max_request_bytes: int, json_limits: JsonLimits) -> None:
        self.json_limits = json_limits
        self.server = _without_configuring_logging(
            lambda: CodedToolErrors("maas", instructions=INSTRUCTIONS)
        )
        for tool, hints in TOOLS:
            self.server.add_tool(tool, annotations=hints)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=max_request_bytes,
            # Every request carries its bearer credential, which a page that rebinds a name to
            # this address cannot supply: the Host check would only refuse load balancers' names.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._sdk = StreamableHTTPASGIApp(self.server.session_manager)

    def run(self) -> AbstractAsyncContextManager[None]:
        """Enter in the app's lifespan: tool calls run in the task group it holds."""
        return self.server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            # The SDK would hold a server-to-client stream open that, stateless, never carries
            # anything: a connection pinned for nothing, and a shutdown held up until it ends.
            await _rpc_error(405, INVALID_REQUEST, NO_STREAM, "BAD_USER_INPUT", ALLOW_POST)(
                scope, receive, send
            )
            return
        if scope["method"] != "POST":
            await self._sdk(scope, receive, send)
            return
        try:
            body = await Request(scope, receive).body()
        except ClientDisconnect:
            return  # nobody to answer
        try:
            if len(body) > OFFLOAD_BYTES:
                await asyncio.to_thread(request_json.decode, body, self.json_limits)
            else:
                request_json.decode(body, self.json_limits)
        except request_json.BadJson as error:
            await _rpc_error(400, PARSE_ERROR, error.message, error.code)(scope, receive, send)
            return
        await self._sdk(scope, _replay(body, receive), send)


def _without_configuring_logging(build: Callable[[], CodedToolErrors]) -> CodedToolErrors:
    """The SDK's server, built without the root logger's configuration it makes (a handler and
    INFO, by logging.basicConfig, when the root has no handler yet): logging is the app's."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = build()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return server


def _rpc_error(
    status: int, rpc_code: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON-RPC error, as the SDK answers a request it refuses, with our code in `data`."""
    return JSONResponse(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": rpc_code, "message": message, "data": {"code": code}},
        },
        status_code=status,
        headers=headers,
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's messages again: its body (already read), then whatever follows."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
