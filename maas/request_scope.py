"""The scope of each HTTP request and WebSocket connection: a request id (the caller's
`X-Request-ID` when it is a sane token, a new one otherwise), echoed in the response and put on
every log record written meanwhile; the caller's W3C trace context; and a server span for each
request to /graphql, which the GraphQL operation the request carries makes its own (see
`request_span`): one span per request, named after its operation once it has one."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from stores.traced import CurrentSpan

HEADER = b"x-request-id"
TRACED_PATH = "/graphql"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_current: ContextVar[str | None] = ContextVar("maas_request_id", default=None)
_span: ContextVar[Span | None] = ContextVar("maas_request_span", default=None)
_tracer = trace.get_tracer("maas.http")


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _current.get()


def tracing_on() -> bool:
    """Whether this process records spans (maas.telemetry installed the SDK's provider): without
    it every span is a no-op, whose making alone costs more than a request's routing."""
    # The provider set, read directly: get_tracer_provider() looks in os.environ each time
    # none is (every request with tracing off). The lock file pins the API that holds it.
    provider = trace._TRACER_PROVIDER
    return provider is not None and isinstance(provider, TracerProvider)


def request_span() -> Span | None:
    """The span of the HTTP request to /graphql being served in this context, if any: the
    operation's span too (an HTTP request carries one operation; batches are refused)."""
    return _span.get()


class RequestScope:
    """ASGI middleware that assigns, echoes and scopes the request id and trace context."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get(HEADER.decode())
        request_id = given if given and _SANE.fullmatch(given) else uuid.uuid4().hex
        echoed = (HEADER, request_id.encode())
        status: list[int] = []

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                status.append(message.get("status", 101))
                message = {**message, "headers": [*message.get("headers", []), echoed]}
            await send(message)

        id_token = _current.set(request_id)
        # A WebSocket's operations run in tasks started under this context: they join the
        # caller's trace too.
        context_token = context.attach(propagate.extract(headers))
        try:
            if scope["type"] == "http" and scope["path"] == TRACED_PATH and tracing_on():
                await self._traced(scope, receive, send_with_id, status)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            context.detach(context_token)
            _current.reset(id_token)

    async def _traced(
        self, scope: dict[str, Any], receive: Any, send: Any, status: list[int]
    ) -> None:
        method = scope["method"]
        with CurrentSpan(
            _tracer,
            f"{method} {TRACED_PATH}",
            SpanKind.SERVER,
            {"http.request.method": method, "url.path": TRACED_PATH},
        ) as span:
            token = _span.set(span)
            try:
                await self.app(scope, receive, send)
            finally:
                _span.reset(token)
            if status:
                span.set_attribute("http.response.status_code", status[0])
                # An operation's error status (with its codes) stays.
                unset = getattr(span, "status", Status()).status_code is StatusCode.UNSET
                if status[0] >= 500 and unset:
                    span.set_status(Status(StatusCode.ERROR))
