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

from maas.auth import Authenticator
from maas.authenticate import principal_of
from maas.graphiql import graphiql_page
from resolvers.context import RequestContext
from schema.shared_execution import SharedData
from services.errors import MaasError

# The messages that carry one result of a subscription: graphql-transport-ws and graphql-ws.
_RESULT_MESSAGES = frozenset({"next", "data"})


class MaasGraphQL(GraphQL):
    """The caller is who maas.authenticate let through (HTTP), or who the WebSocket's
    connection_init payload (else its handshake's Authorization header) says."""

    def __init__(self, *args: Any, auth: Authenticator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        ltm = request.app.state.ltm
        # A WebSocket has no principal until on_ws_connect; an HTTP request that the
        # middleware did not let through has none either, and every resolver refuses it.
        principal = principal_of(request.scope)
        return RequestContext(
            stm=request.app.state.stm,
            tenant=principal.tenant if principal else None,
            expires_at=principal.expires_at if principal else None,
            ltm=ltm,
            # Batches the history reads of one operation into one; no cache, because a
            # WebSocket context lives as long as its connection and history changes.
            history_loader=DataLoader(ltm.histories, cache=False),
            request=request,
            response=response,
        )

    def encode_json(self, data: object) -> str | bytes:
        # A result shared by many subscribers is encoded once (schema.shared_execution), and so
        # is each message around it with the same other members (id, type); the message is
        # spliced from the same encoder's pieces, so it is byte for byte what encoding it
        # whole would give.
        shared = _shared_data(data)
        if shared is None:
            return super().encode_json(data)
        message: dict[str, Any] = data  # type: ignore[assignment]
        envelope = tuple(item if item[0] != "payload" else "payload" for item in message.items())
        try:
            return shared.message(envelope, lambda: self._splice(message, shared))
        except TypeError:  # a member that cannot be a key: nothing to reuse
            return self._splice(message, shared)

    def _splice(self, message: dict[str, Any], shared: SharedData) -> str:
        encode = self._encode_text
        payload = '{"data":' + shared.encoded(encode) + "}"
        members = (
            encode(key) + ":" + (payload if key == "payload" else encode(value))
            for key, value in message.items()
        )
        return "{" + ",".join(members) + "}"

    def _encode_text(self, value: object) -> str:
        encoded = super().encode_json(value)
        return encoded if isinstance(encoded, str) else encoded.decode()

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
        if given is None:
            given = context.request.headers.get("authorization")
        try:
            principal = await self.auth.authenticate(None if given is None else str(given))
        except MaasError as error:
            raise ConnectionRejectionError({"code": error.code}) from None
        context.tenant, context.expires_at = principal.tenant, principal.expires_at


def _shared_data(message: object) -> SharedData | None:
    """The shared data of a subscription result message that carries nothing else."""
    if type(message) is not dict or message.get("type") not in _RESULT_MESSAGES:
        return None
    payload = message.get("payload")
    if type(payload) is not dict or len(payload) != 1:
        return None
    data = payload.get("data")
    return data if type(data) is SharedData else None


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
