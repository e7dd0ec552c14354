"""The /graphql endpoint: Strawberry's ASGI view with our context and WebSocket auth."""

from __future__ import annotations

import asyncio
import json
from contextvars import ContextVar
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from maas import request_json
from maas.auth import Authenticator
from maas.authenticate import principal_of
from maas.error_responses import graphql_error_response
from maas.graphiql import graphiql_page
from maas.websocket_frames import CheckedWebSocket
from resolvers.context import RequestContext
from schema.shared_execution import SharedData
from services.errors import MaasError
from services.json_values import JsonLimits

# The messages that carry one result of a subscription: graphql-transport-ws and graphql-ws.
_RESULT_MESSAGES = frozenset({"next", "data"})
# Bodies larger than this are decoded in a worker thread, off the event loop.
OFFLOAD_BYTES = 64 * 1024
# A body decoded ahead (off the loop), for parse_json to hand on: (the body, its value).
_decoded_body: ContextVar[tuple[bytes, Any] | None] = ContextVar("maas_decoded_body", default=None)
_JSON_TYPE = b"application/json"
# The operation types Strawberry runs for each method, made once (Strawberry makes the set
# again for every request).
_OPERATIONS_BY_METHOD = {
    method: frozenset(OperationType.from_http(method)) for method in ("GET", "POST")
}
_JSON_HEADERS = ((b"content-type", _JSON_TYPE),)


class CodedHTTPError(HTTPException):
    """A transport-level refusal with the code the client gets."""

    def __init__(self, status_code: int, reason: str, code: str) -> None:
        super().__init__(status_code, reason)
        self.code = code


