"""Plain JSON routes over the same STM service methods: what a REST service would cost.

They do what the GraphQL resolvers do (tenant, service call, serialization of the same fields)
but without GraphQL parsing, validation and execution. Local-development tenant only.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from maas.auth import LOCAL_TENANT
from services.errors import MaasError
from services.stm import ShortTermMemory
from services.stm_model import Message, NewMessage, Role

MESSAGES_PATH = "/plain/sessions/{sid}/messages"
CONTEXT_PATH = "/plain/sessions/{sid}/context"


def _stm(request: Request) -> ShortTermMemory:
    return request.app.state.stm


def _written(m: Message) -> dict[str, Any]:
    """The fields the benchmark's addMessages mutation selects."""
    return {
        "id": m.id,
        "seq": m.seq,
        "tokenCount": m.tokens,
        "createdAt": m.created_at.isoformat(),
    }


def _context_message(m: Message) -> dict[str, Any]:
    """The fields the benchmark's context query selects."""
    return {"id": m.id, "role": m.role.value.upper(), "content": m.content, "tokenCount": m.tokens}


async def add_messages(request: Request) -> JSONResponse:
    """POST {"messages": [{"role": "user", "content": "..."}]} → the stored messages."""
    session_id = request.path_params["sid"]
    body = await request.json()
    try:
        new = [
            NewMessage(
                role=Role(m["role"].lower()),
                content=m["content"],
                name=m.get("name"),
                metadata=m.get("metadata") or {},
                id=m.get("id"),
            )
            for m in body["messages"]
        ]
        result = await _stm(request).add_messages(LOCAL_TENANT, session_id, new)
    except (MaasError, KeyError, ValueError, TypeError, AttributeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(
        {
            "sessionId": session_id,
            "messages": [_written(m) for m in result.messages],
            "duplicateIds": result.duplicate_ids,
        }
    )


async def get_context(request: Request) -> JSONResponse:
    """GET → the session's context window (404 when there is no such session)."""
    session_id = request.path_params["sid"]
    stm = _stm(request)
    try:
        session = await stm.get_session(LOCAL_TENANT, session_id)
    except MaasError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if session is None:
        return JSONResponse({"error": "no such session"}, status_code=404)
    window = await stm.get_context(LOCAL_TENANT, session)
    return JSONResponse(
        {
            "messages": [_context_message(m) for m in window.messages],
            "tokenCount": window.token_count,
            "truncated": window.truncated,
        }
    )


def add_plain_routes(app: Starlette) -> Starlette:
    """Put the plain routes first in the app's router and return the app."""
    app.router.routes.insert(0, Route(MESSAGES_PATH, add_messages, methods=["POST"]))
    app.router.routes.insert(0, Route(CONTEXT_PATH, get_context, methods=["GET"]))
    return app
