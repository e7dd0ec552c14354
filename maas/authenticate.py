"""Authenticates each HTTP request to /graphql (and /mcp) before anything reads its body.

A request without a valid credential is answered 401 (503 when the token's signing keys cannot
be fetched) from its headers alone, and the connection is closed if a body may follow: an
unauthenticated 10 MB POST costs a header parse. The principal of an accepted request goes into
the ASGI scope's state, where the GraphQL view's context (and the MCP tools) take it from.

Left alone: other paths, WebSocket handshakes (the connection_init message authenticates them)
and the request for the GraphiQL page (a GET without a query that accepts HTML), which runs no
operation.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from maas.error_responses import graphql_error_response
from services.errors import MaasError, Unauthenticated

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from maas.auth import Authenticator
    from maas.principal import Principal

PRINCIPAL = "maas.principal"  # the key of the principal in scope["state"]
IDE_PATH = "/graphql"  # where a GET for the GraphiQL page is let through


def principal_of(scope: Scope) -> Principal | None:
    """The principal the middleware accepted for this request (None: it did not run)."""
    return scope.get("state", {}).get(PRINCIPAL)


class Authenticate:
    """ASGI middleware: the authenticator's verdict on requests to `paths`, before the body
    is read."""

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, paths: Collection[str] = (IDE_PATH,)
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path not in self.paths or (path == IDE_PATH and _asks_for_the_ide(scope)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            principal = await self.authenticator.authenticate(authorization)
        except MaasError as error:
            await _refuse(error, authorization, _may_have_body(headers), scope, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    # The path the router matches: behind a proxy's root path, without it.
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _asks_for_the_ide(scope: Scope) -> bool:
    # Strawberry's own test for a GraphiQL page request (it never executes an operation).
    if scope["method"] != "GET":
        return False
    params = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "query" in params:
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept or b"*/*" in accept


def _may_have_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


async def _refuse(
    error: MaasError, authorization: str, body_follows: bool, scope: Scope, send: Send
) -> None:
    unauthenticated = isinstance(error, Unauthenticated)
    extra: dict[str, str] = {}
    if unauthenticated:
        # RFC 6750: a challenge; naming the error once a credential was given.
        extra["www-authenticate"] = 'Bearer error="invalid_token"' if authorization else "Bearer"
    # A body that may follow is left unread: once the answer is complete, uvicorn drops what
    # still arrives (until its keep-alive timeout). Closing instead would reset the connection
    # of a client still sending, whose stack then throws the answer away unread.
    status = 401 if unauthenticated else 503
    await graphql_error_response(status, error.message, error.code, extra)(scope, _no_body, send)


async def _no_body() -> dict[str, Any]:
    raise RuntimeError("the body of a refused request is never read")
