"""The WebSocket side of the request edge: every frame is strictly decoded and has the shape
its protocol defines before a protocol handler sees it; anything else closes the connection
with 4400, the graphql-transport-ws code for an invalid message (used for the legacy
graphql-ws protocol too, which defines none). Error messages the handlers write themselves
(e.g. "Subscription limit reached") get a code like every other error."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonTextMessageReceived

from maas.request_json import BadJson

INVALID_MESSAGE = 4400
# Messages that start an operation, in graphql-transport-ws and graphql-ws.
_OPERATION_STARTS = frozenset({"subscribe", "start"})
_WITH_ID = frozenset({"subscribe", "start", "complete", "stop"})
_OPTIONAL_MEMBERS = (("variables", dict), ("operationName", str), ("extensions", dict))


def frame_problem(message: Any) -> str | None:
    """Why a decoded frame is not a protocol message, or None."""
    if type(message) is not dict:
        return "A message must be a JSON object."
    kind = message.get("type")
    if type(kind) is not str:
        return "A message needs a string type."
    if kind in _WITH_ID and type(message.get("id")) is not str:
        return f"A {kind} message needs a string id."
    payload = message.get("payload")
    if kind in _OPERATION_STARTS:
        if type(payload) is not dict:
            return f"A {kind} message needs an object payload."
        if type(payload.get("query")) is not str:
            return f"A {kind} payload needs a string query."
        for name, kind_of in _OPTIONAL_MEMBERS:
            if payload.get(name) is not None and type(payload[name]) is not kind_of:
                return f"{name} must be {'an object' if kind_of is dict else 'a string'}."
    elif payload is not None and type(payload) is not dict:
        return "A payload must be an object."
    return None


def _with_codes(message: Mapping[str, object]) -> Mapping[str, object]:
    """An error message whose errors all carry a code."""
    payload = message.get("payload")
    errors = payload if isinstance(payload, list) else [payload]
    coded = []
    for error in errors:
        if not isinstance(error, dict):
            return message
        extensions = error.get("extensions") or {}
        if "code" not in extensions:
            text = str(error.get("message", ""))
            code = "LIMIT_EXCEEDED" if "limit" in text.lower() else "BAD_USER_INPUT"
            error = {**error, "extensions": {**extensions, "code": code}}
        coded.append(error)
    return {**message, "payload": coded if isinstance(payload, list) else coded[0]}


class CheckedWebSocket(ASGIWebSocketAdapter):
    """Strawberry's WebSocket adapter with the frame checks above."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                try:
                    message = self.view.decode_json(text)
                except BadJson as error:
                    problem: str | None = error.message
                else:
                    problem = frame_problem(message)
                if problem is not None:
                    # A close reason holds at most 123 bytes.
                    await self.close(
                        INVALID_MESSAGE, problem.encode()[:120].decode(errors="ignore")
                    )
                    return
                too_long = self._document_too_long(message)
                if too_long is not None:
                    await self._refuse_operation(message, too_long)
                    continue
                yield message
        except KeyError as error:  # a binary frame
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass

    def _document_too_long(self, message: dict[str, Any]) -> str | None:
        if message["type"] not in _OPERATION_STARTS:
            return None
        return self.view.document_too_long(message["payload"]["query"])  # type: ignore[attr-defined]

    async def _refuse_operation(self, message: dict[str, Any], reason: str) -> None:
        """The operation's error, in its protocol's shape; the connection stays open."""
        error = {"message": reason, "extensions": {"code": "LIMIT_EXCEEDED"}}
        payload = [error] if message["type"] == "subscribe" else error
        await self.send_json({"type": "error", "id": message["id"], "payload": payload})

    async def send_json(self, message: Mapping[str, object]) -> None:
        if message.get("type") == "error":
            message = _with_codes(message)
        await super().send_json(message)