class MaasGraphQL(GraphQL):
    """The caller is who maas.authenticate let through (HTTP), or who the WebSocket's
    connection_init payload (else its handshake's Authorization header) says; decodes what
    clients send strictly (maas.request_json) and answers every refusal as a GraphQL error
    with a code."""

    websocket_adapter_class = CheckedWebSocket  # type: ignore[assignment]

    def __init__(
        self,
        *args: Any,
        auth: Authenticator,
        json_limits: JsonLimits | None = None,
        max_document_chars: int = 100_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth
        self.json_limits = json_limits or JsonLimits()
        self.max_document_chars = max_document_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            if scope["method"] == "POST" and _posts_json(scope) and not self._stream_transport_map:
                await self._answer_json_post(Request(scope=scope, receive=receive), send)
                return
            response = await self.run(Request(scope=scope, receive=receive))
        except ClientDisconnect:
            return  # nobody to answer
        except HTTPException as error:
            code = getattr(error, "code", None)
            allow = {"Allow": "GET, POST"} if error.status_code == 405 else None
            response = graphql_error_response(error.status_code, error.reason, code, allow)
        await response(scope, receive, send)

    async def _answer_json_post(self, request: Request, send: Send) -> None:
        """What `run` does for the request clients send all the time (a POST of one JSON
        operation), without the steps that cannot apply to it (the IDE page, GET parameters,
        content-type parsing, streamed transports) nor a Response object around the answer.
        Refusals raise HTTPException, as from `run`."""
        body = await request.body()
        if len(body) <= OFFLOAD_BYTES:  # nearly always: decoded right here
            request_data = _request_data(self.parse_json(body))
        else:
            token = _decoded_body.set(await self._decode_ahead(body))
            try:
                request_data = _request_data(self.parse_json(body))
            finally:
                _decoded_body.reset(token)
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        result = await self._execute("POST", context, None, request_data)
        response_data = await self.process_result(request=request, result=result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        encoded = self.encode_json(response_data)
        content = encoded.encode() if isinstance(encoded, str) else encoded
        # The headers and status Strawberry's create_response gives (sub_response: e.g. 429).
        headers = [(b"content-length", b"%d" % len(content)), *_JSON_HEADERS]
        headers += sub_response.headers.raw
        status = sub_response.status_code or 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if sub_response.background is not None:
            await sub_response.background()

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return _SubResponse()

    def document_too_long(self, query: object) -> str | None:
        """Why a document is too long to parse (its string literals are lexed in Python: a
        megabyte holds the event loop for a good part of a second), or None."""
        if isinstance(query, str) and len(query) > self.max_document_chars:
            return f"The GraphQL document is longer than {self.max_document_chars} characters."
        return None

    def decode_json(self, data: str | bytes) -> object:
        return request_json.decode(data, self.json_limits)

    def parse_json(self, data: str | bytes) -> Any:
        decoded = _decoded_body.get()
        try:
            value = (
                decoded[1] if decoded is not None and decoded[0] is data else self.decode_json(data)
            )
        except request_json.BadJson as error:
            raise CodedHTTPError(400, error.message, error.code) from None
        if type(value) is not dict:
            if type(value) is list:
                raise CodedHTTPError(400, "Batched requests are not supported.", "BAD_USER_INPUT")
            raise CodedHTTPError(400, "Expected a JSON object.", "BAD_USER_INPUT")
        return value

    async def parse_http_body(self, request: Any) -> Any:
        if request.method != "POST" or "json" not in (request.content_type or ""):
            return await super().parse_http_body(request)
        token = _decoded_body.set(await self._decode_ahead(await request.get_body()))
        try:
            return await super().parse_http_body(request)
        finally:
            _decoded_body.reset(token)

    async def _decode_ahead(self, body: bytes) -> tuple[bytes, Any] | None:
        """A large body decoded in a worker thread, off the event loop, for parse_json to take
        (through _decoded_body); None for a small one, which parse_json decodes itself."""
        if len(body) <= OFFLOAD_BYTES:
            return None
        try:
            return body, await asyncio.to_thread(self.decode_json, body)
        except request_json.BadJson as error:
            raise CodedHTTPError(400, error.message, error.code) from None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        # A WebSocket has no principal until on_ws_connect; an HTTP request that the
        # middleware did not let through has none either, and every resolver refuses it.
        principal = principal_of(request.scope)
        return RequestContext(
            stm=request.app.state.stm,
            tenant=principal.tenant if principal else None,
            expires_at=principal.expires_at if principal else None,
            ltm=request.app.state.ltm,
            prompts=request.app.state.prompts,
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
            return _strict_dumps(data)
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
        return _strict_dumps(value)

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our copy of Strawberry's GraphiQL page, whose assets this service serves itself.
        if self.graphql_ide == "graphiql":
            return graphiql_page()
        return await super().render_graphql_ide(request)

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        return await self._execute(request_adapter.method, context, root_value, request_data)

    async def _execute(
        self, method: str, context: Any, root_value: Any, request_data: GraphQLRequestData
    ) -> ExecutionResult:
        """Strawberry's execute_single (the operation types it allows, its refusals), with the
        document's length checked first, without the request adapter it does not need."""
        # Refused before parsing: graphql-core lexes string literals in Python.
        problem = self.document_too_long(request_data.query)
        if problem is not None:
            error = GraphQLError(problem, extensions={"code": "LIMIT_EXCEEDED"})
            return ExecutionResult(data=None, errors=[error])
        allowed = _OPERATIONS_BY_METHOD.get(method) or OperationType.from_http(method)  # type: ignore[arg-type]
        if not self.allow_queries_via_get and method == "GET":
            allowed = allowed - {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error

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


# RFC 8259 or nothing: a NaN that slipped into stored data fails loudly (a masked internal
# error) instead of reaching a client as a bare NaN token strict parsers reject. One encoder
# for every response: json.dumps with options builds a new one each call.
_STRICT_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _strict_dumps(value: object) -> str:
    return _STRICT_ENCODER.encode(value)


class _SubResponse(Response):
    """Strawberry's sub-response (the status and headers resolvers and extensions may set,
    e.g. a 429's Retry-After): no status yet, no headers, made without rendering a body."""

    def __init__(self) -> None:
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.raw_headers = []


def _posts_json(scope: Scope) -> bool:
    """Whether the request's media type is application/json (parameters aside), found as
    Strawberry finds it (case-insensitive)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == _JSON_TYPE
    return False


def _request_data(data: dict[str, Any]) -> GraphQLRequestData:
    """The operation of a decoded POST body, refused as Strawberry's parse_http_body refuses
    it (same checks, same messages)."""
    query = data.get("query")
    if not isinstance(query, (str, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `query` must be a string or null, if provided."
        )
    variables = data.get("variables")
    if not isinstance(variables, (dict, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `variables` must be an object or null, if provided."
        )
    extensions = data.get("extensions")
    if not isinstance(extensions, (dict, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `extensions` must be an object or null, if provided."
        )
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=data.get("operationName"),
        extensions=extensions,
        protocol="http",
    )


def _shared_data(message: object) -> SharedData | None:
    """The shared data of a subscription result message that carries nothing else."""
    if type(message) is not dict or message.get("type") not in _RESULT_MESSAGES:
        return None
    payload = message.get("payload")
    if type(payload) is not dict or len(payload) != 1:
        return None
    data = payload.get("data")
    return data if type(data) is SharedData else None
