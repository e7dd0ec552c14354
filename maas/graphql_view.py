"""The /graphql endpoint: Strawberry's ASGI view with our context and WebSocket auth."""

from __future__ import annotations

from typing import Any

from aiodataloader import DataLoader
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types import ExecutionResult

from maas.auth import ApiKeyAuth
from maas.graphiql import graphiql_page
from resolvers.context import RequestContext


class MaasGraphQL(GraphQL):
    """Authenticates every request (HTTP header, or the WebSocket connection_init payload)."""

    def __init__(self, *args: Any, auth: ApiKeyAuth, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        ltm = request.app.state.ltm
        return RequestContext(
            stm=request.app.state.stm,
            tenant=self.auth.tenant_for(request.headers.get("authorization")),
            ltm=ltm,
            # Batches the history reads of one operation into one; no cache, because a
            # WebSocket context lives as long as its connection and history changes.
            history_loader=DataLoader(ltm.histories, cache=False),
            request=request,
            response=response,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our copy of Strawberry's GraphiQL page, whose assets this service serves itself.
        if self.graphql_ide == "graphiql":
            return graphiql_page()
        return await super().render_graphql_ide(request)

    async def execute_single(
        self, request: Any, request_adapter: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # A subscription over plain HTTP (no streaming Accept header) cannot stream: refuse
        # it up front as a bad request instead of failing while executing it.
        request_data = kwargs.get("request_data") or args[-1]
        if _is_subscription(request_data.query, request_data.operation_name):
            message = "Subscriptions need a WebSocket (graphql-transport-ws or graphql-ws)."
            return ExecutionResult(
                data=None, errors=[GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})]
            )
        return await super().execute_single(request, request_adapter, *args, **kwargs)

    async def on_ws_connect(self, context: RequestContext) -> None:  # type: ignore[override]
        params = context.connection_params or {}
        given = params.get("Authorization") or params.get("authorization")
        if given is not None:
            context.tenant = self.auth.tenant_for(str(given))
        if context.tenant is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})


def _is_subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the operation to run is a subscription (False when the query does not parse:
    execution reports that with its own error)."""
    if not query or "subscription" not in query:
        return False
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION
