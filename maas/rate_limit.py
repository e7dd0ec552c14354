"""Each GraphQL operation counts against its tenant's request rate (services.rate_limit).

One operation is one request: a query or mutation over HTTP, or one `subscribe` message over a
WebSocket (the events a subscription then streams are not requests). Documents that do not
parse or validate are not counted: they reach no store. An operation over the limit is not
executed; it answers LIMIT_EXCEEDED with `retryAfterSeconds`, and over HTTP with status 429
and a `Retry-After` header (whole seconds, rounded up): the request was refused before
execution, as the GraphQL-over-HTTP spec allows a server to refuse one with a 4xx status.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from services.errors import LimitExceeded

if TYPE_CHECKING:
    from services.rate_limit import RequestRateLimiter

# Where the app's lifespan puts the limiter (the extension is built before the lifespan runs).
STATE_ATTRIBUTE = "rate_limiter"


class RequestRateLimit(SchemaExtension):
    """Refuses an operation, before it executes, when its tenant is over its request rate."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        refused = await _refusal(execution.context)
        if refused is not None:
            if execution.operation_type is OperationType.SUBSCRIPTION:
                # Strawberry subscribes whatever the hook sets; an error raised here ends the
                # subscription with it as its only result.
                raise refused
            execution.result = ExecutionResult(
                data=None, errors=[GraphQLError(refused.message, original_error=refused)]
            )
            _answer_429(execution.context, refused)
        yield


async def _refusal(context: Any) -> LimitExceeded | None:
    tenant = getattr(context, "tenant", None)
    request = getattr(context, "request", None)
    if tenant is None or request is None:
        return None  # an unauthenticated request fails on its own; a test without an app
    limiter: RequestRateLimiter | None = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if limiter is None or not limiter.enabled:
        return None
    try:
        await limiter.admit(tenant)
    except LimitExceeded as refused:
        return refused
    return None


def _answer_429(context: Any, refused: LimitExceeded) -> None:
    response = getattr(context, "response", None)
    if isinstance(response, Response):  # over HTTP (over a WebSocket it is the socket)
        response.status_code = 429
        seconds = refused.details["retryAfterSeconds"]
        response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
