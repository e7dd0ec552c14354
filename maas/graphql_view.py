"""The /graphql endpoint: Strawberry's ASGI view with our context and WebSocket auth."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from maas.auth import ApiKeyAuth
from resolvers.context import RequestContext


class MaasGraphQL(GraphQL):
    """Authenticates every request (HTTP header, or the WebSocket connection_init payload)."""

    def __init__(self, *args: Any, auth: ApiKeyAuth, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        return RequestContext(
            stm=request.app.state.stm,
            tenant=self.auth.tenant_for(request.headers.get("authorization")),
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: RequestContext) -> None:  # type: ignore[override]
        params = context.connection_params or {}
        given = params.get("Authorization") or params.get("authorization")
        if given is not None:
            context.tenant = self.auth.tenant_for(str(given))
        if context.tenant is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})
